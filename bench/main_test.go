package bench

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/tubfarm/tubfarm/bench/internal/gridproc"
)

// TestMain lets the test binary double as the grid server process of the
// multi-server benchmarks, and checks that nothing leaks goroutines.
func TestMain(m *testing.M) {
	gridproc.MaybeServe()
	goleak.VerifyTestMain(m)
}
