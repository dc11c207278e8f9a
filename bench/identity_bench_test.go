package bench

import (
	"testing"

	"github.com/tubfarm/tubfarm/bench/internal/measure"
	"github.com/tubfarm/tubfarm/bench/internal/refid"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// reportCPU adds cpu-ns/op (process CPU time per iteration, all
// goroutines) when the returned function runs. On a shared machine CPU
// time is steadier than wall time.
func reportCPU(b *testing.B) func() {
	u0, s0, err0 := measure.CPUTime()
	return func() {
		u1, s1, err1 := measure.CPUTime()
		if err0 == nil && err1 == nil && b.N > 0 {
			b.ReportMetric(float64(u1+s1-u0-s0)/float64(b.N), "cpu-ns/op")
		}
	}
}

// BenchmarkIdentity is the cost of one client identity: tubfarm's
// ephemeral ECDSA P-256 identity against Foolscap's RSA-2048 Tub
// certificate, made by the same Go code. (tls/bench_test.go has the
// variants; bench/compare measures Python Foolscap's own Tub().)
func BenchmarkIdentity(b *testing.B) {
	for _, bc := range []struct {
		name string
		make func() (*tubtls.Identity, error)
	}{
		{"kind=ecdsa_p256", tubtls.NewEphemeral},
		{"kind=rsa2048", refid.NewRSA2048},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				id, err := bc.make()
				if err != nil {
					b.Fatal(err)
				}
				if id.TubID == "" {
					b.Fatal("identity without a TubID")
				}
			}
		})
	}
}
