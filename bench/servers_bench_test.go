package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/actors"
	"github.com/tubfarm/tubfarm/bench/internal/gridproc"
	"github.com/tubfarm/tubfarm/bench/internal/measure"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// grids starts grid server processes on demand, one per size, and stops
// them all at the end of the benchmark that made it.
type grids struct {
	b     *testing.B
	mu    sync.Mutex
	procs map[int]*gridproc.Proc
}

func newGrids(b *testing.B) *grids {
	g := &grids{b: b, procs: map[int]*gridproc.Proc{}}
	b.Cleanup(func() {
		for _, p := range g.procs {
			if err := p.Close(); err != nil {
				b.Error(err)
			}
		}
	})
	return g
}

// get returns a running grid of n servers. Its node directory belongs to
// the parent benchmark, so sub-benchmarks share it.
func (g *grids) get(b *testing.B, n int) *gridproc.Proc {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p := g.procs[n]; p != nil {
		return p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err := gridproc.Start(ctx, n, g.b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	g.procs[n] = p
	return p
}

// identityModes are the two ways of naming the client compared: a fresh
// ephemeral identity for each server (tubfarm's design; PerServer keeps it
// across reconnections), and one identity shared by every server, made
// once (what one Foolscap Tub for all servers amounts to).
var identityModes = []string{"per_server", "shared"}

// brokerOptions returns the broker options of an identity mode.
func brokerOptions(b *testing.B, mode string) tubfarm.Options {
	opts := tubfarm.Options{
		Logger:        slog.New(slog.DiscardHandler),
		Identity:      actors.PerServer,
		WatchInterval: -1,
	}
	if mode == "shared" {
		id, err := tubtls.NewEphemeral()
		if err != nil {
			b.Fatal(err)
		}
		opts.TestHooks = &tubfarm.TestHooks{ActorOptions: []actors.Option{actors.WithIdentitySource(func() (*tubtls.Identity, error) { return id, nil })}}
	}
	return opts
}

// footprint is what the client process holds, read after a full GC.
type footprint struct {
	heap, stack, rss int64 // bytes: HeapAlloc, StackInuse, VmRSS
	goroutines       int
}

func readFootprint() footprint {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, _ := measure.ProcStatus("VmRSS")
	return footprint{heap: int64(ms.HeapAlloc), stack: int64(ms.StackInuse), rss: rss, goroutines: runtime.NumGoroutine()}
}

// connection is one measurement of connectOnce.
type connection struct {
	elapsed, cpu time.Duration
	grow         footprint // what the client holds more once all are connected
}

// connectOnce opens a broker on the grid's node directory, waits until all
// n servers are connected, measures, and closes the broker.
func connectOnce(b *testing.B, p *gridproc.Proc, n int, mode string) connection {
	opts := brokerOptions(b, mode)
	before := readFootprint()
	c0 := cpuNow()
	t0 := time.Now()
	br, err := tubfarm.Open(p.Dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	err = br.WhenConnected(ctx, n)
	c := connection{elapsed: time.Since(t0), cpu: cpuNow() - c0}
	if err != nil {
		b.Fatalf("%d servers: %v (%d connected)", n, err, connected(br))
	}
	after := readFootprint()
	writeProfiles(b)
	c.grow = footprint{
		heap:       after.heap - before.heap,
		stack:      after.stack - before.stack,
		rss:        after.rss - before.rss,
		goroutines: after.goroutines - before.goroutines,
	}
	return c
}

// connectAll runs connectOnce per iteration and reports per connected
// server what the client holds then.
func connectAll(b *testing.B, p *gridproc.Proc, n int, mode string) {
	var sum connection
	for b.Loop() {
		c := connectOnce(b, p, n, mode)
		sum.elapsed += c.elapsed
		sum.cpu += c.cpu
		sum.grow.heap += c.grow.heap
		sum.grow.stack += c.grow.stack
		sum.grow.rss += c.grow.rss
		sum.grow.goroutines += c.grow.goroutines
	}
	per := float64(b.N) * float64(n)
	b.ReportMetric(float64(sum.elapsed.Milliseconds())/float64(b.N), "ms/all-connected")
	b.ReportMetric(float64(sum.cpu.Microseconds())/per, "cpu-µs/server")
	b.ReportMetric(float64(sum.grow.heap+sum.grow.stack)/per, "B/server")
	b.ReportMetric(float64(sum.grow.heap)/per, "heap-B/server")
	b.ReportMetric(float64(sum.grow.stack)/per, "stack-B/server")
	b.ReportMetric(float64(sum.grow.rss)/per, "rss-B/server")
	b.ReportMetric(float64(sum.grow.goroutines)/per, "goroutines/server")
}

// writeProfiles writes the heap and goroutine profiles of this moment
// (all servers connected) to $TUBFARM_BENCH_PROFILE_DIR, if it is set,
// named after the benchmark: docs/performance.md reads them with
// go tool pprof.
func writeProfiles(b *testing.B) {
	dir := os.Getenv("TUBFARM_BENCH_PROFILE_DIR")
	if dir == "" {
		return
	}
	name := strings.NewReplacer("/", "_", "=", "-").Replace(b.Name())
	for _, prof := range []string{"heap", "goroutine"} {
		f, err := os.Create(filepath.Join(dir, name+"."+prof+".pprof"))
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.Lookup(prof).WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func connected(br *tubfarm.Broker) int {
	n := 0
	for _, st := range br.Statuses() {
		if st.Connected {
			n++
		}
	}
	return n
}

// BenchmarkConnectServers is a broker connecting to N Go storage servers in
// another process (one shared listener), with an identity per server and
// with one shared identity. It reports the time until all are connected
// and, per connected server, the client's CPU time, heap and stack bytes
// (B/server, then each alone), resident memory and goroutines. The goal: per-server
// identities cost at most 1.2× one shared identity.
func BenchmarkConnectServers(b *testing.B) {
	g := newGrids(b)
	for _, mode := range identityModes {
		b.Run("identity="+mode, func(b *testing.B) {
			for _, n := range []int{10, 100, 1000} {
				b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
					connectAll(b, g.get(b, n), n, mode)
				})
			}
		})
	}
}

// BenchmarkPerServerVsShared is BenchmarkConnectServers' identity
// comparison made robust to a shared machine: each iteration connects to
// all N servers with an identity per server and then with one shared
// identity, so both see the same load, and it reports their mean times and
// the ratio (the goal is ≤ 1.2), in wall time and in client CPU time.
func BenchmarkPerServerVsShared(b *testing.B) {
	g := newGrids(b)
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			p := g.get(b, n)
			var per, shared connection
			for b.Loop() {
				c := connectOnce(b, p, n, "per_server")
				per.elapsed += c.elapsed
				per.cpu += c.cpu
				c = connectOnce(b, p, n, "shared")
				shared.elapsed += c.elapsed
				shared.cpu += c.cpu
			}
			b.ReportMetric(float64(per.elapsed.Milliseconds())/float64(b.N), "per_server-ms")
			b.ReportMetric(float64(shared.elapsed.Milliseconds())/float64(b.N), "shared-ms")
			b.ReportMetric(float64(per.elapsed)/float64(shared.elapsed), "per_server/shared")
			b.ReportMetric(float64(per.cpu)/float64(shared.cpu), "per_server/shared-cpu")
		})
	}
}

// scaleServers is BenchmarkScale's grid size: 2 000 by default, so that a
// one-shot CI run stays short, and 10 000 with TUBFARM_BENCH_SCALE=1.
func scaleServers() int {
	if os.Getenv("TUBFARM_BENCH_SCALE") == "1" {
		return 10_000
	}
	return 2_000
}

// BenchmarkScale connects one broker to thousands of servers (see
// scaleServers) with an identity per server, the servers in another
// process, after raising the descriptor limit. The goals: at most 64 KiB
// and 3 goroutines per connected server.
func BenchmarkScale(b *testing.B) {
	if _, err := measure.RaiseNOFILE(); err != nil {
		b.Fatal(err)
	}
	n := scaleServers()
	g := newGrids(b)
	b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
		connectAll(b, g.get(b, n), n, "per_server")
	})
}

// stormPolicies are the reconnection policies compared after a restart of
// every server: the default (one server reconnecting makes every waiting
// server retry at once, as Tahoe-LAFS does), isolated backoff (each server
// keeps its own schedule), and connect-time decorrelation (each retry at a
// random point of a window, for unlinkability).
var stormPolicies = []struct {
	name string
	set  func(*tubfarm.Options)
}{
	{"policy=default", func(*tubfarm.Options) {}},
	{"policy=isolated", func(o *tubfarm.Options) { o.IsolatedBackoff = true }},
	{"policy=decorrelate_2s", func(o *tubfarm.Options) { o.Decorrelate = 2 * time.Second }},
}

// stormUptimes are how long the grid stays connected before it restarts:
// at once (while the broker may still be working through the
// notifications of the first connections), and after a few seconds, as a
// grid that has been up for a while.
var stormUptimes = []time.Duration{0, 3 * time.Second}

// BenchmarkRestartStorm connects to 1 000 servers, lets them stay up for a
// while (uptime), then restarts all of them at once (the server process
// closes every connection and its socket and listens again), and measures
// until every server is connected again: the reconnection times after the
// restart (p50, p95, max), the most connection attempts that started within
// one 100 ms window (a synchronized wave shows as most of the 1 000), and
// the client CPU time spent reconnecting. It logs the attempts per 100 ms.
func BenchmarkRestartStorm(b *testing.B) {
	const n = 1000
	g := newGrids(b)
	for _, pol := range stormPolicies {
		b.Run(pol.name, func(b *testing.B) {
			for _, uptime := range stormUptimes {
				b.Run(fmt.Sprintf("uptime=%v", uptime), func(b *testing.B) {
					p := g.get(b, n)
					var sum stormResult
					for b.Loop() {
						r := restartStorm(b, p, n, uptime, pol.set)
						sum.p50 += r.p50
						sum.p95 += r.p95
						sum.max += r.max
						sum.cpu += r.cpu
						sum.busiest += r.busiest
					}
					div := float64(b.N)
					b.ReportMetric(float64(sum.p50.Milliseconds())/div, "p50-ms")
					b.ReportMetric(float64(sum.p95.Milliseconds())/div, "p95-ms")
					b.ReportMetric(float64(sum.max.Milliseconds())/div, "max-ms")
					b.ReportMetric(float64(sum.busiest)/div, "busiest-100ms")
					b.ReportMetric(float64(sum.cpu.Milliseconds())/div, "cpu-ms")
				})
			}
		})
	}
}

type stormResult struct {
	p50, p95, max, cpu time.Duration
	busiest            int
}

func restartStorm(b *testing.B, p *gridproc.Proc, n int, uptime time.Duration, set func(*tubfarm.Options)) stormResult {
	opts := brokerOptions(b, "per_server")
	set(&opts)
	br, err := tubfarm.Open(p.Dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := br.WhenConnected(ctx, n); err != nil {
		b.Fatalf("before the restart: %v (%d of %d connected)", err, connected(br), n)
	}
	if uptime > 0 {
		select { // the grid's uptime: a scenario parameter, not a wait for a state
		case <-time.After(uptime):
		case <-ctx.Done():
			b.Fatal(ctx.Err())
		}
	}
	events, stop := br.Subscribe()
	defer stop()
	c0 := cpuNow()
	t0 := time.Now()
	if err := p.Drop(ctx); err != nil {
		b.Fatal(err)
	}
	// All back: every server connected by a session made after t0.
	var sts []actors.Status
	for {
		sts = br.Statuses()
		back := 0
		for _, st := range sts {
			if st.Connected && st.LastConnected.After(t0) {
				back++
			}
		}
		if back == n {
			break
		}
		select {
		case <-events:
			for len(events) > 0 { // one status scan per burst of events
				<-events
			}
		case <-ctx.Done():
			b.Fatalf("after the restart, %d of %d servers came back", back, n)
		}
	}
	r := stormResult{cpu: cpuNow() - c0}
	backAt := make([]time.Duration, 0, n)
	attemptAt := make([]time.Duration, 0, n)
	for _, st := range sts {
		backAt = append(backAt, st.LastConnected.Sub(t0))
		attemptAt = append(attemptAt, st.LastAttempt.Sub(t0))
	}
	r.p50 = measure.Percentile(backAt, 50)
	r.p95 = measure.Percentile(backAt, 95)
	r.max = measure.Percentile(backAt, 100)
	r.busiest = measure.BusiestWindow(attemptAt, 100*time.Millisecond)
	b.Logf("attempts that reconnected, by 100 ms after the restart: %s", histogram(attemptAt, 100*time.Millisecond))
	return r
}

// histogram renders ts as "[0]3 [1]177 ..." counts per bucket of width w,
// skipping empty buckets.
func histogram(ts []time.Duration, w time.Duration) string {
	counts := map[int]int{}
	last := 0
	for _, t := range ts {
		k := int(t / w)
		counts[k]++
		last = max(last, k)
	}
	var sb strings.Builder
	for k := 0; k <= last; k++ {
		if counts[k] > 0 {
			fmt.Fprintf(&sb, "[%d]%d ", k, counts[k])
		}
	}
	return strings.TrimSpace(sb.String())
}
