package messages

import "strconv"

// State is the connection state of one storage server (or other peer), as
// kept by its child actor in the broker. The legal transitions and what
// triggers each are in docs/state-machine.md; package actors enforces them.
//
// The zero value is Idle.
type State int

const (
	// Idle: the server is known but no connection attempt has started yet
	// (Tahoe's "unstarted").
	Idle State = iota

	// Connecting: one connection attempt is in flight.
	Connecting

	// Connected: a live session to the server exists.
	Connected

	// WaitingToRetry: a timer will start the next attempt after a delay.
	WaitingToRetry

	// Stopped: the server was removed or replaced, or the broker closed.
	// It is terminal.
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
