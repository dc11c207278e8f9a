package actors

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/tubfarm/tubfarm/internal/termsafe"
	"github.com/tubfarm/tubfarm/messages"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// IdentityPolicy says how often a server's child actor makes a new
// ephemeral identity.
type IdentityPolicy int

const (
	// PerAttempt makes a fresh identity for every connection attempt, so a
	// server cannot even link two of its own sessions with this client. It
	// is the default.
	PerAttempt IdentityPolicy = iota

	// PerServer makes one identity per server and keeps it for as long as
	// the server's entry asks for the same connection (Tahoe-LAFS's behaviour: one Tub per
	// NativeStorageServer). It survives reconnections and restarts of the
	// child actor after a panic; it is replaced when the connection changes or
	// the broker actor itself restarts.
	PerServer
)

// String returns "per_attempt", "per_server" or "IdentityPolicy(N)".
func (p IdentityPolicy) String() string {
	switch p {
	case PerAttempt:
		return "per_attempt"
	case PerServer:
		return "per_server"
	}
	return "IdentityPolicy(" + strconv.Itoa(int(p)) + ")"
}

// errSessionEnded stands in for a session that ended without saying why.
var errSessionEnded = errors.New("actors: session ended")

// Messages a server actor receives. They carry the slot generation they were
// made for; one from an older generation is stale and ignored (a session it
// carries is closed). They all opt out of protoactor's dead-letter logging:
// one sent as its actor stops is expected, not a fault.
type (
	// attemptResult: attempt goroutine → server actor.
	attemptResult struct {
		gen         uint64
		sess        Session
		err         error
		panicked    bool
		versionInfo any
		versionErr  error
		getVersion  time.Duration
		total       time.Duration
	}
	// hintProgress: attempt goroutine (Connector's report) → server actor.
	hintProgress struct {
		gen          uint64
		hint, status string
	}
	// sessionLost: session watcher goroutine → server actor.
	sessionLost struct {
		gen uint64
		err error
	}
	// retryTimer: retry timer → server actor.
	retryTimer struct{ gen uint64 }
	// tryNow: broker actor → server actor, for Broker.TryNow. Cut a
	// backoff wait short (Foolscap's reset()).
	tryNow struct{}
	// peerConnected: broker actor → server actor that is waiting to retry,
	// when another server connected at at; see peerConnected.
	peerConnected struct{ at time.Time }
	// updateSpec: broker actor → server actor. The spec changed in fields
	// that do not change the connection.
	updateSpec struct{ spec messages.ServerSpec }
	// crash: anyone → any broker actor. Panic with reason; a test and
	// debugging hook for the supervision paths.
	crash struct{ reason any }
	// barrier: anyone → server actor. Close done once handled, after every
	// message queued before it; a test hook that orders the sender after
	// them (Broker.Apply returns once an updateSpec is queued, not handled).
	barrier struct{ done chan struct{} }
)

func (*attemptResult) IgnoreDeadLetterLogging() {}
func (*hintProgress) IgnoreDeadLetterLogging()  {}
func (*sessionLost) IgnoreDeadLetterLogging()   {}
func (*retryTimer) IgnoreDeadLetterLogging()    {}
func (*tryNow) IgnoreDeadLetterLogging()        {}
func (*peerConnected) IgnoreDeadLetterLogging() {}
func (*updateSpec) IgnoreDeadLetterLogging()    {}
func (*crash) IgnoreDeadLetterLogging()         {}
func (*barrier) IgnoreDeadLetterLogging()       {}

// serverActor is the child actor for one server. Its producer only builds
// the struct (protoactor may call a producer for a spawn that then fails);
// identities, goroutines and timers are made from Started onwards.
type serverActor struct {
	slot *slot

	// Per incarnation.
	life    context.Context // cancelled when this incarnation ends
	cancel  context.CancelFunc
	handoff *handoff
}

var _ actor.Actor = (*serverActor)(nil)

// Receive handles one message on the actor's mailbox.
func (a *serverActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.started(ctx)
	case *actor.Restarting:
		a.restarting(ctx)
	case *actor.Stopping:
		a.stopping()
	case *attemptResult:
		a.attemptDone(ctx, m)
	case *hintProgress:
		a.progress(m)
	case *sessionLost:
		a.lost(ctx, m)
	case *retryTimer:
		if m.gen == a.slot.gen && a.slot.state == WaitingToRetry {
			a.slot.timer = nil
			a.startAttempt(ctx)
		}
	case *tryNow:
		a.tryNow(ctx)
	case *peerConnected:
		a.peerConnected(ctx, m.at)
	case *updateSpec:
		a.slot.spec = m.spec
		_ = a.slot.transition(a.slot.state, change{kind: note})
	case *crash:
		panic(m.reason)
	case *barrier:
		close(m.done)
	}
}

// started begins an incarnation: a fresh server starts its first attempt at
// once (or waits a random delay first, with Config.Decorrelate); one
// restarted after a panic is already WaitingToRetry, with its restart timer
// armed by the previous incarnation.
func (a *serverActor) started(ctx actor.Context) {
	a.life, a.cancel = context.WithCancel(context.Background())
	a.handoff = &handoff{pending: make(map[Session]struct{})}
	if a.slot.state == Idle {
		if w := a.slot.sh.cfg.Decorrelate; w > 0 {
			a.scheduleRetry(ctx, a.decorrelation(), nil, waitFirst)
			return
		}
		a.startAttempt(ctx)
	}
}

// decorrelation draws the random extra delay of Config.Decorrelate.
func (a *serverActor) decorrelation() time.Duration {
	w := a.slot.sh.cfg.Decorrelate
	if w <= 0 {
		return 0
	}
	return time.Duration(a.slot.sh.rand() * float64(w))
}

// restarting ends an incarnation that panicked. The new incarnation is
// created right after this returns; the restart delay is armed here, with
// the slot's timer, so the WaitingToRetry event is only published once the
// timer exists.
func (a *serverActor) restarting(ctx actor.Context) {
	s := a.slot
	p := s.lastPanic
	s.lastPanic = nil
	if p == nil {
		p = &PanicError{Value: "restarted by supervisor"}
	}
	now := s.sh.clock.Now()
	if s.state == Connected {
		if now.Sub(s.connectedAt) >= s.sh.cfg.RestartBackoff.StableAfter {
			s.panics = 0
		}
		s.sh.m.disconnects.WithLabelValues(handlerLabel(s.info.Handler), string(ReasonPanic)).Inc()
	}
	s.panics++
	s.restarts++
	a.teardown()
	if s.state == Stopped {
		return
	}
	s.lastErr = p
	a.scheduleRetry(ctx, s.sh.cfg.RestartBackoff.Delay(s.panics, s.sh.rand()), p, waitRestart)
}

// stopping moves to Stopped first, so that nothing that happens during the
// teardown can start anything new, then releases everything.
func (a *serverActor) stopping() {
	_ = a.slot.transition(Stopped, change{})
	a.teardown()
}

// teardown cancels the attempt in flight, stops the timer and closes the
// session of this incarnation.
func (a *serverActor) teardown() {
	s := a.slot
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if a.cancel != nil {
		a.cancel()
	}
	if a.handoff != nil {
		a.handoff.closeAll()
	}
	if live := s.session.Swap(nil); live != nil {
		_ = live.s.Close()
	}
}

// startAttempt moves to Connecting and starts one attempt in a goroutine
// bounded by the incarnation's context and Config.ConnectTimeout.
func (a *serverActor) startAttempt(ctx actor.Context) {
	s, sh := a.slot, a.slot.sh
	id := a.identityForAttempt()
	if err := s.transition(Connecting, change{}); err != nil {
		return
	}
	s.gen = sh.nextGen()
	gen := s.gen

	actx, cancel := context.WithTimeout(a.life, sh.cfg.ConnectTimeout)
	self, root, life, spec, h := ctx.Self(), ctx.ActorSystem().Root, a.life, s.spec.Clone(), a.handoff
	report := func(hint, status string) {
		if life.Err() == nil {
			root.Send(self, &hintProgress{gen: gen, hint: hint, status: status})
		}
	}
	sh.wg.Add(1)
	go func() {
		defer sh.wg.Done()
		defer cancel()
		r := runAttempt(actx, sh.cfg.Connector, spec, id, report)
		r.gen = gen
		if r.sess != nil && !h.put(r.sess) {
			return // the incarnation ended; put closed the session
		}
		root.Send(self, r)
	}()
}

// runAttempt runs Connect and get_version, turning a panic into a result.
func runAttempt(ctx context.Context, c Connector, spec messages.ServerSpec, id *Identity, report func(hint, status string)) (r *attemptResult) {
	r = &attemptResult{}
	start := time.Now()
	defer func() {
		if v := recover(); v != nil {
			if r.sess != nil {
				_ = r.sess.Close()
				r.sess = nil
			}
			r.err, r.panicked = &PanicError{Value: v, Stack: debug.Stack()}, true
		}
	}()
	sess, err := c.Connect(ctx, spec, id, report)
	if err != nil {
		if sess != nil {
			_ = sess.Close()
		}
		r.err = err
		return r
	}
	if sess == nil {
		r.err = errors.New("actors: Connector returned neither a session nor an error")
		return r
	}
	r.sess = sess
	t := time.Now()
	r.versionInfo, r.versionErr = sess.Call(ctx, "get_version", nil, nil)
	r.getVersion = time.Since(t)
	r.total = time.Since(start)
	return r
}

// identityForAttempt returns the identity the next attempt presents: a new
// one, or under PerServer the server's. Its certificate is made only when
// the Connector asks for it (see Identity).
func (a *serverActor) identityForAttempt() *Identity {
	s, sh := a.slot, a.slot.sh
	if sh.cfg.Identity == PerServer && s.serverIdentity != nil {
		s.attemptIdentity = s.serverIdentity
		return s.attemptIdentity
	}
	id := NewIdentity(func() (*tubtls.Identity, error) {
		t := time.Now()
		id, err := sh.newIdentity()
		sh.m.identitySeconds.Observe(time.Since(t).Seconds())
		if err != nil {
			return nil, &ConnectError{Reason: ReasonIdentity, Err: err}
		}
		return id, nil
	})
	s.attemptIdentity = id
	if sh.cfg.Identity == PerServer {
		s.serverIdentity = id
	}
	return id
}

// attemptDone takes the result of the attempt goroutine.
func (a *serverActor) attemptDone(ctx actor.Context, r *attemptResult) {
	s, sh := a.slot, a.slot.sh
	if r.sess != nil {
		a.handoff.take(r.sess)
	}
	if r.gen != s.gen || s.state != Connecting {
		if r.sess != nil {
			_ = r.sess.Close()
		}
		return
	}
	if r.panicked {
		panic(r.err) // supervised: the broker restarts this actor after a delay
	}
	if r.err != nil {
		a.attemptFailed(ctx, r.err)
		return
	}

	sess := r.sess
	now := sh.clock.Now()
	s.info = sess.Info()
	s.versionInfo = keepVersion(r.versionInfo)
	s.version = termsafe.Clip(versionString(r.versionInfo), MaxVersionText)
	if r.versionErr != nil {
		sh.log.Warn("actors: get_version failed; keeping the session", slog.String(sh.kind.Name, s.spec.ID),
			slog.String("error", errorText(r.versionErr)))
	}
	s.attempts = 0
	s.connectedAt, s.lastConnected = now, now
	s.session.Store(&liveSession{s: sess})

	hl := handlerLabel(s.info.Handler)
	sh.m.attempts.WithLabelValues(hl).Inc()
	sh.m.sessions.WithLabelValues(protocolLabel(s.info.Protocol)).Inc()
	t := s.info.Timings
	for _, p := range []struct {
		phase string
		d     time.Duration
	}{
		{phaseDial, t.Dial}, {phaseUpgrade, t.Upgrade}, {phaseTLS, t.TLS}, {phaseNegotiation, t.Negotiation},
		{phaseGetReference, t.GetReference}, {phaseGetVersion, r.getVersion}, {phaseTotal, r.total},
	} {
		if p.d > 0 {
			sh.m.handshakeSeconds.WithLabelValues(p.phase, hl).Observe(p.d.Seconds())
		}
	}

	gen, self, root, life := s.gen, ctx.Self(), ctx.ActorSystem().Root, a.life
	sh.wg.Add(1)
	go func() {
		defer sh.wg.Done()
		select {
		case <-sess.Done():
			root.Send(self, &sessionLost{gen: gen, err: sess.Err()})
		case <-life.Done():
		}
	}()
	if err := s.transition(Connected, change{}); err != nil {
		return
	}
	ctx.Send(ctx.Parent(), &connectedNotice{id: s.spec.ID, at: now})
}

// attemptFailed classifies err and schedules the next attempt.
func (a *serverActor) attemptFailed(ctx actor.Context, err error) {
	s, sh := a.slot, a.slot.sh
	reason, permanent := classify(err)
	hl := handlerLabel(failureHandler(err))
	sh.m.attempts.WithLabelValues(hl).Inc()
	sh.m.failures.WithLabelValues(hl, string(reason)).Inc()
	s.lastErr = err
	s.failures++
	b := sh.cfg.Backoff
	d := b.Delay(s.failures, sh.rand())
	if permanent {
		d = b.jitter(b.MaxDelay, sh.rand())
	}
	a.scheduleRetry(ctx, d+a.decorrelation(), err, waitBackoff)
}

// lost handles the end of the live session.
func (a *serverActor) lost(ctx actor.Context, m *sessionLost) {
	s, sh := a.slot, a.slot.sh
	if m.gen != s.gen || s.state != Connected {
		return
	}
	if live := s.session.Swap(nil); live != nil {
		_ = live.s.Close()
	}
	err := m.err
	if err == nil {
		err = errSessionEnded
	}
	reason, _ := classify(err)
	sh.m.disconnects.WithLabelValues(handlerLabel(s.info.Handler), string(reason)).Inc()
	b := sh.cfg.Backoff
	now := sh.clock.Now()
	if now.Sub(s.connectedAt) >= b.StableAfter {
		s.failures = 0
	}
	if now.Sub(s.connectedAt) >= sh.cfg.RestartBackoff.StableAfter {
		s.panics = 0
	}
	s.failures++
	s.lastErr = err
	a.scheduleRetry(ctx, b.Delay(s.failures, sh.rand())+a.decorrelation(), err, waitBackoff)
}

// scheduleRetry arms the retry timer and then moves to WaitingToRetry for
// the given reason.
func (a *serverActor) scheduleRetry(ctx actor.Context, d time.Duration, cause error, why waitKind) {
	s, sh := a.slot, a.slot.sh
	if s.timer != nil {
		s.timer.Stop()
	}
	s.gen = sh.nextGen()
	gen, self, root := s.gen, ctx.Self(), ctx.ActorSystem().Root
	s.timer = sh.clock.AfterFunc(d, func() { root.Send(self, &retryTimer{gen: gen}) })
	sh.m.backoffSeconds.Observe(d.Seconds())
	_ = s.transition(WaitingToRetry, change{err: cause, delay: d, wait: why})
}

// tryNow is Broker.TryNow (Foolscap's reset()); docs/state-machine.md,
// "Triggers", says what it does in each state.
func (a *serverActor) tryNow(ctx actor.Context) {
	s := a.slot
	switch s.state {
	case Connecting:
		s.failures = 0
	case WaitingToRetry:
		if s.timer != nil {
			s.timer.Stop()
			s.timer = nil
		}
		s.failures = 0
		a.startAttempt(ctx)
	}
}

// peerConnected is Tahoe-LAFS's _trigger_connections: another server
// connected at at, so a wait draws a random point of the base delay (or of
// the Decorrelate window) and moves there if that is sooner.
// docs/state-machine.md, "Triggers", has the rules: a restart delay is
// never cut, a wait takes one draw at most, and none for a connection made
// before the wait began.
func (a *serverActor) peerConnected(ctx actor.Context, at time.Time) {
	s := a.slot
	if s.state != WaitingToRetry || s.wait == waitRestart || s.wait == waitDrawn || at.Before(s.since) {
		return
	}
	s.failures = 0
	w := s.sh.cfg.Backoff.BaseDelay
	if s.sh.cfg.Decorrelate > 0 {
		w = s.sh.cfg.Decorrelate
	}
	if d := time.Duration(s.sh.rand() * float64(w)); s.sh.clock.Now().Add(d).Before(s.nextAttempt) {
		a.scheduleRetry(ctx, d, s.lastErr, waitDrawn)
		return
	}
	_ = s.transition(WaitingToRetry, change{kind: note, wait: waitDrawn})
}

// progress records a hint status reported during the current attempt.
func (a *serverActor) progress(m *hintProgress) {
	s := a.slot
	if m.gen != s.gen || s.state != Connecting {
		return
	}
	_ = s.transition(Connecting, change{kind: progress, hint: m.hint, hintStatus: m.status})
}

// handoff passes sessions from attempt goroutines to the actor without
// losing one when the incarnation ends in between: a session is either taken
// by the actor or closed by closeAll, never both and never neither.
type handoff struct {
	mu      sync.Mutex // guards the following fields
	closed  bool
	pending map[Session]struct{}
}

// put registers sess as in flight to the actor. If the incarnation already
// ended it closes sess and returns false.
func (h *handoff) put(sess Session) bool {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = sess.Close()
		return false
	}
	h.pending[sess] = struct{}{}
	h.mu.Unlock()
	return true
}

// take removes sess from the in-flight set; the actor now owns it.
func (h *handoff) take(sess Session) {
	h.mu.Lock()
	delete(h.pending, sess)
	h.mu.Unlock()
}

// closeAll ends the handoff and closes every session still in flight.
func (h *handoff) closeAll() {
	h.mu.Lock()
	h.closed = true
	pending := h.pending
	h.pending = nil
	h.mu.Unlock()
	for sess := range pending {
		_ = sess.Close()
	}
}

// recordPanics is a receiver middleware for server actors: it keeps the
// panic value and stack in the slot (for the status and the restart
// event), logs them, and panics again so that protoactor's supervision
// takes over.
func recordPanics(s *slot) actor.ReceiverMiddleware {
	return func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			defer func() {
				if v := recover(); v != nil {
					pe, ok := v.(*PanicError)
					if !ok {
						pe = &PanicError{Value: v, Stack: debug.Stack()}
					}
					s.lastPanic = pe
					s.sh.log.Error("actors: child actor panicked", slog.String(s.sh.kind.Name, s.spec.ID),
						slog.Any("panic", pe.Value), slog.String("stack", string(pe.Stack)))
					panic(pe)
				}
			}()
			next(c, env)
		}
	}
}
