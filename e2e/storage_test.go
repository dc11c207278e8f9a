package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"html"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/actors"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/internal/grid"
	"github.com/tubfarm/tubfarm/status"
	"github.com/tubfarm/tubfarm/storage"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// startHTTPSGrid starts n servers that serve both protocols and writes a
// node directory listing them in servers.yaml, with tahoe.cfg cfg.
func startHTTPSGrid(t *testing.T, n int, cfg string) (*grid.Grid, string) {
	t.Helper()
	g, err := grid.Start(context.Background(), n, "storage", grid.Options{HTTPS: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{TahoeCfg: cfg, Static: g.Servers}); err != nil {
		t.Fatal(err)
	}
	return g, dir
}

// roundTrip uploads one small immutable share to srv through the typed
// API and reads it back.
func roundTrip(t *testing.T, ctx context.Context, srv *tubfarm.Server) {
	t.Helper()
	st := srv.Storage()
	var si storage.Index
	copy(si[:], srv.ID())
	data := []byte("a small share for " + srv.Nickname())
	a, err := st.AllocateBuckets(ctx, si, storage.LeaseSecrets{Renew: storage.Secret{1}, Cancel: storage.Secret{2}}, []storage.ShareNum{0}, uint64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	w := a.Writers[0]
	if w == nil {
		t.Fatalf("%s: no writer: %+v", srv.Nickname(), a)
	}
	if err := w.Write(ctx, 0, data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rs, err := st.GetBuckets(ctx, si)
	if err != nil {
		t.Fatal(err)
	}
	got, err := rs[0].Read(ctx, 0, 1000)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("%s: read back %q, %v", srv.Nickname(), got, err)
	}
}

// Servers that announce NURLs are reached over HTTPS unless [client]
// force_foolscap is set; either way the typed API stores and reads shares.
func TestStorageProtocolChoice(t *testing.T) {
	for _, tc := range []struct {
		name, cfg, want string
	}{
		{"https by default", grid.DefaultTahoeCfg, "https"},
		{"force_foolscap", grid.DefaultTahoeCfg + "[client]\nforce_foolscap = true\n", "foolscap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, dir := startHTTPSGrid(t, 3, tc.cfg)
			reg := prometheus.NewPedanticRegistry()
			b := openBroker(t, dir, tubfarm.Options{Backoff: fastBackoff, Registerer: reg})
			ctx := testCtx(t)
			if err := b.WhenConnected(ctx, 3); err != nil {
				t.Fatal(err)
			}
			for _, srv := range b.Servers() {
				st := srv.Status()
				if st.Protocol != tc.want || srv.Storage().Protocol() != tc.want {
					t.Fatalf("%s: protocol %q, want %q", srv.Nickname(), st.Protocol, tc.want)
				}
				if st.Version != "tahoe-lafs/1.20.0" {
					t.Errorf("%s: version %q", srv.Nickname(), st.Version)
				}
				roundTrip(t, ctx, srv)
				_, err := srv.Call(ctx, "echo", "x")
				if tc.want == "https" && !errors.Is(err, tubfarm.ErrNotFoolscap) {
					t.Errorf("raw call over https: %v", err)
				}
				if tc.want == "foolscap" && err != nil {
					t.Errorf("raw call over foolscap: %v", err)
				}
			}
			sessions := sampleValue(t, reg, "tubfarm_sessions_total", "protocol", tc.want)
			if sessions != 3 {
				t.Errorf("tubfarm_sessions_total{protocol=%q} = %v, want 3", tc.want, sessions)
			}
			for _, s := range g.Servers {
				if len(s.Store.Shares(storage.Index(indexOf(s.ID)))) != 1 {
					t.Errorf("%s holds no share", s.Nickname)
				}
			}
		})
	}
}

func indexOf(id string) (si storage.Index) {
	copy(si[:], id)
	return si
}

// writeNURL replaces server s's NURL in servers.yaml by nurl.
func writeNURL(t *testing.T, dir string, s *grid.Server, nurl string) {
	t.Helper()
	p := config.ServersPath(dir)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.Replace(string(b), s.NURL.String(), nurl, 1)
	if out == string(b) {
		t.Fatal("NURL not found in servers.yaml")
	}
	if err := os.WriteFile(p, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A server whose certificate does not match its NURL is refused and
// counted like a wrong TubID; with FoolscapFallback the same attempt then
// reaches it over its FURL, and its status says so.
func TestStorageWrongCertificate(t *testing.T) {
	other, err := tubtls.NewEphemeral()
	if err != nil {
		t.Fatal(err)
	}
	for _, fallback := range []bool{false, true} {
		t.Run(map[bool]string{false: "no fallback", true: "fallback"}[fallback], func(t *testing.T) {
			g, dir := startHTTPSGrid(t, 1, "")
			s := g.Servers[0]
			wrong, err := hints.FormatNURL(other.Certificate.Leaf, "tcp:"+s.Addr(), s.NURL.Swissnum)
			if err != nil {
				t.Fatal(err)
			}
			writeNURL(t, dir, s, wrong.String())
			b := openBroker(t, dir, tubfarm.Options{Backoff: fastBackoff, FoolscapFallback: fallback})
			srv := b.Servers()[0]
			if !fallback {
				waitFor(t, b, "a certificate failure", func() bool {
					return srv.Status().LastFailureReason == actors.ReasonTubIDMismatch
				})
				if srv.Connected() {
					t.Fatal("connected to a server with the wrong certificate")
				}
				return
			}
			ctx := testCtx(t)
			if err := b.WhenConnected(ctx, 1); err != nil {
				t.Fatal(err)
			}
			st := srv.Status()
			var sawFallback bool
			for _, h := range st.Hints {
				if h.Hint == "fallback" {
					sawFallback = true
				}
			}
			if st.Protocol != "foolscap" || !sawFallback {
				t.Fatalf("protocol %q, hints %+v", st.Protocol, st.Hints)
			}
			roundTrip(t, ctx, srv)
		})
	}
}

// A NURL that does not parse is left out for its server alone: the
// server falls back to its other NURLs or, with none, to Foolscap, and
// the other servers are unaffected.
func TestStorageBadNURL(t *testing.T) {
	g, dir := startHTTPSGrid(t, 2, "")
	writeNURL(t, dir, g.Servers[0], "pb://not-a-nurl@127.0.0.1:1/x#v=1")
	node, err := config.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := node.Map.Get(g.Servers[0].ID)
	if len(e.NURLs) != 0 || len(e.NURLErrors) != 1 || !errors.Is(e.NURLErrors[0], hints.ErrNURLSyntax) {
		t.Fatalf("entry NURLs %v, errors %v", e.NURLs, e.NURLErrors)
	}
	b := openBroker(t, dir, tubfarm.Options{Backoff: fastBackoff})
	ctx := testCtx(t)
	if err := b.WhenConnected(ctx, 2); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{g.Servers[0].ID: "foolscap", g.Servers[1].ID: "https"}
	for _, srv := range b.Servers() {
		if p := srv.Status().Protocol; p != want[srv.ID()] {
			t.Errorf("%s: protocol %q, want %q", srv.Nickname(), p, want[srv.ID()])
		}
	}
}

// An HTTPS storage session ends when its server stops answering (the
// session's get_version check), and the server is reconnected over HTTPS
// when it is back: the same state machine and backoff as Foolscap.
func TestStorageHTTPSReconnect(t *testing.T) {
	g, dir := startHTTPSGrid(t, 1, "")
	b := openBroker(t, dir, tubfarm.Options{Backoff: fastBackoff, HTTPSPoll: 20 * time.Millisecond})
	ctx := testCtx(t)
	if err := b.WhenConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	srv := b.Servers()[0]
	if err := g.Servers[0].Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, "the session to end", func() bool { return !srv.Connected() })
	if err := g.Servers[0].Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.WhenConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if p := srv.Status().Protocol; p != "https" {
		t.Fatalf("protocol %q after the reconnection", p)
	}
	roundTrip(t, ctx, srv)
}

// The HTTPS session's liveness poll runs on the broker's clock: with the
// server stopped, the session stays up until the injected clock reaches
// the poll interval, and then the failed get_version ends it.
func TestStorageHTTPSPollClock(t *testing.T) {
	g, dir := startHTTPSGrid(t, 1, "")
	clk := &jumpClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	t.Cleanup(clk.wg.Wait)
	b := openBroker(t, dir, tubfarm.Options{
		Backoff:   fastBackoff,
		TestHooks: &tubfarm.TestHooks{ActorOptions: []actors.Option{actors.WithClock(clk)}},
	})
	ctx := testCtx(t)
	if err := b.WhenConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	srv := b.Servers()[0]
	if p := srv.Status().Protocol; p != "https" {
		t.Fatalf("protocol %q", p)
	}
	if n := clk.pending(); n != 1 {
		t.Fatalf("%d timers pending on the injected clock, want the session's poll", n)
	}
	if err := g.Servers[0].Stop(); err != nil {
		t.Fatal(err)
	}
	clk.Jump(tubfarm.DefaultHTTPSPoll - time.Second)
	if !srv.Connected() || clk.pending() != 1 {
		t.Fatalf("the poll fired before its interval: connected %v, %d timers pending", srv.Connected(), clk.pending())
	}
	clk.Jump(time.Second)
	waitFor(t, b, "the session to end", func() bool { return !srv.Connected() })
	if f := srv.Status().LastFailure; f == "" {
		t.Fatal("no failure recorded for the ended session")
	}
}

// A server that announces a good and a bad NURL connects over HTTPS
// through the good one, and its status (the snapshot, the JSON and the
// page) names the bad one, redacted, with the parse error among its hints;
// the other server's hints show no such thing.
func TestStorageBadNURLStatus(t *testing.T) {
	g, dir := startHTTPSGrid(t, 2, "")
	const bad = "pb://not-a-nurl@127.0.0.1:1/secretswiss#v=1"
	const badKey = "pb://not-a-nurl@127.0.0.1:1/REDACTED"
	good := g.Servers[0].NURL.String()
	writeNURL(t, dir, g.Servers[0], good+"\"\n        - \""+bad)
	b := openBroker(t, dir, tubfarm.Options{Backoff: fastBackoff})
	ctx := testCtx(t)
	if err := b.WhenConnected(ctx, 2); err != nil {
		t.Fatal(err)
	}
	h := status.NewHandler(b, status.Options{})
	var rep status.Report
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/?t=json", nil))
	jsonBody := rec.Body.String()
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	page := rec.Body.String()
	if strings.Contains(page, "secretswiss") || strings.Contains(jsonBody, "secretswiss") {
		t.Error("the page or the JSON shows the bad NURL's swissnum")
	}
	for _, s := range rep.Servers {
		if s.Protocol != "https" {
			t.Errorf("%s: protocol %q, want https", s.Nickname, s.Protocol)
		}
		var badHints []string
		for hint, st := range s.Hints {
			if strings.HasPrefix(st, "bad NURL") {
				badHints = append(badHints, hint+": "+st)
			}
		}
		if s.ID != g.Servers[0].ID {
			if len(badHints) != 0 {
				t.Errorf("%s (no bad NURL) shows %q", s.Nickname, badHints)
			}
			continue
		}
		st, ok := s.Hints[badKey]
		if !ok || !strings.HasPrefix(st, "bad NURL: ") || !strings.Contains(st, "hash") {
			t.Errorf("%s: JSON hints %q, want %q with the parse error", s.Nickname, s.Hints, badKey)
		}
		if !strings.Contains(page, html.EscapeString(badKey)) || !strings.Contains(page, html.EscapeString(st)) {
			t.Errorf("the page does not show %q: %q", badKey, st)
		}
	}
	for _, srv := range b.Servers() {
		st := srv.Status()
		has := slices.ContainsFunc(st.Hints, func(h actors.HintStatus) bool { return h.Hint == badKey })
		if has != (srv.ID() == g.Servers[0].ID) {
			t.Errorf("%s: status hints %+v", srv.Nickname(), st.Hints)
		}
	}
}
