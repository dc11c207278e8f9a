package actors

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tubfarm/tubfarm/messages"
)

func newTestShared() *shared {
	m := newMetrics()
	return &shared{
		cfg: Config{Backoff: DefaultBackoff, RestartBackoff: DefaultRestartBackoff},
		m:   m, hub: newHub(m), log: slog.New(slog.DiscardHandler), clock: newFakeClock(),
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
				sh.m.servers.WithLabelValues(Idle.String()).Dec()
				sh.m.servers.WithLabelValues(from.String()).Inc()
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
					if g := testutil.ToFloat64(sh.m.servers.WithLabelValues(to.String())); g != 1 {
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
