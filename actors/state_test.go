package actors

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tubfarm/tubfarm/messages"
)

func newTestShared() *shared {
	m := newMetrics(ServerKind)
	return &shared{
		cfg:  Config{Backoff: DefaultBackoff, RestartBackoff: DefaultRestartBackoff},
		kind: ServerKind, m: m, hub: newHub(m), log: slog.New(slog.DiscardHandler), clock: newFakeClock(),
		randSrc: func() float64 { return 0.5 },
	}
}

func TestStateString(t *testing.T) {
	tests := []struct {
		s    State
		want string
	}{
		{Idle, "idle"}, {Connecting, "connecting"}, {Connected, "connected"},
		{WaitingToRetry, "waiting_to_retry"}, {Stopped, "stopped"},
		{State(-1), "State(-1)"}, {State(messages.NumStates), "State(5)"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("State(%d).String() = %q, want %q", int(tt.s), got, tt.want)
		}
	}
}

// TestTransitions tries every (from, to) pair, plus out-of-range values, on
// the one transition function: legal ones change the state, publish an event
// and move the gauge; illegal ones return a *TransitionError, count, and
// change nothing.
func TestTransitions(t *testing.T) {
	legalPairs := map[[2]State]bool{
		{Idle, Connecting}: true, {Idle, WaitingToRetry}: true, {Idle, Stopped}: true,
		{Connecting, Connected}: true, {Connecting, WaitingToRetry}: true, {Connecting, Stopped}: true,
		{Connected, WaitingToRetry}: true, {Connected, Stopped}: true,
		{WaitingToRetry, Connecting}: true, {WaitingToRetry, WaitingToRetry}: true, {WaitingToRetry, Stopped}: true,
	}
	all := []State{Idle, Connecting, Connected, WaitingToRetry, Stopped, State(-1), State(7)}
	for _, from := range all[:5] {
		for _, to := range all {
			t.Run(from.String()+"->"+to.String(), func(t *testing.T) {
				sh := newTestShared()
				ch, cancel := sh.hub.subscribe(4)
				defer cancel()
				s := newSlot(sh, messages.ServerSpec{ID: "srv"})
				s.state = from
				s.publish()
				sh.m.states.WithLabelValues(Idle.String()).Dec()
				sh.m.states.WithLabelValues(from.String()).Inc()
				err := s.transition(to, change{})
				want := legalPairs[[2]State{from, to}]
				if Legal(from, to) != want {
					t.Errorf("Legal(%v, %v) = %v, want %v", from, to, !want, want)
				}
				if want {
					if err != nil {
						t.Fatalf("legal transition refused: %v", err)
					}
					if s.state != to || s.status.Load().State != to {
						t.Errorf("state = %v, published %v; want %v", s.state, s.status.Load().State, to)
					}
					ev := <-ch
					if ev.From != from || ev.To != to || ev.ServerID != "srv" || ev.Seq != 1 {
						t.Errorf("event = %+v", ev)
					}
					if g := testutil.ToFloat64(sh.m.states.WithLabelValues(to.String())); g != 1 {
						t.Errorf("gauge{%v} = %v, want 1", to, g)
					}
					return
				}
				var te *TransitionError
				if !errors.As(err, &te) || te.From != from || te.To != to || te.ID != "srv" {
					t.Fatalf("illegal transition: err = %v, want *TransitionError{srv %v %v}", err, from, to)
				}
				if s.state != from || s.status.Load().State != from {
					t.Errorf("state changed to %v by a refused transition", s.state)
				}
				if n := testutil.ToFloat64(sh.m.illegalTransitions); n != 1 {
					t.Errorf("illegal transitions counted %v, want 1", n)
				}
				select {
				case ev := <-ch:
					t.Errorf("refused transition published %+v", ev)
				default:
				}
			})
		}
	}
}

// TestLifecycleRecords checks the records transition makes besides state
// changes: a new slot enters the gauge in Idle, a status-only note publishes
// a snapshot without an event or a gauge move, and leaving (a Stopped child
// reaped, or one that never started) takes it out of the gauge and marks
// its last snapshot Removed. Leaving from any other state is refused.
func TestLifecycleRecords(t *testing.T) {
	sh := newTestShared()
	gauge := func(s State) float64 { return testutil.ToFloat64(sh.m.states.WithLabelValues(s.String())) }
	ch, cancel := sh.hub.subscribe(4)
	defer cancel()

	s := newSlot(sh, messages.ServerSpec{ID: "srv", Nickname: "a"})
	if gauge(Idle) != 1 || s.status.Load().State != Idle {
		t.Fatalf("new slot: gauge{idle} = %v, state %v", gauge(Idle), s.status.Load().State)
	}
	s.spec.Nickname = "b"
	if err := s.transition(s.state, change{kind: note}); err != nil {
		t.Fatal(err)
	}
	if got := s.status.Load().Nickname; got != "b" {
		t.Errorf("note did not publish the new nickname: %q", got)
	}
	if err := s.transition(Connecting, change{}); err != nil {
		t.Fatal(err)
	}
	if err := s.transition(Stopped, change{kind: leave}); err == nil {
		t.Error("leave from Connecting accepted")
	}
	if err := s.transition(Stopped, change{}); err != nil {
		t.Fatal(err)
	}
	if err := s.transition(Stopped, change{kind: leave}); err != nil {
		t.Fatal(err)
	}
	if st := s.status.Load(); !st.Removed || st.State != Stopped {
		t.Errorf("after leave: %+v", st)
	}
	for i := range messages.NumStates {
		if g := gauge(State(i)); g != 0 {
			t.Errorf("gauge{%v} = %v after leave, want 0", State(i), g)
		}
	}
	var got []State
	for len(ch) > 0 {
		got = append(got, (<-ch).To)
	}
	if want := []State{Connecting, Stopped}; !slices.Equal(got, want) {
		t.Errorf("events to %v, want %v (only moves publish events)", got, want)
	}

	never := newSlot(sh, messages.ServerSpec{ID: "never"})
	if err := never.transition(Stopped, change{kind: leave}); err != nil || gauge(Idle) != 0 {
		t.Errorf("leave of a never started child: %v, gauge{idle} = %v", err, gauge(Idle))
	}
}

// TestKinds runs a broker of servers and one of another kind on one
// registry: each kind's metrics have names of their own.
func TestKinds(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	quiet := WithLogger(slog.New(slog.DiscardHandler))
	servers, err := New(Config{Connector: newMemConnector()}, WithRegisterer(reg), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer servers.Close()
	intro := Kind{Name: "introducer", Plural: "introducers", Subsystem: "introducer"}
	others, err := New(Config{Connector: newMemConnector(), Kind: intro}, WithRegisterer(reg), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer others.Close()
	if err := others.Apply([]messages.ServerSpec{spec("i1", "k")}); err != nil {
		t.Fatal(err)
	}
	if err := others.WhenConnected(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := make(map[string]bool)
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{
		"tubfarm_servers", "tubfarm_connect_attempts_total", "tubfarm_actor_restarts_total",
		"tubfarm_introducers", "tubfarm_introducers_revealing_ip", "tubfarm_introducer_connect_attempts_total",
		"tubfarm_introducer_actor_restarts_total", "tubfarm_introducer_illegal_transitions_total",
	} {
		if !names[n] {
			t.Errorf("metric %s not registered", n)
		}
	}
	if got := testutil.ToFloat64(others.sh.m.states.WithLabelValues("connected")); got != 1 {
		t.Errorf("introducers{connected} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(servers.sh.m.states.WithLabelValues("connected")); got != 0 {
		t.Errorf("servers{connected} = %v, want 0", got)
	}
	for _, k := range []Kind{{Name: "x", Plural: "xs"}, {Name: "Bad", Plural: "b", Subsystem: "b"}, {Name: "x"}} {
		if _, err := New(Config{Connector: newMemConnector(), Kind: k}, quiet); err == nil {
			t.Errorf("New accepted Kind %+v", k)
		}
	}
}

// TestPeerConnectedDrawsOnce: a peer's connection draws one retry point
// per wait. When the draw is later than the pending retry, the retry stays
// and the wait is still marked drawn, so that further connections cannot
// pull it forward with more draws; no event is published for that.
func TestPeerConnectedDrawsOnce(t *testing.T) {
	sh := newTestShared()
	draws := 0
	sh.randSrc = func() float64 { draws++; return 0.9 } // 0.9 s of the 1 s base delay
	ch, cancel := sh.hub.subscribe(8)
	defer cancel()
	s := newSlot(sh, messages.ServerSpec{ID: "srv"})
	a := &serverActor{slot: s}
	if err := s.transition(Connecting, change{}); err != nil {
		t.Fatal(err)
	}
	const left = 200 * time.Millisecond
	if err := s.transition(WaitingToRetry, change{delay: left, wait: waitBackoff}); err != nil {
		t.Fatal(err)
	}
	s.failures = 3
	at := sh.clock.Now()
	a.peerConnected(nil, at) // the draw (0.9 s) is later than the retry: nothing to move
	if st := s.status.Load(); s.wait != waitDrawn || s.failures != 0 || draws != 1 || !st.NextAttempt.Equal(at.Add(left)) {
		t.Errorf("after one notice: wait %v, failures %d, draws %d, next attempt %v", s.wait, s.failures, draws, st.NextAttempt.Sub(at))
	}
	a.peerConnected(nil, at)
	if draws != 1 {
		t.Errorf("a second notice drew again (%d draws)", draws)
	}
	if n := len(ch); n != 2 {
		t.Errorf("%d events, want the 2 transitions only", n)
	}
}
