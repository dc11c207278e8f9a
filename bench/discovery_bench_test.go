package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/actors"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/internal/grid"
	"github.com/tubfarm/tubfarm/internal/introducerserver"
	"github.com/tubfarm/tubfarm/introducer"
	"github.com/tubfarm/tubfarm/messages"
)

// BenchmarkDiscovery: two introducers announce the same 5 000 servers
// (10 000 signed announcements, the second introducer one seqnum newer) to
// a broker started on a node directory with no caches. One iteration runs
// from Open until every announcement is verified and merged, every
// server's child has made its first connection attempt (refused at once,
// no socket), and Close has written both caches.
//
// Reported beside the time: the same 10 000 signatures verified alone (the
// anchor, measured in the same run), the bytes of cache writes against the
// final caches' size, and what Tahoe's rule (the whole cache rewritten for
// every accepted announcement) would have written for the same burst.
func BenchmarkDiscovery(b *testing.B) {
	const servers = 5000
	ctx := context.Background()
	type server struct {
		key  ed25519.PrivateKey
		ann1 config.Signed // to introducer a
		ann2 config.Signed // to introducer b, one seqnum newer
	}
	ss := make([]server, servers)
	for i := range ss {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		f := func(seq int64) map[string]any {
			return map[string]any{
				"service-name": "storage", "nickname": fmt.Sprintf("bench-%d", i), "seqnum": seq,
				"nonce": fmt.Sprintf("nonce-%d-%d", i, seq), "my-version": "tahoe-lafs/1.20.0",
				"anonymous-storage-FURL":  fmt.Sprintf("pb://cthq7pfeqthwzluohq7d6dvyvop3vi6p@tcp:127.0.0.1:%d/swiss%d", 1+i%60000, i),
				"permutation-seed-base32": "naw4ouzzhdripdsjirjvkrwlnxhuakn5uao2t5y4yyxuva7aiccq",
			}
		}
		ss[i].key = priv
		if ss[i].ann1, err = config.Sign(priv, f(1)); err != nil {
			b.Fatal(err)
		}
		if ss[i].ann2, err = config.Sign(priv, f(2)); err != nil {
			b.Fatal(err)
		}
	}
	ia, err := introducerserver.Start(ctx, introducerserver.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ia.Close()
	ib, err := introducerserver.Start(ctx, introducerserver.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ib.Close()
	for _, s := range ss {
		if r, err := ia.Publish(s.ann1); r != introducer.Accepted {
			b.Fatal(r, err)
		}
		if r, err := ib.Publish(s.ann2); r != introducer.Accepted {
			b.Fatal(r, err)
		}
	}
	limits := introducer.Limits{MaxSetSize: servers, MaxServers: servers}

	// What Tahoe would write: after the k-th accepted announcement of an
	// introducer, its whole cache (k entries, Tahoe's format: ann and
	// key_s only) again.
	var tahoeBytes, entryBytes int64
	for _, s := range ss {
		for _, ann := range []config.Signed{s.ann1, s.ann2} {
			a, _ := ann.Verify()
			one, err := config.MarshalCache([]config.CacheEntry{{Key: ann.Key, Announcement: a}})
			if err != nil {
				b.Fatal(err)
			}
			entryBytes += int64(len(one))
		}
	}
	// Entries are about the same size, so the k-th rewrite of one
	// introducer's cache is about k/N of its final size.
	perIntro := entryBytes / 2
	tahoeBytes = 2 * perIntro * (servers + 1) / 2

	var verify, total time.Duration
	var written, final int64
	for b.Loop() {
		// The anchor: the 10 000 signatures verified alone, one core.
		t0 := time.Now()
		for _, s := range ss {
			if _, err := s.ann1.Verify(); err != nil {
				b.Fatal(err)
			}
			if _, err := s.ann2.Verify(); err != nil {
				b.Fatal(err)
			}
		}
		verify += time.Since(t0)

		dir := b.TempDir()
		if err := grid.WriteNodeDir(dir, grid.NodeDir{IntroducerFURLs: map[string]string{"a": ia.FURL, "b": ib.FURL}}); err != nil {
			b.Fatal(err)
		}
		var dialed atomic.Int64
		all := make(chan struct{})
		refuse := func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr == ia.Addr() || addr == ib.Addr() {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			}
			if dialed.Add(1) == servers {
				close(all)
			}
			return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
		}
		reg := &keepingRegistry{Registry: prometheus.NewRegistry()}
		t1 := time.Now()
		br, err := tubfarm.Open(dir, tubfarm.Options{
			Logger: slog.New(slog.DiscardHandler), Registerer: reg, WatchInterval: -1, TestHooks: &tubfarm.TestHooks{Direct: refuse},
			Backoff:     actors.Backoff{BaseDelay: time.Hour, Multiplier: 2, MaxDelay: 2 * time.Hour, StableAfter: time.Hour},
			Introducers: tubfarm.IntroducerOptions{Limits: limits},
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := br.WhenIntroducers(ctx, func(st []messages.IntroducerStatus) bool {
			return st[0].Subscribed && st[1].Subscribed && st[0].Servers == servers && st[1].Servers == servers
		}); err != nil {
			b.Fatal(err)
		}
		<-all
		br.Close()
		total += time.Since(t1)

		mfs, err := reg.gatherAfterClose()
		if err != nil {
			b.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "tubfarm_introducer_cache_write_bytes_total" {
				written += int64(mf.GetMetric()[0].GetCounter().GetValue())
			}
		}
		for _, pet := range []string{"a", "b"} {
			fi, err := os.Stat(filepath.Join(dir, "private", "introducer_"+pet+"_cache.yaml"))
			if err != nil {
				b.Fatal(err)
			}
			final += fi.Size()
			c, err := config.ReadCache(config.CachePath(dir, pet))
			if err != nil || len(c.Entries) != servers {
				b.Fatalf("cache %s: %d entries, %v", pet, len(c.Entries), err)
			}
		}
	}
	n := float64(b.N)
	b.ReportMetric(total.Seconds()/n, "s/discovery")
	b.ReportMetric(verify.Seconds()/n, "s/verify-only")
	b.ReportMetric(total.Seconds()/verify.Seconds(), "x-verify-only")
	b.ReportMetric(float64(written)/float64(final), "written/final")
	b.ReportMetric(float64(tahoeBytes)/float64(final/int64(b.N)), "tahoe-written/final")
	b.ReportMetric(float64(final)/n/1e6, "MB-final-caches")
}

// keepingRegistry remembers what was registered, so that the counters can
// still be read after Close unregisters them (the final cache write
// happens in Close).
type keepingRegistry struct {
	*prometheus.Registry
	cs []prometheus.Collector
}

func (k *keepingRegistry) Register(c prometheus.Collector) error {
	k.cs = append(k.cs, c)
	return k.Registry.Register(c)
}

func (k *keepingRegistry) gatherAfterClose() ([]*dto.MetricFamily, error) {
	r := prometheus.NewRegistry()
	for _, c := range k.cs {
		if err := r.Register(c); err != nil {
			return nil, err
		}
	}
	return r.Gather()
}
