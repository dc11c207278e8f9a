package actors

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"testing"

	"github.com/tubfarm/tubfarm/messages"
)

// connectingSlot returns a slot in Connecting, as startAttempt leaves it.
func connectingSlot(t testing.TB) (*serverActor, *slot) {
	t.Helper()
	s := newSlot(newTestShared(), messages.ServerSpec{ID: "srv"})
	if err := s.transition(Connecting, change{}); err != nil {
		t.Fatal(err)
	}
	s.gen = 1
	return &serverActor{slot: s}, s
}

// TestHintProgress checks what hint progress records: a row per hint in
// the order first reported, a later report updating its row in place, a
// new table for each attempt, and no report accepted outside Connecting.
func TestHintProgress(t *testing.T) {
	a, s := connectingSlot(t)
	for _, r := range [][2]string{{"tcp:a:1", "connecting"}, {"tcp:b:1", "connecting"}, {"tcp:a:1", "connection refused"}, {"tcp:c:1", "not tried"}} {
		a.progress(&hintProgress{gen: 1, hint: r[0], status: r[1]})
	}
	a.progress(&hintProgress{gen: 0, hint: "tcp:stale:1", status: "from an older attempt"})
	want := []HintStatus{{"tcp:a:1", "connection refused"}, {"tcp:b:1", "connecting"}, {"tcp:c:1", "not tried"}}
	st := s.snapshot(s.sh.clock.Now())
	if !slices.Equal(st.Hints, want) || st.Attempts != 1 {
		t.Fatalf("Hints = %v, Attempts = %d; want %v, 1", st.Hints, st.Attempts, want)
	}
	st.Hints[0].Status = "changed by the caller"
	if got := s.snapshot(s.sh.clock.Now()).Hints; !slices.Equal(got, want) {
		t.Errorf("a caller's change to its copy reached the slot: %v", got)
	}

	// The rows of the attempt stay while it waits; the next attempt starts
	// a table of its own.
	_ = s.transition(WaitingToRetry, change{})
	if err := s.transition(Connecting, change{kind: progress, hint: "tcp:a:1", hintStatus: "late"}); err == nil {
		t.Errorf("progress accepted in WaitingToRetry")
	}
	if got := s.snapshot(s.sh.clock.Now()).Hints; !slices.Equal(got, want) {
		t.Errorf("WaitingToRetry: Hints = %v, want %v", got, want)
	}
	_ = s.transition(Connecting, change{})
	if st := s.snapshot(s.sh.clock.Now()); st.Hints != nil || st.Attempts != 2 {
		t.Errorf("new attempt: Hints = %v, Attempts = %d; want none, 2", st.Hints, st.Attempts)
	}
}

// TestHintProgressCost checks that the work of a hint report does not grow
// with the number of hints: a report neither republishes the snapshot nor
// copies the table, and the bytes allocated per report are the same for
// 1 000 hints as for 10 000 (a FURL of a stranger's making may carry that
// many, each reported once, as not tried).
func TestHintProgressCost(t *testing.T) {
	perReport := func(n int) float64 {
		a, s := connectingSlot(t)
		hints := make([]string, n)
		for i := range hints {
			hints[i] = "tcp:junk-" + strconv.Itoa(i) + ".example:1"
		}
		published := s.status.Load()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for _, h := range hints {
			a.progress(&hintProgress{gen: 1, hint: h, status: "not tried"})
		}
		for _, h := range hints {
			a.progress(&hintProgress{gen: 1, hint: h, status: "connection refused"})
		}
		runtime.ReadMemStats(&after)
		if s.status.Load() != published {
			t.Errorf("%d hints: a hint report republished the snapshot", n)
		}
		if got := s.snapshot(s.sh.clock.Now()).Hints; len(got) != n || got[n-1].Status != "connection refused" {
			t.Errorf("%d hints: the snapshot has %d rows, the last %v", n, len(got), got[len(got)-1])
		}
		return float64(after.TotalAlloc-before.TotalAlloc) / float64(2*n)
	}
	small, large := perReport(1_000), perReport(10_000)
	t.Logf("bytes allocated per report: %.0f for 1 000 hints, %.0f for 10 000", small, large)
	if large > 2*small+64 {
		t.Errorf("bytes allocated per report grow with the number of hints: %.0f for 1 000, %.0f for 10 000", small, large)
	}

	a, _ := connectingSlot(t)
	a.progress(&hintProgress{gen: 1, hint: "tcp:a:1", status: "connecting"})
	m := &hintProgress{gen: 1, hint: "tcp:a:1", status: "connection refused"}
	if n := testing.AllocsPerRun(100, func() { a.progress(m) }); n != 0 {
		t.Errorf("updating a hint's row allocates %v times, want 0", n)
	}
}

// BenchmarkHintProgress reports the cost of one hint report on an attempt
// that already has n hint rows: it should not depend on n.
func BenchmarkHintProgress(b *testing.B) {
	for _, n := range []int{16, 1_000, 10_000} {
		b.Run(fmt.Sprintf("hints=%d", n), func(b *testing.B) {
			a, _ := connectingSlot(b)
			hints := make([]string, n)
			for i := range hints {
				hints[i] = "tcp:junk-" + strconv.Itoa(i) + ".example:1"
				a.progress(&hintProgress{gen: 1, hint: hints[i], status: "connecting"})
			}
			m := &hintProgress{gen: 1, status: "not tried"}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				m.hint = hints[i%n]
				a.progress(m)
			}
		})
	}
}
