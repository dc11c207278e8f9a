package e2e

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/actors"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/foolscap"
	"github.com/tubfarm/tubfarm/internal/grid"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func startGrid(t *testing.T, n int) *grid.Grid {
	t.Helper()
	g, err := grid.Start(testCtx(t), n, "storage", grid.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

func openBroker(t *testing.T, dir string, opts tubfarm.Options) *tubfarm.Broker {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet()
	}
	b, err := tubfarm.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// waitFor waits until cond holds, re-checking at every state change.
func waitFor(t *testing.T, b *tubfarm.Broker, what string, cond func() bool) {
	t.Helper()
	ch, cancel := b.Subscribe()
	defer cancel()
	waitOn(t, ch, what, cond)
}

// waitOn waits until cond holds, re-checking whenever ch delivers.
func waitOn[T any](t *testing.T, ch <-chan T, what string, cond func() bool) {
	t.Helper()
	ctx := testCtx(t)
	for !cond() {
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestGridEndToEnd builds a node directory with two introducer caches that
// partly overlap and a servers.yaml that overrides one server, opens a
// broker on it, and checks that every server is connected through its own
// identity, that get_version answers arrive, and that the override won.
func TestGridEndToEnd(t *testing.T) {
	g := startGrid(t, 4)
	s := g.Servers
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{
		Introducers: map[string][]*grid.Server{"alpha": {s[0], s[1], s[2]}, "beta": {s[1], s[2], s[3]}},
		Static:      []*grid.Server{s[3]},
	}); err != nil {
		t.Fatal(err)
	}
	b := openBroker(t, dir, tubfarm.Options{})
	ctx := testCtx(t)
	if err := b.WhenConnected(ctx, 4); err != nil {
		t.Fatal(err)
	}
	servers := b.Servers()
	if len(servers) != 4 {
		t.Fatalf("broker has %d servers, want 4", len(servers))
	}
	seen := map[string]string{}
	for _, srv := range servers {
		v, err := srv.Call(ctx, "get_version")
		if err != nil {
			t.Fatalf("%s: get_version: %v", srv.Nickname(), err)
		}
		app, _ := v.(foolscap.Dict).GetString("application-version")
		if string(app.([]byte)) != "tahoe-lafs/1.20.0" {
			t.Errorf("%s: application-version = %q", srv.Nickname(), app)
		}
		st := srv.Status()
		if !st.Connected || st.Version != "tahoe-lafs/1.20.0" || st.Handler != "tcp" || !st.RevealsIP {
			t.Errorf("%s: status %+v", srv.Nickname(), st)
		}
		if !strings.HasPrefix(st.Summary, "Connected to tcp:127.0.0.1:") || !strings.HasSuffix(st.Summary, " via tcp") {
			t.Errorf("%s: summary %q", srv.Nickname(), st.Summary)
		}
		if other, dup := seen[st.TubID]; dup {
			t.Errorf("%s and %s were reached with the same client TubID %s", srv.Nickname(), other, st.TubID)
		}
		seen[st.TubID] = srv.Nickname()
	}
	// Every server saw exactly the client TubID the broker reports, and
	// none saw the node's persistent identity.
	node := b.Identity().TubID
	for _, gs := range s {
		clients, _ := gs.WaitClients(ctx, 1)
		srv, ok := b.Server(gs.ID)
		if !ok {
			t.Fatalf("%s missing from the broker", gs.Nickname)
		}
		if len(clients) != 1 || clients[0] != srv.Status().TubID {
			t.Errorf("%s saw clients %v, broker says %s", gs.Nickname, clients, srv.Status().TubID)
		}
		if slices.Contains(clients, node) {
			t.Errorf("%s saw the node's own TubID", gs.Nickname)
		}
	}
	e, _ := mustServer(t, b, s[3].ID).Entry()
	if !e.Source.Static {
		t.Errorf("server in servers.yaml and an introducer: source %+v, want the override", e.Source)
	}
	e, _ = mustServer(t, b, s[1].ID).Entry()
	if len(e.Source.Introducers) != 2 {
		t.Errorf("server known to both introducers: source %+v", e.Source)
	}
}

func mustServer(t *testing.T, b *tubfarm.Broker, id string) *tubfarm.Server {
	t.Helper()
	srv, ok := b.Server(id)
	if !ok {
		t.Fatalf("server %s not in the broker", id)
	}
	return srv
}

// TestReload checks hot reload of servers.yaml: an added server connects
// while the others keep their connection and identity; a broken edit is
// refused with file:line and the running map stays; the file watch picks
// edits up by itself.
func TestReload(t *testing.T) {
	g := startGrid(t, 3)
	s := g.Servers
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{Static: s[:2]}); err != nil {
		t.Fatal(err)
	}
	reloads := make(chan error, 4)
	b := openBroker(t, dir, tubfarm.Options{
		WatchInterval: 20 * time.Millisecond,
		OnReload:      func(err error) { reloads <- err },
	})
	ctx := testCtx(t)
	if err := b.WhenConnected(ctx, 2); err != nil {
		t.Fatal(err)
	}
	before := map[string]string{}
	for _, srv := range b.Servers() {
		before[srv.ID()] = srv.Status().TubID
	}

	// A broken edit: the error names the file and line; nothing changes.
	path := config.ServersPath(dir)
	broken := grid.ServersYAML(s, nil) + "  bad-server:\n    ann:\n      anonymous-storage-FURL: pb://nope\n"
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	err := b.Reload()
	var fe *config.FileError
	if !errors.As(err, &fe) || fe.Path != path || fe.Line == 0 {
		t.Fatalf("Reload of a broken file: %v, want a *config.FileError naming %s and a line", err, path)
	}
	if n := len(b.Servers()); n != 2 {
		t.Fatalf("after a broken reload the broker has %d servers, want the old 2", n)
	}

	// A good edit, picked up by the watch: the new server connects, the
	// old ones keep their identity (so their connection was kept).
	if err := os.WriteFile(path, []byte(grid.ServersYAML(s, nil)), 0o600); err != nil {
		t.Fatal(err)
	}
	for err := range reloads {
		if err == nil {
			break
		}
		// The broken file may have been seen by the watch too.
	}
	if err := b.WhenConnected(ctx, 3); err != nil {
		t.Fatal(err)
	}
	for id, tub := range before {
		st := mustServer(t, b, id).Status()
		if st.TubID != tub || !st.Connected {
			t.Errorf("%s: identity %s -> %s across an unrelated reload (connected=%v)", id, tub, st.TubID, st.Connected)
		}
		if n := len(g.Servers[slices.IndexFunc(g.Servers, func(x *grid.Server) bool { return x.ID == id })].Clients()); n != 1 {
			t.Errorf("%s: %d connections, want the original 1", id, n)
		}
	}
}

// TestAnnounce delivers a signed announcement from an introducer: it is
// written to that introducer's cache with its signature, the server
// connects, and a replay of an older seqnum is refused.
func TestAnnounce(t *testing.T) {
	g := startGrid(t, 1)
	srv := g.Servers[0]
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{Introducers: map[string][]*grid.Server{"alpha": nil}}); err != nil {
		t.Fatal(err)
	}
	b := openBroker(t, dir, tubfarm.Options{})
	if n := len(b.Servers()); n != 0 {
		t.Fatalf("%d servers before any announcement", n)
	}
	ann, err := srv.Signed(5)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Announce("alpha", ann); err != nil {
		t.Fatal(err)
	}
	if err := b.WhenConnected(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	cache, err := config.ReadCache(config.CachePath(dir, "alpha"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cache.Entries) != 1 || !cache.Entries[0].Verified() || cache.Entries[0].Key != srv.ID {
		t.Fatalf("cache after Announce: %+v", cache.Entries)
	}
	old, _ := srv.Signed(4)
	if err := b.Announce("alpha", old); err == nil || !strings.Contains(err.Error(), "not newer") {
		t.Errorf("replay of seqnum 4 after 5: %v", err)
	}
	if err := b.Announce("nobody", ann); err == nil {
		t.Error("announcement from an unknown introducer accepted")
	}
	forged := ann
	forged.Msg = []byte(strings.Replace(string(ann.Msg), srv.Nickname, "mallory", 1))
	if err := b.Announce("alpha", forged); err == nil {
		t.Error("announcement with a bad signature accepted")
	}
}

// TestIdentityPerAttempt checks that with the default policy a reconnect
// presents a new client TubID, and with PerServer the same one.
func TestIdentityPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy actors.IdentityPolicy
		same   bool
	}{{actors.PerAttempt, false}, {actors.PerServer, true}} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			g := startGrid(t, 1)
			srv := g.Servers[0]
			dir := t.TempDir()
			if err := grid.WriteNodeDir(dir, grid.NodeDir{Static: g.Servers}); err != nil {
				t.Fatal(err)
			}
			b := openBroker(t, dir, tubfarm.Options{Identity: tc.policy, Backoff: fastBackoff})
			ctx := testCtx(t)
			if err := b.WhenConnected(ctx, 1); err != nil {
				t.Fatal(err)
			}
			first := <-srv.Seen()
			if err := srv.Stop(); err != nil {
				t.Fatal(err)
			}
			h := mustServer(t, b, srv.ID)
			waitFor(t, b, "disconnect", func() bool { return !h.Connected() })
			if err := srv.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			b.TryNowAll()
			var second string
			select {
			case second = <-srv.Seen():
			case <-ctx.Done():
				t.Fatal("no reconnect")
			}
			if (first == second) != tc.same {
				t.Errorf("first TubID %s, after reconnect %s; want same=%v", first, second, tc.same)
			}
		})
	}
}

var fastBackoff = actors.Backoff{BaseDelay: 10 * time.Millisecond, Multiplier: 2, Jitter: 0.2, MaxDelay: 200 * time.Millisecond, StableAfter: time.Second}

// TestMetricsAfterConnect checks that connecting to N servers observes N
// identity generations and N handshakes per phase, and that the metrics
// pass promlint.
func TestMetricsAfterConnect(t *testing.T) {
	const n = 5
	g := startGrid(t, n)
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{Static: g.Servers}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	b := openBroker(t, dir, tubfarm.Options{Registerer: reg})
	if err := b.WhenConnected(testCtx(t), n); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				key := mf.GetName()
				for _, l := range m.GetLabel() {
					if l.GetName() == "phase" {
						key += "/" + l.GetValue()
					}
				}
				counts[key] += h.GetSampleCount()
			}
		}
	}
	for _, k := range []string{"tubfarm_identity_generation_seconds", "tubfarm_handshake_duration_seconds/tls", "tubfarm_handshake_duration_seconds/get_reference"} {
		if counts[k] != n {
			t.Errorf("%s has %d observations, want %d (all: %v)", k, counts[k], n, counts)
		}
	}
}

// TestCloseIsIdempotent checks Close twice and that calls after it fail.
func TestCloseIsIdempotent(t *testing.T) {
	g := startGrid(t, 1)
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{Static: g.Servers}); err != nil {
		t.Fatal(err)
	}
	b, err := tubfarm.Open(dir, tubfarm.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WhenConnected(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b.Close()
	if err := b.WhenConnected(testCtx(t), 1); !errors.Is(err, actors.ErrClosed) {
		t.Errorf("WhenConnected after Close: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "private", "node.pem")); err != nil {
		t.Errorf("node.pem not created: %v", err)
	}
}

// TestServerSubscribe checks that a server's subscription carries its own
// state changes only, and that cancelling it closes the channel.
func TestServerSubscribe(t *testing.T) {
	g := startGrid(t, 2)
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{Static: g.Servers}); err != nil {
		t.Fatal(err)
	}
	b := openBroker(t, dir, tubfarm.Options{Backoff: fastBackoff})
	ctx := testCtx(t)
	if err := b.WhenConnected(ctx, 2); err != nil {
		t.Fatal(err)
	}
	victim := mustServer(t, b, g.Servers[0].ID)
	events, cancel := victim.Subscribe()
	if err := g.Servers[0].Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if ev.ServerID != victim.ID() || ev.To != actors.WaitingToRetry {
			t.Errorf("first event %+v, want %s to waiting_to_retry", ev, victim.ID())
		}
	case <-ctx.Done():
		t.Fatal("no event after the server stopped")
	}
	cancel()
	for range events { // drains what was buffered, then ends
	}
	cancel() // idempotent
}

// TestServerRemoved: a handle on a server that a reload removed says so
// (Removed, stopped, summary "removed") instead of looking unstarted; the
// server that stays is untouched.
func TestServerRemoved(t *testing.T) {
	g := startGrid(t, 2)
	s := g.Servers
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{Static: s}); err != nil {
		t.Fatal(err)
	}
	b := openBroker(t, dir, tubfarm.Options{WatchInterval: -1})
	ctx := testCtx(t)
	if err := b.WhenConnected(ctx, 2); err != nil {
		t.Fatal(err)
	}
	gone, kept := mustServer(t, b, s[0].ID), mustServer(t, b, s[1].ID)
	if st := gone.Status(); st.Removed || !st.Connected {
		t.Fatalf("before the reload: %+v", st)
	}
	if err := os.WriteFile(config.ServersPath(dir), []byte(grid.ServersYAML(s[1:], nil)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.Reload(); err != nil {
		t.Fatal(err)
	}
	st := gone.Status()
	if !st.Removed || st.State != actors.Stopped || st.Connected || st.Summary != "removed" || st.ID != s[0].ID {
		t.Errorf("removed server: Removed=%v State=%v Connected=%v Summary=%q ID=%q", st.Removed, st.State, st.Connected, st.Summary, st.ID)
	}
	if _, ok := b.Server(s[0].ID); ok {
		t.Error("Broker.Server still returns the removed server")
	}
	if st := kept.Status(); st.Removed || !st.Connected {
		t.Errorf("remaining server: %+v", st)
	}
}
