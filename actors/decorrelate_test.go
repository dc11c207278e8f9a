package actors

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm/messages"
)

// TestDecorrelate checks, statistically with a fixed seed, that with
// Config.Decorrelate the first connections of many servers are spread
// uniformly over the window instead of happening together, and that one
// server connecting does not pull the others forward into a wave.
func TestDecorrelate(t *testing.T) {
	const (
		n      = 400
		window = 10 * time.Minute
	)
	src := rand.New(rand.NewPCG(2759, 1))
	conn := newMemConnector()
	b, clk := newTestBroker(t, Config{Connector: conn, Decorrelate: window, SubscriberBuffer: 4 * n},
		WithRand(src.Float64))
	rec := newRecorder(t, b)
	start := clk.Now()
	specs := make([]messages.ServerSpec, n)
	for i := range specs {
		specs[i] = spec(fmt.Sprintf("s%03d", i), "k")
	}
	if err := b.Apply(specs); err != nil {
		t.Fatal(err)
	}
	waiting := func() bool {
		for i := range n {
			if rec.count(fmt.Sprintf("s%03d", i), WaitingToRetry) == 0 {
				return false
			}
		}
		return true
	}
	rec.until(waiting)
	if got := len(conn.ids("s000")); got != 0 {
		t.Fatalf("a server connected before its decorrelation delay (%d attempts)", got)
	}
	for _, st := range b.Servers() {
		if st.Summary[:len("Connecting in ")] != "Connecting in " {
			t.Fatalf("summary of a held-back first attempt: %q", st.Summary)
		}
	}

	// The scheduled first attempts must be spread uniformly over the
	// window: chi-square over 10 equal bins, 9 degrees of freedom; 27.88 is
	// the 0.1% critical value.
	var bins [10]int
	first, firstID := window, ""
	for _, st := range b.Servers() {
		d := st.NextAttempt.Sub(start)
		if d < 0 || d >= window {
			t.Fatalf("%s scheduled at +%v, outside the window", st.ID, d)
		}
		bins[int(d*10/window)]++
		if d < first {
			first, firstID = d, st.ID
		}
	}
	chi2 := 0.0
	for _, c := range bins {
		e := float64(n) / 10
		chi2 += (float64(c) - e) * (float64(c) - e) / e
	}
	if chi2 > 27.88 {
		t.Errorf("first connections not uniform over the window: bins %v, chi2 %.1f", bins, chi2)
	}

	// No wave: when the earliest server connects, the others must not all
	// be pulled forward with it (Tahoe's reset-all-on-connect would).
	clk.Advance(first)
	rec.until(func() bool { return rec.count(firstID, Connected) == 1 })
	b.Apply(specs) // a round trip through the broker: the trigger has been handled
	now := clk.Now()
	var attempted int
	bins = [10]int{}
	for _, st := range b.Servers() {
		if st.ID == firstID {
			continue
		}
		if st.State != WaitingToRetry {
			attempted++
			continue
		}
		d := st.NextAttempt.Sub(now)
		if d < 0 || d >= window {
			t.Fatalf("%s rescheduled at +%v, outside the window", st.ID, d)
		}
		bins[int(d*10/window)]++
	}
	if attempted > 0 {
		t.Errorf("%d servers attempted together with the first one", attempted)
	}
	// Each wait became the sooner of what was left of it and one fresh
	// uniform draw over the window, so about (1-x)² of the servers wait
	// at least x of the window: a quarter in the later half, a fifth in
	// the first tenth. Which server takes which draw depends on the actors'
	// order, so the bounds sit six standard deviations out. A wave would
	// put nearly every server in the first tenth.
	later := 0
	for _, c := range bins[5:] {
		later += c
	}
	if later < 50 || bins[0] > 140 {
		t.Errorf("after the first connection %d servers wait past half the window (about 100 expected) and %d less than a tenth (about 76): %v", later, bins[0], bins)
	}
}

// TestNoDecorrelateByDefault checks that without the option first
// attempts start at once.
func TestNoDecorrelateByDefault(t *testing.T) {
	conn := newMemConnector()
	b, _ := newTestBroker(t, Config{Connector: conn})
	rec := newRecorder(t, b)
	if err := b.Apply([]messages.ServerSpec{spec("a", "k"), spec("b", "k")}); err != nil {
		t.Fatal(err)
	}
	rec.until(func() bool { return rec.count("a", Connected) == 1 && rec.count("b", Connected) == 1 })
	for _, id := range []string{"a", "b"} {
		if got := rec.states(id); len(got) < 2 || got[0] != Connecting {
			t.Errorf("%s: states %v, want Connecting first", id, got)
		}
	}
}
