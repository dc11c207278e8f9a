package actors

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/tubfarm/tubfarm/messages"
)

// Status is a snapshot of one server's connection, as shown on Tahoe-LAFS's
// Welcome page and more. Snapshots are published by the server's child actor
// at every change and read without locking the actor; a Status is a copy the
// caller may keep.
type Status struct {
	// ID, Nickname, Source and RevealsIP come from the ServerSpec.
	ID, Nickname, Source string
	RevealsIP            bool

	// State is the connection state; Since is when it was entered.
	State State
	Since time.Time

	// Connected reports whether a live session exists (Tahoe's
	// "connected").
	Connected bool

	// Summary is Tahoe's one-line description: "Connected to <hint> via
	// <handler>", "Trying to connect", "Reconnecting in N seconds (last
	// attempt Ms ago)", "unstarted", "stopped", or "removed". It is computed
	// when the snapshot is read.
	Summary string

	// Hints holds the per-hint statuses reported during the current (or
	// last) attempt, in the order first reported (Tahoe's
	// non_connected_statuses, plus the winner).
	Hints []HintStatus

	// hintRows is the attempt's hint table, which the child updates in
	// place; the snapshot a caller gets has it copied into Hints.
	hintRows *hintTable

	// Protocol is the storage protocol, "https" or "foolscap": the live
	// (or last) session's, or before any session the one the spec asks
	// for.
	Protocol string

	// WinningHint and Handler name the hint and handler of the live (or
	// last) session; TLSVersion and PeerTubID describe its handshake.
	WinningHint, Handler string
	TLSVersion           uint16
	PeerTubID            string

	// LastConnected is when the last session was established (Tahoe's
	// last_connection_time); zero if never.
	LastConnected time.Time

	// LastReceived is when data last arrived on the live session (Tahoe's
	// last_received_time), read from the session when the snapshot is
	// read; zero if none.
	LastReceived time.Time

	// Version is the server's application version: "application-version"
	// from its get_version answer, or else "my-version" from its
	// announcement, at most MaxVersionText bytes. VersionInfo is the raw
	// get_version answer, or nil if it holds more than MaxVersionInfo.
	Version     string
	VersionInfo any

	// Backoff is the current delay before the next attempt (set in
	// WaitingToRetry); LastAttempt and NextAttempt bracket it.
	Backoff                  time.Duration
	LastAttempt, NextAttempt time.Time

	// Attempts counts attempts since the last successful connection.
	Attempts int

	// LastFailure is the error of the last failed attempt or lost session
	// (at most MaxFailureText bytes and a marker), and LastFailureReason its
	// classification; empty if none.
	LastFailure       string
	LastFailureReason Reason

	// TubID is the client TubID this server sees (or will see): the
	// identity of the current or last attempt. IdentityCreated is when
	// that identity was made.
	TubID           string
	IdentityCreated time.Time

	// Restarts counts restarts of the server's child actor after panics.
	Restarts int

	// Removed reports that the broker no longer holds the server: it was
	// removed from the set (or replaced, and this is the old child's last
	// snapshot). State is then Stopped, or Idle for a child that never
	// started.
	Removed bool
}

// HintStatus is the status of one connection hint during an attempt, in
// Foolscap's words ("connecting", "negotiating", "successful", "connection
// refused", …).
type HintStatus struct {
	Hint, Status string
}

// IdentityAge returns how old the server's current identity is at now.
func (s Status) IdentityAge(now time.Time) time.Duration {
	if s.IdentityCreated.IsZero() {
		return 0
	}
	return now.Sub(s.IdentityCreated)
}

// summary returns Tahoe's summary string for s at now, following
// allmydata/util/connection_status.py.
func summary(s *Status, now time.Time) string {
	if s.Removed {
		return "removed"
	}
	switch s.State {
	case Idle:
		return "unstarted"
	case Connecting:
		return "Trying to connect"
	case Connected:
		return fmt.Sprintf("Connected to %s via %s", s.WinningHint, s.Handler)
	case WaitingToRetry:
		// Python's "%d" truncates toward zero; so does the conversion.
		in := int(math.Max(0, s.NextAttempt.Sub(now).Seconds()))
		ago := int(math.Max(0, now.Sub(s.LastAttempt).Seconds()))
		if s.LastAttempt.IsZero() { // a first attempt held back by Config.Decorrelate
			return fmt.Sprintf("Connecting in %d seconds", in)
		}
		return fmt.Sprintf("Reconnecting in %d seconds (last attempt %ds ago)", in, ago)
	case Stopped:
		return "stopped"
	}
	return s.State.String()
}

// hub fans StateChanged events out to subscribers and wakes WhenConnected
// waiters. Publishing never blocks: each subscriber has a bounded buffer and
// an event that does not fit is dropped (and counted).
type hub struct {
	m *metrics

	mu      sync.Mutex // guards the following fields
	subs    map[*subscriber]struct{}
	changed chan struct{} // closed and replaced on every event
	closed  bool
}

type subscriber struct {
	ch chan messages.StateChanged
}

func newHub(m *metrics) *hub {
	return &hub{m: m, subs: make(map[*subscriber]struct{}), changed: make(chan struct{})}
}

// publish delivers ev to every subscriber that has room and wakes waiters.
func (h *hub) publish(ev messages.StateChanged) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	for s := range h.subs {
		select {
		case s.ch <- ev:
		default:
			h.m.droppedEvents.Inc()
		}
	}
	close(h.changed)
	h.changed = make(chan struct{})
}

// wait returns a channel closed at the next event (or at close).
func (h *hub) wait() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}

// subscribe adds a subscriber with a buffer of n events.
func (h *hub) subscribe(n int) (<-chan messages.StateChanged, func()) {
	s := &subscriber{ch: make(chan messages.StateChanged, n)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(s.ch)
		return s.ch, func() {}
	}
	h.subs[s] = struct{}{}
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if _, ok := h.subs[s]; ok {
				delete(h.subs, s)
				close(s.ch)
			}
		})
	}
}

// close closes every subscriber channel and wakes every waiter, for good.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for s := range h.subs {
		close(s.ch)
	}
	clear(h.subs)
	close(h.changed)
}
