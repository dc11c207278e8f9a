package e2e

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/actors"
	"github.com/tubfarm/tubfarm/internal/grid"
)

// TestPrivacyDecorrelateEndToEnd checks connect-time decorrelation through
// tubfarm.Open (Options.Decorrelate, with an injected clock and a seeded
// random source): no server is contacted before its own random delay, the
// delays are spread uniformly over the window, and the first server to
// come due connects alone. actors.TestDecorrelate checks the statistics
// on 400 servers and the absence of reconnection waves.
func TestPrivacyDecorrelateEndToEnd(t *testing.T) {
	const (
		n      = 60
		window = 10 * time.Minute
	)
	g, err := grid.Start(testCtx(t), n, "decor", grid.Options{Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{Static: g.Servers}); err != nil {
		t.Fatal(err)
	}
	clk := &jumpClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	t.Cleanup(clk.wg.Wait)
	start := clk.Now()
	src := rand.New(rand.NewPCG(2759, 6))
	b := openBroker(t, dir, tubfarm.Options{
		Decorrelate: window,
		TestHooks:   &tubfarm.TestHooks{ActorOptions: []actors.Option{actors.WithClock(clk), actors.WithRand(src.Float64)}},
	})
	waitFor(t, b, "every server to be held back", func() bool {
		sts := b.Statuses()
		return len(sts) == n && !slices.ContainsFunc(sts, func(st actors.Status) bool { return st.State != actors.WaitingToRetry })
	})
	for _, s := range g.Servers {
		if c := s.Clients(); len(c) > 0 {
			t.Fatalf("%s was contacted before its decorrelation delay", s.Nickname)
		}
	}

	// Spread: chi-square over 5 equal bins, 4 degrees of freedom; 18.47
	// is the 0.1% critical value.
	var bins [5]int
	first, firstID := window, ""
	for _, st := range b.Statuses() {
		d := st.NextAttempt.Sub(start)
		if d < 0 || d >= window {
			t.Fatalf("%s scheduled at +%v, outside the window", st.Nickname, d)
		}
		bins[int(d*5/window)]++
		if d < first {
			first, firstID = d, st.ID
		}
	}
	chi2 := 0.0
	for _, c := range bins {
		e := float64(n) / 5
		chi2 += (float64(c) - e) * (float64(c) - e) / e
	}
	if chi2 > 18.47 {
		t.Errorf("first connections not uniform over the window: bins %v, chi2 %.1f", bins, chi2)
	}

	// The earliest comes due: it, and only it, connects.
	clk.Jump(first)
	ctx := testCtx(t)
	if err := b.WhenConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for _, s := range g.Servers {
		if s.ID != firstID {
			continue
		}
		select {
		case <-s.Seen():
		case <-ctx.Done():
			t.Fatalf("the earliest server, %s, saw no client", s.Nickname)
		}
	}
	for _, s := range g.Servers {
		if s.ID != firstID && len(s.Clients()) > 0 {
			t.Errorf("%s was contacted at +%v, before its delay", s.Nickname, first)
		}
	}

	// After the window everyone connects. The first connection may still
	// be moving other servers' retries (asynchronously, to points of a new
	// window from now), so the clock is advanced again after every batch
	// of events until all are connected.
	events, stop := b.Subscribe()
	defer stop()
	connected := func() int {
		k := 0
		for _, st := range b.Statuses() {
			if st.Connected {
				k++
			}
		}
		return k
	}
	for connected() < n {
		clk.Jump(window)
		select {
		case <-events:
		case <-ctx.Done():
			t.Fatalf("%d of %d servers connected after the window", connected(), n)
		}
	}
}
