package e2e

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/internal/grid"
	"github.com/tubfarm/tubfarm/internal/introducerserver"
	"github.com/tubfarm/tubfarm/introducer"
	"github.com/tubfarm/tubfarm/messages"
)

func startIntroducer(t *testing.T, opts introducerserver.Options) *introducerserver.Server {
	t.Helper()
	s, err := introducerserver.Start(testCtx(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func publish(t *testing.T, in *introducerserver.Server, s *grid.Server, seq int64) {
	t.Helper()
	signed, err := s.Signed(seq)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := in.Publish(signed); r != introducer.Accepted {
		t.Fatalf("publish %s seq %d: %v %v", s.Nickname, seq, r, err)
	}
}

func waitSubscribers(t *testing.T, in *introducerserver.Server, n int) {
	t.Helper()
	if err := in.Wait(testCtx(t), func(s *introducerserver.Server) bool { return s.Subscribers() >= n }); err != nil {
		t.Fatalf("waiting for %d subscribers: %v", n, err)
	}
}

// TestDiscovery starts from a node directory with two live introducers and
// no caches: the servers come from announcements alone, each introducer
// sees its own client TubID, a server announced by both is connected once,
// the caches are written in the end, and an introducer going away leaves
// its servers connected and resubscribes when it comes back.
func TestDiscovery(t *testing.T) {
	g := startGrid(t, 3)
	s1, s2, s3 := g.Servers[0], g.Servers[1], g.Servers[2]
	ia := startIntroducer(t, introducerserver.Options{})
	ib := startIntroducer(t, introducerserver.Options{})
	publish(t, ia, s1, 1)
	publish(t, ia, s2, 1)
	publish(t, ib, s2, 2)
	publish(t, ib, s3, 1)

	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{IntroducerFURLs: map[string]string{"a": ia.FURL, "b": ib.FURL}}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	b := openBroker(t, dir, tubfarm.Options{Registerer: reg, WatchInterval: -1})
	ctx := testCtx(t)
	if err := b.WhenIntroducersAnswered(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.WhenConnected(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if n := len(b.Servers()); n != 3 {
		t.Fatalf("%d servers, want 3", n)
	}
	sts := b.Introducers()
	if len(sts) != 2 || !sts[0].Subscribed || !sts[1].Subscribed {
		t.Fatalf("introducers: %+v", sts)
	}
	if sts[0].ClientTubID == "" || sts[0].ClientTubID == sts[1].ClientTubID {
		t.Errorf("client TubIDs %q and %q: want two different ones", sts[0].ClientTubID, sts[1].ClientTubID)
	}
	for _, s := range g.Servers {
		for _, c := range s.Clients() {
			if c == sts[0].ClientTubID || c == sts[1].ClientTubID {
				t.Errorf("server %s saw an introducer's client TubID", s.Nickname)
			}
		}
	}
	if got := ia.Clients(); len(got) != 1 || got[0] != sts[0].ClientTubID {
		t.Errorf("introducer a saw %v, status says %s", got, sts[0].ClientTubID)
	}
	if got := b.AnnouncedBy()[s2.ID]; !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("s2 announced by %v", got)
	}
	if e, _ := mustServer(t, b, s2.ID).Entry(); e.Announcement.Seqnum != 2 {
		t.Errorf("s2 uses seqnum %d, want the newest, 2", e.Announcement.Seqnum)
	}
	if n := sampleValue(t, reg, "tubfarm_introducers", "state", "connected"); n != 2 {
		t.Errorf("tubfarm_introducers{state=connected} = %v, want 2", n)
	}
	// s2's seqnum 1 through a is accepted or, if b's seqnum 2 came
	// first, superseded: stored either way.
	acc := sampleValue(t, reg, "tubfarm_introducer_announcements_total", "result", "accepted")
	sup := sampleValue(t, reg, "tubfarm_introducer_announcements_total", "result", "superseded")
	if acc+sup != 4 || acc < 3 {
		t.Errorf("accepted %v, superseded %v; want 4 stored, at least 3 accepted", acc, sup)
	}

	// Introducer a goes away: its servers stay connected. It comes back
	// and the broker subscribes again.
	ia.Stop()
	waitIntro(t, b, "introducer a disconnected", func() bool { return !b.Introducers()[0].Connected })
	if n := connectedCount(b); n != 3 {
		t.Errorf("%d servers connected after introducer a went away, want 3", n)
	}
	if err := ia.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	b.TryNowIntroducer("a")
	waitSubscribers(t, ia, 1)

	b.Close()
	for pet, want := range map[string][]string{"a": {s1.ID, s2.ID}, "b": {s2.ID, s3.ID}} {
		c, err := config.ReadCache(config.CachePath(dir, pet))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range c.Entries {
			if !e.Verified() {
				t.Errorf("cache %s: unverified entry %s", pet, e.Key)
			}
			got = append(got, e.Key)
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("cache %s holds %v, want %v", pet, got, want)
		}
	}
}

// TestCachedSeqnumsRefuseReplays restarts on caches: they are used at once
// (the servers connect while the introducer is down), and an introducer
// that later replays an older signed announcement is refused.
func TestCachedSeqnumsRefuseReplays(t *testing.T) {
	g := startGrid(t, 1)
	s1 := g.Servers[0]
	dir := t.TempDir()
	// The cache holds seqnum 1 (WriteNodeDir signs seqnum 1), and the
	// introducer now offers seqnum 1 re-signed with another nonce... and
	// seqnum 0, an older one.
	ia := startIntroducer(t, introducerserver.Options{})
	if err := grid.WriteNodeDir(dir, grid.NodeDir{Introducers: map[string][]*grid.Server{"a": {s1}},
		IntroducerFURLs: map[string]string{"a": ia.FURL}}); err != nil {
		t.Fatal(err)
	}
	old := s1.Announcement(0)
	signed, err := config.Sign(s1.Key, old)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := ia.Publish(signed); r != introducer.Accepted {
		t.Fatal(r)
	}
	ia.Stop()
	b := openBroker(t, dir, tubfarm.Options{WatchInterval: -1})
	ctx := testCtx(t)
	if err := b.WhenConnected(ctx, 1); err != nil { // from the cache alone
		t.Fatal(err)
	}
	if err := ia.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	b.TryNowIntroducer("a")
	if err := b.WhenIntroducersAnswered(ctx); err != nil {
		t.Fatal(err)
	}
	st := b.Introducers()[0]
	if st.Announcements["stale_seqnum"] != 1 || st.Announcements["accepted"] != 0 {
		t.Fatalf("announcements %v, want one stale_seqnum", st.Announcements)
	}
	if e, _ := mustServer(t, b, s1.ID).Entry(); e.Announcement.Seqnum != 1 {
		t.Errorf("server uses seqnum %d, want 1", e.Announcement.Seqnum)
	}
}

// waitIntro waits until cond holds, re-checking at every introducer state
// change.
func waitIntro(t *testing.T, b *tubfarm.Broker, what string, cond func() bool) {
	t.Helper()
	ch, cancel := b.SubscribeIntroducers()
	defer cancel()
	waitOn(t, ch, what, cond)
}

func connectedCount(b *tubfarm.Broker) int {
	n := 0
	for _, s := range b.Statuses() {
		if s.Connected {
			n++
		}
	}
	return n
}

// sampleValue returns the value of the sample name{label=value}, counter
// or gauge, gathered from reg.
func sampleValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

// TestDiscoveryTahoeCache: a cache Tahoe wrote (no signatures) is used at
// once, before the introducer answers, but never written back; a
// re-announcement with a new seqnum and the same FURL reconnects nothing.
func TestDiscoveryTahoeCache(t *testing.T) {
	g := startGrid(t, 2)
	s1, s2 := g.Servers[0], g.Servers[1]
	ia := startIntroducer(t, introducerserver.Options{})
	publish(t, ia, s1, 5)
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{IntroducerFURLs: map[string]string{"a": ia.FURL}}); err != nil {
		t.Fatal(err)
	}
	ann, err := config.NewAnnouncement(s2.Announcement(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := config.WriteCache(config.CachePath(dir, "a"), []config.CacheEntry{{Key: s2.ID, Announcement: ann}}); err != nil {
		t.Fatal(err)
	}
	ia.Stop()
	b := openBroker(t, dir, tubfarm.Options{WatchInterval: -1})
	ctx := testCtx(t)
	if err := b.WhenConnected(ctx, 1); err != nil { // s2, from Tahoe's cache
		t.Fatal(err)
	}
	if err := ia.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	b.TryNowIntroducer("a")
	if err := b.WhenIntroducersAnswered(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.WhenConnected(ctx, 2); err != nil {
		t.Fatal(err)
	}
	publish(t, ia, s1, 6)
	waitIntros(t, b, "seqnum 6 in the map", func(st []messages.IntroducerStatus) bool {
		e, _ := mustServer(t, b, s1.ID).Entry()
		return st[0].Announcements["accepted"] == 2 && e.Announcement.Seqnum == 6
	})
	// WaitClients: the server records a client a moment after the client
	// sees its connection up.
	if clients, _ := s1.WaitClients(ctx, 1); len(clients) != 1 {
		t.Errorf("s1 saw %d connections, want 1: a new seqnum with the same FURL must not reconnect", len(clients))
	}
	b.Close()
	c, err := config.ReadCache(config.CachePath(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Entries) != 1 || c.Entries[0].Key != s1.ID || !c.Entries[0].Verified() || c.Entries[0].Announcement.Seqnum != 6 {
		t.Errorf("cache after the run: %+v", c.Entries)
	}
}
