package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/internal/grid"
	"github.com/tubfarm/tubfarm/introducer"
	"github.com/tubfarm/tubfarm/messages"
)

// TestHostileAnnouncementManyHints delivers, through the introducer path
// (Broker.Announce: signature check, cache write, merge, policy, dial), a
// validly signed announcement whose FURL carries 10 000 connection hints.
// The announcement is kept whole (it is the server's to make), but one
// connection attempt dials at most tubfarm.MaxDialHints of them, in FURL
// order, and reports every other hint as not tried: the work of an attempt
// does not grow with what a stranger writes.
func TestHostileAnnouncementManyHints(t *testing.T) {
	noLeaks(t)
	const n = 10_000
	g := startGrid(t, 1)
	srv := g.Servers[0]

	var mu sync.Mutex
	dialed := map[string]int{}
	direct := func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialed[addr]++
		mu.Unlock()
		if addr == srv.Addr() {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
		return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
	}
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{Introducers: map[string][]*grid.Server{"alpha": nil}}); err != nil {
		t.Fatal(err)
	}
	// The introducer limits would refuse such an announcement (over_limit);
	// raise them, as a program bringing its own announcements may, to
	// check the dial bound behind them.
	b := openBroker(t, dir, tubfarm.Options{TestHooks: &tubfarm.TestHooks{Direct: direct}, WatchInterval: -1, Backoff: faultBackoff,
		Introducers: tubfarm.IntroducerOptions{Disabled: true, Limits: introducer.Limits{MaxMessageBytes: 1 << 20, MaxHints: n}}})
	rec := record(t, b)
	t.Cleanup(func() { b.Close(); <-rec.exited })

	// The real hint comes first, then n-1 junk ones (host names, so that
	// the policy lets them all through to the dialer).
	f, err := hints.ParseFURL(srv.FURL)
	if err != nil {
		t.Fatal(err)
	}
	hs := []string{"tcp:" + srv.Addr()}
	for i := 1; i < n; i++ {
		hs = append(hs, fmt.Sprintf("tcp:junk-%d.tubfarm.test:%d", i, 1024+i%50000))
	}
	furl := "pb://" + f.TubID + "@" + strings.Join(hs, ",") + "/" + f.Name
	ann := srv.Announcement(1)
	ann["anonymous-storage-FURL"] = furl
	signed, err := config.Sign(srv.Key, ann)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Announce("alpha", signed); err != nil {
		t.Fatal(err)
	}
	up := rec.next(0, "connection", to(messages.Connected, ""))
	if ev := rec.events(up)[0]; ev.Hint != hs[0] {
		t.Errorf("connected through %q, want the first hint %q", ev.Hint, hs[0])
	}

	mu.Lock()
	total := 0
	for _, c := range dialed {
		total += c
	}
	mu.Unlock()
	if total > tubfarm.MaxDialHints {
		t.Errorf("one attempt dialed %d hints, want at most %d", total, tubfarm.MaxDialHints)
	}
	st := mustServer(t, b, srv.ID).Status()
	skipped := 0
	for _, h := range st.Hints {
		if strings.HasPrefix(h.Status, "not tried: ") {
			skipped++
		}
	}
	if want := n - tubfarm.MaxDialHints; skipped != want {
		t.Errorf("%d hints reported as not tried, want %d", skipped, want)
	}

	// The cache holds the announcement whole, signed, and a fresh load
	// of the node directory gives the same FURL back.
	cache, err := config.ReadCache(config.CachePath(dir, "alpha"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cache.Entries) != 1 || !cache.Entries[0].Verified() {
		t.Fatalf("cache: %d entries, dropped %v", len(cache.Entries), cache.Dropped)
	}
	e, ok := b.Node().Map.Get(srv.ID)
	if !ok || len(e.FURL.Hints) != n {
		t.Errorf("map entry: present=%v, %d hints; want %d", ok, len(e.FURL.Hints), n)
	}
}
