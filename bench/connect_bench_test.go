package bench

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm/bench/internal/measure"
	"github.com/tubfarm/tubfarm/foolscap"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// echo is the server object of BenchmarkConnectVsTLS.
type echo struct{}

func (echo) InterfaceName() string { return "RIEcho.bench.tubfarm" }
func (echo) CallRemote(_ context.Context, _ string, args []any, _ map[string]any) (any, error) {
	return args[0], nil
}

func mustIdentity(b *testing.B) *tubtls.Identity {
	b.Helper()
	id, err := tubtls.NewEphemeral()
	if err != nil {
		b.Fatal(err)
	}
	return id
}

// curveSets are the key exchanges compared: Go's default (the hybrid
// X25519MLKEM768 first) and classical X25519 alone. Both ends of both
// measurements use the same set, so like is compared with like.
var curveSets = []struct {
	name   string
	curves []tls.CurveID // nil: crypto/tls's default
}{
	{"kex=default_mlkem", nil},
	{"kex=x25519", []tls.CurveID{tls.X25519}},
}

// BenchmarkConnectVsTLS measures, in one loop, a full Foolscap connection
// to a Go listener on loopback (TCP, upgrade, TLS 1.3, hellos, decision,
// getReference and one call) and a bare crypto/tls 1.3 handshake with
// client certificates between the same identities, followed by one byte
// each way so that both ends have finished. The two alternate, so load on
// a shared machine hits both alike. It reports each one's mean wall time
// (closing the connections is outside both), their ratio (the target is
// ≤ 1.3), the CPU time of each, and the Foolscap connection's phases as
// foolscap.ConnectInfo times them.
func BenchmarkConnectVsTLS(b *testing.B) {
	for _, cs := range curveSets {
		b.Run(cs.name, func(b *testing.B) {
			tweak := func(c *tls.Config) {
				if cs.curves != nil {
					c.CurvePreferences = cs.curves
				}
			}
			clientID, serverID := mustIdentity(b), mustIdentity(b)
			fc := newFoolscapPair(b, clientID, serverID, tweak)
			tc := newTLSPair(b, clientID, serverID, tweak)
			ctx := context.Background()
			var full, bare, fullCPU, bareCPU time.Duration
			var phases foolscap.Timings
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				c0, t0 := cpuNow(), time.Now()
				c, info := fc.connect(b, ctx)
				full += time.Since(t0)
				fullCPU += cpuNow() - c0
				c.Close()
				phases.Dial += info.Timings.Dial
				phases.Upgrade += info.Timings.Upgrade
				phases.TLS += info.Timings.TLS
				phases.Negotiation += info.Timings.Negotiation

				c0, t0 = cpuNow(), time.Now()
				conn := tc.connect(b)
				bare += time.Since(t0)
				bareCPU += cpuNow() - c0
				conn.Close()
			}
			per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) }
			b.ReportMetric(per(full), "connect-ns/op")
			b.ReportMetric(per(bare), "tls-ns/op")
			b.ReportMetric(float64(full)/float64(bare), "connect/tls")
			b.ReportMetric(per(fullCPU), "connect-cpu-ns/op")
			b.ReportMetric(per(bareCPU), "tls-cpu-ns/op")
			b.ReportMetric(float64(fullCPU)/float64(bareCPU), "connect/tls-cpu")
			b.ReportMetric(per(phases.Dial), "dial-ns/op")
			b.ReportMetric(per(phases.Upgrade), "upgrade-ns/op")
			b.ReportMetric(per(phases.TLS), "tlsphase-ns/op")
			b.ReportMetric(per(phases.Negotiation), "hello-ns/op")
		})
	}
}

// foolscapPair is a Go Foolscap server and what a client needs to reach it.
type foolscapPair struct {
	cfg  foolscap.DialConfig
	name string
}

func newFoolscapPair(b *testing.B, clientID, serverID *tubtls.Identity, tweak func(*tls.Config)) *foolscapPair {
	b.Helper()
	tub := foolscap.NewTub(serverID)
	l, err := foolscap.Listen(context.Background(), "tcp", "127.0.0.1:0", foolscap.ListenConfig{TLSConfig: tweak})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	l.AddTub(tub)
	tub.SetLocation("tcp:" + l.Addr().String())
	const name = "echo-swissnum"
	if _, err := tub.Register(echo{}, name); err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	return &foolscapPair{name: name, cfg: foolscap.DialConfig{
		Identity:    clientID,
		Incarnation: foolscap.NewIncarnation(),
		TubID:       serverID.TubID,
		Targets:     []foolscap.Target{{Hint: "tcp:" + addr, Addr: addr, Host: "127.0.0.1", Handler: "tcp"}},
		TLSConfig:   tweak,
		// One identity reconnecting: keep the duplicate-connection state
		// as a reconnecting client would.
		LastConnection: &foolscap.LastConnection{},
	}}
}

// cpuNow is the process's CPU time so far (both ends of the loopback
// connection run in this process).
func cpuNow() time.Duration {
	u, s, _ := measure.CPUTime()
	return u + s
}

// connect makes one full connection and returns it open, with its
// ConnectInfo.
func (p *foolscapPair) connect(b *testing.B, ctx context.Context) (*foolscap.Conn, *foolscap.ConnectInfo) {
	c, info, err := foolscap.Dial(ctx, p.cfg)
	if err != nil {
		b.Fatal(err)
	}
	ref, err := c.GetReference(ctx, p.name)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ref.Call(ctx, "echo", []any{[]byte("x")}, nil); err != nil {
		b.Fatal(err)
	}
	return c, info
}

// tlsPair is a bare TLS 1.3 server that completes each handshake and
// echoes one byte.
type tlsPair struct {
	addr string
	cfg  *tls.Config
}

func newTLSPair(b *testing.B, clientID, serverID *tubtls.Identity, tweak func(*tls.Config)) *tlsPair {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	scfg := serverID.ServerConfig()
	scfg.MinVersion = tls.VersionTLS13
	tweak(scfg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := tls.Server(c, scfg)
			var buf [1]byte
			if _, err := tc.Read(buf[:]); err == nil {
				tc.Write(buf[:])
			}
			tc.Close()
		}
	}()
	b.Cleanup(func() { ln.Close(); <-done })
	ccfg := clientID.ClientConfig(serverID.TubID)
	ccfg.MinVersion = tls.VersionTLS13
	tweak(ccfg)
	return &tlsPair{addr: ln.Addr().String(), cfg: ccfg}
}

// connect makes one handshake and echo and returns the connection open.
func (p *tlsPair) connect(b *testing.B) *tls.Conn {
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		b.Fatal(err)
	}
	tc := tls.Client(c, p.cfg)
	if err := tc.Handshake(); err != nil {
		b.Fatal(err)
	}
	var buf [1]byte
	if _, err := tc.Write([]byte{'x'}); err != nil {
		b.Fatal(err)
	}
	if _, err := tc.Read(buf[:]); err != nil {
		b.Fatal(err)
	}
	return tc
}
