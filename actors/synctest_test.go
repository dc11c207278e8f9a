package actors

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tubfarm/tubfarm/messages"
)

// TestRealClockInBubble runs a broker on the real clock inside a synctest
// bubble (in-memory sessions only: the bubble's clock cannot advance while a
// goroutine waits on a real socket). The server refuses twice, so it
// connects after exactly 1 s + 2 s of bubble time.
func TestRealClockInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conn := newMemConnector()
		conn.fail = func(_ string, n int) error {
			if n < 2 {
				return &ConnectError{Reason: ReasonRefused, Err: errors.New("refused")}
			}
			return nil
		}
		b, err := New(Config{Connector: conn}, WithRand(func() float64 { return 0.5 }),
			WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		start := time.Now()
		if err := b.Apply([]messages.ServerSpec{spec("s", "k")}); err != nil {
			t.Fatal(err)
		}

		time.Sleep(1500 * time.Millisecond) // bubble time: returns once everything else is idle
		synctest.Wait()
		st, _ := b.Server("s")
		if st.State != WaitingToRetry || st.Attempts != 2 || st.Backoff != 2*time.Second {
			t.Fatalf("at 1.5 s: state %v, attempts %d, backoff %v", st.State, st.Attempts, st.Backoff)
		}
		if want := "Reconnecting in 1 seconds (last attempt 0s ago)"; st.Summary != want {
			t.Errorf("summary at 1.5 s = %q, want %q", st.Summary, want)
		}

		if err := b.WhenConnected(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Errorf("connected after %v of bubble time, want exactly 3s", got)
		}
	})
}
