package messages

import "strconv"

// State is the connection state of one storage server, as kept by the
// server's child actor in the broker. The legal successors of each state are
// listed on its constant; the broker enforces them (see the actors package
// and docs/state-machine.md).
//
// The zero value is Idle.
type State int

const (
	// Idle: the server is known but no connection attempt has started yet
	// (Tahoe's "unstarted"). Legal successors: Connecting (the first attempt
	// starts), WaitingToRetry (the child restarted after a panic and waits
	// for its restart backoff first), Stopped.
	Idle State = iota

	// Connecting: one connection attempt is in flight, trying every hint of
	// the FURL. Legal successors: Connected (the attempt produced a session
	// and get_version was asked), WaitingToRetry (the attempt failed, or the
	// child panicked), Stopped.
	Connecting

	// Connected: a live session to the server exists. Legal successors:
	// WaitingToRetry (the session was lost, or the child panicked), Stopped.
	Connected

	// WaitingToRetry: the last attempt failed or the session was lost; a
	// timer will start the next attempt after a backoff delay. Legal
	// successors: Connecting (the timer fired, or TryNow cut the wait
	// short), WaitingToRetry (the wait was re-armed after a panic restart),
	// Stopped.
	WaitingToRetry

	// Stopped: the server was removed or replaced, or the broker closed.
	// Terminal: no successor is legal.
	Stopped
)

// NumStates is the number of defined states. States are numbered 0 through
// NumStates-1, which lets callers range over them.
const NumStates = int(Stopped) + 1

// String returns the state's name in snake_case ("idle", "connecting",
// "connected", "waiting_to_retry", "stopped"), suitable as a metric label.
// An undefined value yields "State(N)".
func (s State) String() string {
	switch s {
	case Idle:
		return "idle"
	case Connecting:
		return "connecting"
	case Connected:
		return "connected"
	case WaitingToRetry:
		return "waiting_to_retry"
	case Stopped:
		return "stopped"
	default:
		return "State(" + strconv.Itoa(int(s)) + ")"
	}
}
