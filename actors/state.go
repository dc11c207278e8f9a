package actors

import (
	"log/slog"
	"time"

	"github.com/tubfarm/tubfarm/messages"
)

// State is the connection state of one server. It is defined in the
// messages package (so that StateChanged events can carry it without an
// import cycle) and re-exported here; the legal successors of each state are
// documented on its constant there and enforced by the table below. See
// docs/state-machine.md for the diagram.
type State = messages.State

// The states; see [messages.State].
const (
	Idle           = messages.Idle
	Connecting     = messages.Connecting
	Connected      = messages.Connected
	WaitingToRetry = messages.WaitingToRetry
	Stopped        = messages.Stopped
)

// legal[from][to] reports whether from → to is a legal transition. It is the
// executable form of the successor lists on the State constants.
var legal = [messages.NumStates][messages.NumStates]bool{
	Idle:           {Connecting: true, WaitingToRetry: true, Stopped: true},
	Connecting:     {Connected: true, WaitingToRetry: true, Stopped: true},
	Connected:      {WaitingToRetry: true, Stopped: true},
	WaitingToRetry: {Connecting: true, WaitingToRetry: true, Stopped: true},
	Stopped:        {},
}

// Legal reports whether a server may move from one state to another.
func Legal(from, to State) bool {
	if from < 0 || int(from) >= messages.NumStates || to < 0 || int(to) >= messages.NumStates {
		return false
	}
	return legal[from][to]
}

// change describes the cause of a transition, for the event.
type change struct {
	err   error         // the failure, for WaitingToRetry
	delay time.Duration // the backoff delay, for WaitingToRetry
}

// transition is the only writer of a server's state. It refuses an illegal
// transition (a bug: logged, counted in tubfarm_illegal_transitions_total
// and returned as a *TransitionError, leaving the state unchanged).
// Otherwise it records the new state, publishes the server's status
// snapshot, updates the per-state gauge and publishes a StateChanged event,
// in that order, so that a subscriber woken by the event reads a snapshot at
// least as new as the event.
//
// It must only be called from the server's child actor.
func (s *slot) transition(to State, c change) error {
	from := s.state
	if !Legal(from, to) {
		s.sh.m.illegalTransitions.Inc()
		err := &TransitionError{ID: s.spec.ID, From: from, To: to}
		s.sh.log.Error("actors: illegal state transition refused", slog.String("server", s.spec.ID),
			slog.String("from", from.String()), slog.String("to", to.String()))
		return err
	}
	now := s.sh.clock.Now()
	s.state = to
	s.since = now
	s.seq++
	ev := messages.StateChanged{ServerID: s.spec.ID, From: from, To: to, At: now, Seq: s.seq}
	if c.err != nil {
		r, _ := classify(c.err)
		ev.Reason, ev.Err = string(r), c.err
	}
	if to == WaitingToRetry {
		ev.Delay = c.delay
	}
	if to == Connected {
		ev.Hint, ev.Handler = s.info.Hint, s.info.Handler
	}
	if s.identity != nil {
		ev.TubID = s.identity.TubID
	}
	s.publish()
	s.sh.m.servers.WithLabelValues(from.String()).Dec()
	s.sh.m.servers.WithLabelValues(to.String()).Inc()
	s.sh.hub.publish(ev)
	s.sh.log.Debug("actors: state changed", slog.String("server", s.spec.ID),
		slog.String("from", from.String()), slog.String("to", to.String()), slog.String("reason", ev.Reason))
	return nil
}
