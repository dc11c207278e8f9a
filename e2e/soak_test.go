package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/actors"
	"github.com/tubfarm/tubfarm/internal/grid"
	"github.com/tubfarm/tubfarm/messages"
)

// The soak runs as a benchmark, so that `go test` never counts it as a
// passing test. scripts/test.sh runs every benchmark once, which runs a
// short soak (100 servers, 5 s); the long one is selected by flag:
//
//	go test -run '^$' -bench '^BenchmarkSoak$' -benchtime 1x -soak 3m -timeout 30m .
var (
	soakFor     = flag.Duration("soak", 0, "run BenchmarkSoak for this long with -soak.servers servers (0: a 5 s smoke run with 100)")
	soakServers = flag.Int("soak.servers", 1000, "servers in a -soak run")
)

// BenchmarkSoak keeps a broker connected to many servers while one in ten
// of them flaps (stopped and restarted on its port every 2–4 s), samples
// heap and goroutines every few seconds, and reports their slopes. It fails
// on any failure reason other than the disconnects a flap causes, on any
// event from a server that does not flap, and if every server is not
// connected again at the end.
func BenchmarkSoak(b *testing.B) {
	n, dur, every := 100, 5*time.Second, time.Second
	if *soakFor > 0 {
		n, dur, every = *soakServers, *soakFor, 5*time.Second
	}
	for range b.N {
		soak(b, n, dur, every)
	}
}

type soakSample struct {
	at         time.Duration
	heap       uint64
	goroutines int
	connected  int
}

func soak(b *testing.B, n int, dur, every time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), dur+5*time.Minute)
	defer cancel()
	g, err := grid.Start(ctx, n, "soak", grid.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	dir := b.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{Static: g.Servers}); err != nil {
		b.Fatal(err)
	}
	bo := actors.Backoff{BaseDelay: 100 * time.Millisecond, Multiplier: 2, Jitter: 0.2, MaxDelay: 2 * time.Second}
	// The broker dials from 127.0.0.2: its outgoing connections then never
	// hold a 127.0.0.1 port that a stopped server must get back (with a
	// thousand connections, an ephemeral source port soon collides with a
	// flapping server's listening port, and Restart fails with EADDRINUSE).
	src := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	br, err := tubfarm.Open(dir, tubfarm.Options{Logger: quiet(), Backoff: bo, ConnectTimeout: 20 * time.Second, WatchInterval: -1,
		TestHooks: &tubfarm.TestHooks{Direct: src.DialContext}})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	start := time.Now()
	if err := br.WhenConnected(ctx, n); err != nil {
		b.Fatalf("initial connection of %d servers: %v", n, err)
	}
	b.Logf("%d servers connected in %v", n, time.Since(start).Round(time.Millisecond))

	flapping := map[string]*grid.Server{}
	for _, s := range g.Servers[:n/10] {
		flapping[s.ID] = s
	}

	// Watch every event: count reasons, and flag anything a flap does not
	// explain.
	var (
		mu       sync.Mutex
		reasons  = map[string]int{}
		bad      []string
		lastSeq  = map[string]uint64{}
		gaps     int
		foreign  int
		watching = make(chan struct{})
	)
	ch, stop := br.Subscribe()
	go func() {
		defer close(watching)
		for ev := range ch {
			mu.Lock()
			if last := lastSeq[ev.ServerID]; last != 0 && ev.Seq != last+1 {
				gaps++
			}
			lastSeq[ev.ServerID] = ev.Seq
			if ev.To == messages.WaitingToRetry {
				reasons[ev.Reason]++
			}
			switch {
			case flapping[ev.ServerID] == nil:
				bad = append(bad, fmt.Sprintf("server %s that does not flap: %s -> %s %s %v", ev.ServerID, ev.From, ev.To, ev.Reason, ev.Err))
			case ev.To == messages.WaitingToRetry && ev.Reason == string(actors.ReasonOther) && ev.Err != nil &&
				strings.Contains(ev.Err.Error(), "peer reported: unknown TubID"):
				// While the server was down, another process on this
				// machine listened on its port with a Tub of its own
				// (TestFaultWrongTub's case): a flap, not a broker error.
				foreign++
			case ev.To == messages.WaitingToRetry && ev.Reason != string(actors.ReasonReset) && ev.Reason != string(actors.ReasonRefused):
				bad = append(bad, fmt.Sprintf("flapping server %s: unexpected reason %s: %v", ev.ServerID, ev.Reason, ev.Err))
			}
			mu.Unlock()
		}
	}()

	// Flap: each flapping server toggles at its own random times.
	rng := rand.New(rand.NewPCG(1, 2))
	next := map[string]time.Time{}
	down := map[string]bool{}
	for id := range flapping {
		next[id] = time.Now().Add(time.Duration(rng.Int64N(int64(2 * time.Second))))
	}
	var samples []soakSample
	sample := func() {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		conn := 0
		for _, st := range br.Statuses() {
			if st.Connected {
				conn++
			}
		}
		samples = append(samples, soakSample{time.Since(start), ms.HeapAlloc, runtime.NumGoroutine(), conn})
	}
	sample()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	end := time.Now().Add(dur)
	nextSample := time.Now().Add(every)
	toggles, collisions := 0, 0
	for now := time.Now(); now.Before(end); now = <-tick.C {
		for id, s := range flapping {
			if now.Before(next[id]) {
				continue
			}
			if down[id] {
				if err := s.Restart(ctx); errors.Is(err, syscall.EADDRINUSE) {
					// Another socket on this machine took the port
					// meanwhile; the server stays down until its next turn.
					collisions++
					next[id] = now.Add(time.Second)
					continue
				} else if err != nil {
					b.Fatalf("restart %s: %v", s.Nickname, err)
				}
			} else if err := s.Stop(); err != nil {
				b.Fatalf("stop %s: %v", s.Nickname, err)
			}
			down[id] = !down[id]
			toggles++
			next[id] = now.Add(2*time.Second + time.Duration(rng.Int64N(int64(2*time.Second))))
		}
		if !now.Before(nextSample) {
			sample()
			nextSample = now.Add(every)
		}
	}
	// Bring every flapping server back. A port another socket still holds
	// is retried for a few seconds, then given up (counted, not failed:
	// the machine, not the broker, lost it).
	lost := 0
	for id, s := range flapping {
		for try := 0; down[id]; try++ {
			err := s.Restart(ctx)
			if err == nil {
				down[id] = false
			} else if !errors.Is(err, syscall.EADDRINUSE) {
				b.Fatalf("restart %s: %v", s.Nickname, err)
			} else if try == 50 {
				lost++
				break
			} else {
				collisions++
				<-tick.C
			}
		}
	}
	br.TryNowAll()
	if err := br.WhenConnected(ctx, n-lost); err != nil {
		b.Errorf("not every server reconnected after the soak: %v", err)
	}
	sample()
	stop()
	<-watching

	heapSlope := slope(samples, func(s soakSample) float64 { return float64(s.heap) })
	goSlope := slope(samples, func(s soakSample) float64 { return float64(s.goroutines) })
	var sb strings.Builder
	for _, s := range samples {
		fmt.Fprintf(&sb, "  t=%6.1fs heap=%6.2f MiB goroutines=%5d connected=%d\n", s.at.Seconds(), float64(s.heap)/(1<<20), s.goroutines, s.connected)
	}
	b.Logf("soak: %d servers, %d flapping, %v, %d toggles; failure reasons %v; %d event gaps (dropped events); "+
		"%d restarts found the port taken by another socket, %d servers lost their port, %d attempts met a foreign Tub on the port\n%s"+
		"heap slope %.0f B/min, goroutine slope %.2f /min", n, len(flapping), dur, toggles, reasons, gaps, collisions, lost, foreign, sb.String(), heapSlope, goSlope)
	b.ReportMetric(heapSlope, "heap-B/min")
	b.ReportMetric(goSlope, "goroutines/min")
	b.ReportMetric(float64(toggles), "toggles")
	b.ReportMetric(float64(samples[len(samples)-1].heap)/(1<<20), "final-heap-MiB")
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		b.Errorf("%d unexpected events, first ones:\n%s", len(bad), strings.Join(bad[:min(len(bad), 10)], "\n"))
	}
	// The first and the last samples are taken in the same state (every
	// server connected), so what the broker holds must be the same.
	first, last := samples[0], samples[len(samples)-1]
	if last.goroutines > first.goroutines+first.goroutines/20 {
		b.Errorf("goroutines grew from %d to %d across the soak", first.goroutines, last.goroutines)
	}
	if last.heap > 2*first.heap+8<<20 {
		b.Errorf("heap grew from %d to %d bytes across the soak", first.heap, last.heap)
	}
}

// slope is the least-squares slope of f over the samples, per minute,
// skipping the first sample (taken before flapping began).
func slope(samples []soakSample, f func(soakSample) float64) float64 {
	if len(samples) < 3 {
		return 0
	}
	s := samples[1:]
	var sx, sy, sxx, sxy float64
	for _, p := range s {
		x := p.at.Minutes()
		y := f(p)
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	k := float64(len(s))
	den := k*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (k*sxy - sx*sy) / den
}
