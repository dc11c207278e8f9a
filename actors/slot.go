package actors

import (
	"sync/atomic"
	"time"

	"github.com/tubfarm/tubfarm/messages"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// A slot is everything the broker keeps about one child for the life of
// one connection (a FURL and a policy): it outlives restarts of the child actor (so that
// backoff counters, the PerServer identity and the restart count survive a
// panic) and is replaced, with a new child, when the connection changes.
//
// The unexported plain fields belong to the child actor and are only touched
// from its mailbox; successive incarnations of the child run on the same
// mailbox, which orders their accesses. The broker actor touches them only
// before the child starts and after it terminated. Other goroutines read
// only the atomic fields and, under its lock, the hint table. state, since,
// wait, delay, nextAttempt, lastAttempt, hints, removed and status are
// written by transition alone.
type slot struct {
	sh *shared

	spec  messages.ServerSpec
	state State
	since time.Time
	seq   uint64 // StateChanged sequence number
	gen   uint64 // generation of attempts and timers, from shared.nextGen; stale messages carry another

	failures      int // consecutive failures, the input to the backoff
	attempts      int // attempts since the last successful connection
	panics        int // consecutive panics, the input to the restart backoff
	restarts      int // restarts after panics, ever
	lastAttempt   time.Time
	nextAttempt   time.Time
	delay         time.Duration
	connectedAt   time.Time
	lastConnected time.Time
	lastErr       error
	hints         *hintTable // the current or last attempt's; a new one for each attempt
	info          SessionInfo
	versionInfo   any
	version       string

	wait    waitKind // why the child is WaitingToRetry
	removed bool     // the broker no longer holds the child

	timer     Timer       // the armed retry timer, or nil
	lastPanic *PanicError // set by recordPanics, consumed by the next Restarting

	attemptIdentity *Identity        // the current or last attempt's
	serverIdentity  *Identity        // the one identity of a PerServer slot
	identity        *tubtls.Identity // the certificate an attempt last presented

	status  atomic.Pointer[Status]      // the published snapshot
	session atomic.Pointer[liveSession] // the live session, or nil
}

// liveSession boxes a Session for atomic.Pointer.
type liveSession struct{ s Session }

// newSlot makes the slot of a new child, in Idle.
func newSlot(sh *shared, spec messages.ServerSpec) *slot {
	s := &slot{sh: sh, spec: spec}
	_ = s.transition(Idle, change{kind: enter})
	return s
}

// publish stores a fresh snapshot of the slot. Only transition calls it.
func (s *slot) publish() {
	st := &Status{
		ID:            s.spec.ID,
		Nickname:      s.spec.Nickname,
		Source:        s.spec.Source,
		RevealsIP:     s.spec.RevealsIP,
		State:         s.state,
		Since:         s.since,
		Connected:     s.state == Connected,
		hintRows:      s.hints,
		Protocol:      protocolOf(s.info.Protocol, s.spec.Protocol),
		WinningHint:   s.info.Hint,
		Handler:       s.info.Handler,
		TLSVersion:    s.info.TLSVersion,
		PeerTubID:     s.info.PeerTubID,
		LastConnected: s.lastConnected,
		Version:       s.version,
		VersionInfo:   s.versionInfo,
		LastAttempt:   s.lastAttempt,
		Attempts:      s.attempts,
		Restarts:      s.restarts,
		Removed:       s.removed,
	}
	if st.Version == "" {
		st.Version = stringOf(s.spec.Announcement["my-version"])
	}
	if s.state == WaitingToRetry {
		st.Backoff, st.NextAttempt = s.delay, s.nextAttempt
	}
	if s.lastErr != nil {
		r, _ := classify(s.lastErr)
		st.LastFailure, st.LastFailureReason = errorText(s.lastErr), r
	}
	if s.identity != nil {
		st.TubID, st.IdentityCreated = s.identity.TubID, s.identity.Created
	}
	s.status.Store(st)
}

// snapshot returns a copy of the published status, completed with the
// hint progress as it is now and the fields that depend on the time of
// reading. Any goroutine.
func (s *slot) snapshot(now time.Time) Status {
	st := *s.status.Load()
	st.Hints, st.hintRows = st.hintRows.copy(), nil
	if live := s.session.Load(); live != nil && st.Connected {
		st.LastReceived = live.s.LastReceived()
	}
	st.Summary = summary(&st, now)
	return st
}

// versionString extracts Tahoe's "application-version" from a get_version
// answer. Python 3 Tahoe sends byte strings, which a decoder may deliver as
// string or []byte values, in a map[string]any, a map[any]any, or an
// ordered dict type with a GetString method (foolscap.Dict); all are
// accepted.
func versionString(v any) string {
	const key = "application-version"
	switch m := v.(type) {
	case interface{ GetString(string) (any, bool) }:
		x, _ := m.GetString(key)
		return stringOf(x)
	case map[string]any:
		return stringOf(m[key])
	case map[any]any:
		return stringOf(m[key])
	}
	return ""
}

func stringOf(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	}
	return ""
}

// protocolOf is the protocol a status shows: the session's, else the
// spec's, else Foolscap.
func protocolOf(session, spec string) string {
	switch {
	case session != "":
		return session
	case spec != "":
		return spec
	}
	return "foolscap"
}
