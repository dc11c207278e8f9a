package tubfarm_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the examples leave no goroutine behind. The
// package's end-to-end tests are in e2e/.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
