package actors

import (
	"log/slog"
	"time"

	"github.com/tubfarm/tubfarm/messages"
)

// State is the connection state of one child ([messages.State], re-exported
// here). The legal transitions and their triggers are in
// docs/state-machine.md; the table below is their executable form.
type State = messages.State

// The states; see [messages.State].
const (
	Idle           = messages.Idle
	Connecting     = messages.Connecting
	Connected      = messages.Connected
	WaitingToRetry = messages.WaitingToRetry
	Stopped        = messages.Stopped
)

// legal[from][to] reports whether from → to is a legal transition.
var legal = [messages.NumStates][messages.NumStates]bool{
	Idle:           {Connecting: true, WaitingToRetry: true, Stopped: true},
	Connecting:     {Connected: true, WaitingToRetry: true, Stopped: true},
	Connected:      {WaitingToRetry: true, Stopped: true},
	WaitingToRetry: {Connecting: true, WaitingToRetry: true, Stopped: true},
	Stopped:        {},
}

// Legal reports whether a child may move from one state to another.
func Legal(from, to State) bool {
	if from < 0 || int(from) >= messages.NumStates || to < 0 || int(to) >= messages.NumStates {
		return false
	}
	return legal[from][to]
}

// waitKind says why a child is WaitingToRetry. It is part of the state:
// only transition records it, together with the state.
type waitKind int

const (
	waitNone    waitKind = iota // not WaitingToRetry
	waitFirst                   // Config.Decorrelate holds the first attempt back
	waitBackoff                 // after a failed attempt or a lost session
	waitRestart                 // the restart delay after a panic: never cut by a peer's connection
	waitDrawn                   // a peer's connection already drew this wait's retry point: one draw per wait
)

// changeKind says what kind of record a change is.
type changeKind int

const (
	move     changeKind = iota // a state transition, checked against the table; publishes an event
	enter                      // the broker holds a new child: it appears in Idle
	leave                      // the broker forgets a Stopped (or never started) child
	note                       // a detail changed (spec, why a child waits); the state does not move
	progress                   // a hint's progress in the attempt: its row is updated in place, nothing is republished
)

// change is what transition records besides the new state.
type change struct {
	kind  changeKind
	err   error         // the failure, for WaitingToRetry
	delay time.Duration // the delay before the next attempt, for WaitingToRetry
	wait  waitKind      // why the child waits, for WaitingToRetry

	hint, hintStatus string // for progress
}

// transition is the one transition point of a child's lifecycle: the only
// writer of its state, its published status snapshot and its series of the
// per-state gauge. Each change goes through it, in this order: the state
// (refused, with a *TransitionError, if illegal), the snapshot, the gauge,
// then the StateChanged event, so a subscriber woken by an event reads a
// snapshot at least as new as the event. The rules are in
// docs/state-machine.md.
//
// The child actor calls it from its mailbox; the broker actor calls it only
// before the child starts (enter) or after it terminated (leave).
func (s *slot) transition(to State, c change) error {
	from := s.state
	m := s.sh.m
	if id := s.attemptIdentity.Made(); id != nil {
		s.identity = id // the attempt has presented its certificate
	}
	switch c.kind {
	case enter:
		s.state, s.since = Idle, s.sh.clock.Now()
		s.publish()
		m.states.WithLabelValues(Idle.String()).Inc()
		return nil
	case leave:
		if from != Stopped && from != Idle {
			return s.refuse(from, to)
		}
		s.removed = true
		s.publish()
		m.states.WithLabelValues(from.String()).Dec()
		return nil
	case note:
		if c.wait != waitNone {
			if from != WaitingToRetry || to != WaitingToRetry {
				return s.refuse(from, to)
			}
			s.wait = c.wait
		}
		s.publish()
		return nil
	case progress:
		if from != Connecting || to != Connecting {
			return s.refuse(from, to)
		}
		s.hints.set(c.hint, c.hintStatus)
		return nil
	}
	if !Legal(from, to) {
		return s.refuse(from, to)
	}
	now := s.sh.clock.Now()
	s.state, s.since, s.wait = to, now, waitNone
	if to == WaitingToRetry {
		s.wait = c.wait
		s.delay, s.nextAttempt = c.delay, now.Add(c.delay)
	}
	if to == Connecting {
		s.attempts++
		s.lastAttempt = now
		s.hints = &hintTable{}
	}
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
	m.states.WithLabelValues(from.String()).Dec()
	m.states.WithLabelValues(to.String()).Inc()
	s.sh.hub.publish(ev)
	s.sh.log.Debug("actors: state changed", slog.String(s.sh.kind.Name, s.spec.ID),
		slog.String("from", from.String()), slog.String("to", to.String()), slog.String("reason", ev.Reason))
	return nil
}

// refuse logs, counts and returns an illegal transition; the state stays.
func (s *slot) refuse(from, to State) error {
	s.sh.m.illegalTransitions.Inc()
	s.sh.log.Error("actors: illegal state transition refused", slog.String(s.sh.kind.Name, s.spec.ID),
		slog.String("from", from.String()), slog.String("to", to.String()))
	return &TransitionError{ID: s.spec.ID, From: from, To: to}
}
