package e2e

// The privacy tests (docs/privacy.md): tubfarm.Open on anonymous node
// directories, with real SOCKS5 servers on loopback standing in for Tor, a
// fake SAM bridge for I2P, and servers that record where every connection
// comes from. privtest's proxies reach servers from privtest.SOCKSAddr and
// privtest.SAMAddr; anything from 127.0.0.1 is a direct connection.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/actors"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/internal/privtest"
	"github.com/tubfarm/tubfarm/internal/samtest"
)

// leakCase is one kind of announcement in the leak test.
type leakCase struct {
	name  string
	hints func(h hintEnv) []string
	// via is the handler that must reach the server, "tor" or "i2p", or ""
	// if no hint may be dialed at all.
	via string
	// host is the destination the SOCKS proxy must receive, as sent:
	// a name (unresolved) or a public IP literal; "" if not via tor.
	host func(h hintEnv) string
	// status must appear in the per-hint statuses of an unreachable
	// server.
	status string
	// offLoopback marks hints with non-loopback IP literals: dialing them
	// directly would leave the machine, so they are only used when direct
	// dials go to a tripwire.
	offLoopback bool
	// names marks cases that need the proxy to resolve made-up names
	// (.example, .onion), which microsocks cannot.
	names bool
}

// hintEnv is what a case builds its hints from.
type hintEnv struct {
	port  int    // the server's port on 127.0.0.1
	name  string // a host name the proxy maps to 127.0.0.1
	onion string // an .onion name
	b32   string // an I2P address the SAM bridge maps to the server
}

func (h hintEnv) p() string { return strconv.Itoa(h.port) }

var leakCases = []leakCase{
	{name: "ipv4 public", via: "tor", offLoopback: true, names: true,
		hints: func(h hintEnv) []string { return []string{"tcp:1.2.3.4:" + h.p()} },
		host:  func(hintEnv) string { return "1.2.3.4" }},
	{name: "ipv4 loopback", status: "bad hint: ignoring non-Tor-able ipaddr 127.0.0.1",
		hints: func(h hintEnv) []string { return []string{"tcp:127.0.0.1:" + h.p()} }},
	{name: "ipv4 private", status: "bad hint: ignoring non-Tor-able ipaddr 10.0.0.1", offLoopback: true,
		hints: func(h hintEnv) []string { return []string{"tcp:10.0.0.1:" + h.p(), "tcp:192.168.1.1:" + h.p()} }},
	{name: "ipv6 loopback", status: "bad hint: unrecognized TCP/Tor hint",
		hints: func(h hintEnv) []string { return []string{"tcp:[::1]:" + h.p()} }},
	{name: "ipv6 public", status: "bad hint: unrecognized TCP/Tor hint", offLoopback: true,
		hints: func(h hintEnv) []string { return []string{"tcp:[2001:4860:4860::8888]:" + h.p()} }},
	{name: "host name", via: "tor",
		hints: func(h hintEnv) []string { return []string{"tcp:" + h.name + ":" + h.p()} },
		host:  func(h hintEnv) string { return h.name }},
	{name: "legacy host name", via: "tor",
		hints: func(h hintEnv) []string { return []string{h.name + ":" + h.p()} },
		host:  func(h hintEnv) string { return h.name }},
	{name: "legacy loopback", status: "bad hint: ignoring non-Tor-able ipaddr 127.0.0.1",
		hints: func(h hintEnv) []string { return []string{"127.0.0.1:" + h.p()} }},
	{name: "dotted quad with zeros", via: "tor", names: true,
		hints: func(h hintEnv) []string { return []string{"tcp:127.000.000.001:" + h.p()} },
		host:  func(hintEnv) string { return "127.000.000.001" }},
	{name: "onion", via: "tor", names: true,
		hints: func(h hintEnv) []string { return []string{"tor:" + h.onion + ":" + h.p()} },
		host:  func(h hintEnv) string { return h.onion }},
	{name: "tor loopback", status: "bad hint: ignoring non-Tor-able ipaddr 127.0.0.1",
		hints: func(h hintEnv) []string { return []string{"tor:127.0.0.1:" + h.p()} }},
	{name: "i2p", via: "i2p",
		hints: func(h hintEnv) []string { return []string{"i2p:" + h.b32} }},
	{name: "unknown types", status: "bad hint: no handler registered",
		hints: func(h hintEnv) []string { return []string{"foo:bar:" + h.p(), "unix:tubfarm-privacy.sock"} }},
	{name: "mixed", via: "tor",
		hints: func(h hintEnv) []string {
			return []string{"tcp:127.0.0.1:" + h.p(), "tcp:[::1]:" + h.p(), "unix:tubfarm.sock", h.name + ":" + h.p()}
		},
		host: func(h hintEnv) string { return h.name }},
}

// onionName returns a 56-character v3 onion name unique to i.
func onionName(i int) string {
	s := fmt.Sprintf("tubfarm%dtest", i)
	return s + strings.Repeat("a", 56-len(s)) + ".onion"
}

// leakServer is a server of the leak test and what it must see.
type leakServer struct {
	c    leakCase
	srv  *privtest.Server
	env  hintEnv
	furl string
}

// TestPrivacyNoLeak is the leak test: in anonymous mode (reveal-IP-address
// = false, [connections] tcp = tor) over announcements covering every hint
// type, every connection a server accepts comes from a proxy (the SOCKS
// server or the SAM bridge), none directly; no direct dial is even tried
// (tripwire) and no name is resolved locally (resolver seam); host names
// reach the proxy unresolved; hints no Tor exit could reach get a clear
// per-hint status.
func TestPrivacyNoLeak(t *testing.T) {
	for _, tc := range []struct {
		name       string
		microsocks bool
		tripwire   bool // TestHooks.Direct is a tripwire; else TestHooks.Resolver records
	}{
		{name: "go-socks5/tripwire", tripwire: true},
		{name: "go-socks5/resolver"},
		{name: "microsocks/resolver", microsocks: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var socks string
			var proxy *privtest.Proxy
			if tc.microsocks {
				socks = privtest.StartMicrosocks(t)
			} else {
				proxy = privtest.StartProxy(t)
				socks = proxy.Addr
			}
			sam := samtest.Start(t, samtest.Config{DialFrom: privtest.SAMAddr})

			var servers []*leakServer
			for i, c := range leakCases {
				if c.offLoopback && !tc.tripwire || c.names && tc.microsocks {
					continue
				}
				s := privtest.StartServer(t, privtest.ServerConfig{Nickname: fmt.Sprintf("leak-%d", i)})
				env := hintEnv{port: s.Port, name: fmt.Sprintf("storage-%d.example", i), onion: onionName(i),
					b32: sam.AddPeer(net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))).B32}
				if tc.microsocks {
					env.name = "localhost" // microsocks resolves it itself, from /etc/hosts
				}
				servers = append(servers, &leakServer{c: c, srv: s, env: env, furl: s.FURL(c.hints(env)...)})
			}
			// Half the servers come from one introducer, the rest from the
			// other, and the mixed one from servers.yaml.
			nd := privtest.NodeDir{TahoeCfg: privtest.AnonymousCfg(socks, sam.Addr), Introducers: map[string][]privtest.Entry{}}
			for i, ls := range servers {
				e := privtest.Entry{Server: ls.srv, FURL: ls.furl}
				switch {
				case ls.c.name == "mixed":
					nd.Static = append(nd.Static, e)
				case i%2 == 0:
					nd.Introducers["alpha"] = append(nd.Introducers["alpha"], e)
				default:
					nd.Introducers["beta"] = append(nd.Introducers["beta"], e)
				}
			}
			dir := t.TempDir()
			if err := privtest.WriteNodeDir(dir, nd); err != nil {
				t.Fatal(err)
			}

			wire, res := new(privtest.Tripwire), new(privtest.Resolver)
			opts := tubfarm.Options{Backoff: fastBackoff}
			if tc.tripwire {
				opts.TestHooks = &tubfarm.TestHooks{Direct: wire.Dial}
			} else {
				opts.TestHooks = &tubfarm.TestHooks{Resolver: res}
			}
			logs := &logRecorder{}
			opts.Logger = slog.New(logs)
			reg := prometheus.NewPedanticRegistry()
			opts.Registerer = reg
			b := openBroker(t, dir, opts)

			reachable := 0
			for _, ls := range servers {
				if ls.c.via != "" {
					reachable++
				}
			}
			ctx := testCtx(t)
			if err := b.WhenConnected(ctx, reachable); err != nil {
				t.Fatalf("%v\n%s", err, summaries(b))
			}
			// Every unreachable server has tried once and found nothing to dial.
			waitFor(t, b, "every unreachable server to fail", func() bool {
				for _, ls := range servers {
					if ls.c.via == "" && mustServer(t, b, ls.srv.ID).Status().LastFailureReason != actors.ReasonNoHints {
						return false
					}
				}
				return true
			})

			for _, ls := range servers {
				checkLeakServer(t, b, ls)
			}
			if got := wire.Addrs(); len(got) > 0 {
				t.Errorf("direct TCP dials attempted: %v", got)
			}
			if got := res.Names(); len(got) > 0 {
				t.Errorf("names resolved locally: %v", got)
			}
			if proxy != nil {
				checkProxyStreams(t, proxy, servers)
			}
			checkSAM(t, sam, b, servers)
			if n := gaugeValue(t, reg, "tubfarm_servers_revealing_ip"); n != 0 {
				t.Errorf("tubfarm_servers_revealing_ip = %v, want 0", n)
			}
			if r := logs.find(slog.LevelWarn, "reveal"); r != nil {
				t.Errorf("a server was logged as revealing the IP address: %s", r.Message)
			}
		})
	}
}

// summaries lists each server's nickname and status summary, for failure
// messages.
func summaries(b *tubfarm.Broker) string {
	var sb strings.Builder
	for _, st := range b.Statuses() {
		fmt.Fprintf(&sb, "  %s: %s; last failure: %s\n", st.Nickname, st.Summary, st.LastFailure)
	}
	return sb.String()
}

// checkLeakServer checks what one server saw and what the broker says.
func checkLeakServer(t *testing.T, b *tubfarm.Broker, ls *leakServer) {
	t.Helper()
	st := mustServer(t, b, ls.srv.ID).Status()
	srcs := ls.srv.Sources()
	if st.RevealsIP {
		t.Errorf("%s: status has RevealsIP", ls.c.name)
	}
	switch ls.c.via {
	case "":
		if len(srcs) > 0 {
			t.Errorf("%s: a server with no Tor-able hint accepted connections from %v", ls.c.name, srcs)
		}
		// The hint statuses are those of the current attempt: under the
		// fast backoff a new one may have begun with nothing reported yet,
		// so read them from a snapshot taken between attempts.
		waitFor(t, b, ls.c.name+" to wait between attempts", func() bool {
			st = mustServer(t, b, ls.srv.ID).Status()
			return st.State == actors.WaitingToRetry
		})
		if st.Connected {
			t.Errorf("%s: connected with no usable hint", ls.c.name)
		}
		if !slices.ContainsFunc(st.Hints, func(h actors.HintStatus) bool { return h.Status == ls.c.status }) {
			t.Errorf("%s: per-hint statuses %+v, want one %q", ls.c.name, st.Hints, ls.c.status)
		}
		return
	case "tor":
		checkSources(t, ls.c.name, srcs, privtest.SOCKSAddr)
	case "i2p":
		checkSources(t, ls.c.name, srcs, privtest.SAMAddr)
	}
	if !st.Connected || st.Handler != ls.c.via {
		t.Errorf("%s: status connected=%v handler=%q, want connected via %s (%+v)", ls.c.name, st.Connected, st.Handler, ls.c.via, st)
	}
	// Handshakes are recorded before the client can finish its own, so
	// unlike Clients (filled in asynchronously) they are complete here.
	if hs := ls.srv.Handshakes(); len(hs) != 1 || hs[0].PeerTubID != st.TubID {
		t.Errorf("%s: server handshakes %+v, broker says client TubID %s", ls.c.name, hs, st.TubID)
	}
	if ls.c.name == "mixed" {
		// The refused hints are listed, with the reason, next to the winner.
		for _, want := range []string{"bad hint: ignoring non-Tor-able ipaddr 127.0.0.1", "bad hint: unrecognized TCP/Tor hint", "bad hint: no handler registered"} {
			if !slices.ContainsFunc(st.Hints, func(h actors.HintStatus) bool { return h.Status == want }) {
				t.Errorf("mixed: per-hint statuses %+v lack %q", st.Hints, want)
			}
		}
	}
}

// checkSources checks that every connection came from want and that
// there was at least one.
func checkSources(t *testing.T, name string, srcs []netip.Addr, want netip.Addr) {
	t.Helper()
	if len(srcs) == 0 {
		t.Errorf("%s: the server accepted no connection", name)
	}
	for _, s := range srcs {
		if s != want {
			t.Errorf("%s: connection from %v, want only %v (the proxy)", name, s, want)
		}
	}
}

// checkProxyStreams checks what the SOCKS server was asked: exactly the
// expected destinations, names unresolved, each server's streams under a
// user name of its own.
func checkProxyStreams(t *testing.T, p *privtest.Proxy, servers []*leakServer) {
	t.Helper()
	userOf := map[string]string{}    // user -> case
	introUser := map[string]string{} // user -> introducer host
	defer func() {
		for u, host := range introUser {
			if c, ok := userOf[u]; ok {
				t.Errorf("introducer %s and server %s share the SOCKS user name %q", host, c, u)
			}
		}
	}()
	for _, s := range p.Streams() {
		var owner *leakServer
		for _, ls := range servers {
			if ls.c.via == "tor" && ls.c.host(ls.env) == s.Host() && ls.env.port == s.Port {
				owner = ls
			}
		}
		if owner == nil && strings.HasSuffix(s.Host(), ".onion") && s.Port == privtest.IntroducerPort {
			// An introducer of introducers.yaml (nothing listens): its
			// connections too go through the proxy, each identity with
			// credentials of its own.
			if s.Method != 2 || s.User == "" {
				t.Errorf("introducer %s: stream without isolation credentials (method %d)", s.Host(), s.Method)
			}
			if other, ok := introUser[s.User]; ok && other != s.Host() {
				t.Errorf("introducers %s and %s share the SOCKS user name %q", other, s.Host(), s.User)
			}
			introUser[s.User] = s.Host()
			continue
		}
		if owner == nil {
			t.Errorf("proxy asked for %s:%d, which no Tor-able hint names", s.Host(), s.Port)
			continue
		}
		if _, err := netip.ParseAddr(owner.c.host(owner.env)); err != nil && s.FQDN == "" {
			t.Errorf("%s: name %q reached the proxy as IP %v: resolved locally", owner.c.name, owner.c.host(owner.env), s.IP)
		}
		if s.Method != 2 || s.User == "" {
			t.Errorf("%s: stream without isolation credentials (method %d)", owner.c.name, s.Method)
		}
		if other, ok := userOf[s.User]; ok && other != owner.c.name {
			t.Errorf("%s and %s share the SOCKS user name %q", other, owner.c.name, s.User)
		}
		userOf[s.User] = owner.c.name
	}
	for _, ls := range servers {
		if ls.c.via != "tor" {
			continue
		}
		if !slices.ContainsFunc(p.Streams(), func(s privtest.Stream) bool { return s.Host() == ls.c.host(ls.env) && s.Port == ls.env.port }) {
			t.Errorf("%s: the proxy never saw %s", ls.c.name, ls.c.host(ls.env))
		}
	}
}

// checkSAM checks that each I2P server was reached through a session of
// its own identity.
func checkSAM(t *testing.T, sam *samtest.Server, b *tubfarm.Broker, servers []*leakServer) {
	t.Helper()
	sessions := map[string]string{} // session -> destination
	for _, s := range sam.Streams() {
		if d, ok := sessions[s.SessionID]; ok && d != s.Dest {
			t.Errorf("SAM session %s used for two destinations", s.SessionID)
		}
		sessions[s.SessionID] = s.Dest
	}
	for _, ls := range servers {
		if ls.c.via != "i2p" {
			continue
		}
		if !slices.ContainsFunc(sam.Streams(), func(s samtest.StreamRecord) bool { return s.Dest == ls.env.b32 }) {
			t.Errorf("%s: no SAM stream to %s", ls.c.name, ls.env.b32)
		}
	}
}

// gaugeValue returns the value of an unlabelled gauge registered with reg.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// TestPrivacyLANOverride is Tahoe's "Tor-mostly client": with tcp = tor,
// one server whose servers.yaml entry says connections: {tcp: tcp} is
// reached directly (its name resolved by the resolver seam, its connection
// from 127.0.0.1), the others through the proxy; only that one is flagged
// reveals_ip, in its status, in a warning log and in the metric.
func TestPrivacyLANOverride(t *testing.T) {
	proxy := privtest.StartProxy(t)
	lan := privtest.StartServer(t, privtest.ServerConfig{Nickname: "lan"})
	var far []*privtest.Server
	nd := privtest.NodeDir{
		TahoeCfg: privtest.AnonymousCfg(proxy.Addr, ""),
		Static: []privtest.Entry{{Server: lan, FURL: lan.FURL("tcp:lan-server.example:" + strconv.Itoa(lan.Port)),
			Connections: map[string]string{"tcp": "tcp"}}},
		Introducers: map[string][]privtest.Entry{},
	}
	for i := range 3 {
		s := privtest.StartServer(t, privtest.ServerConfig{Nickname: fmt.Sprintf("far-%d", i)})
		far = append(far, s)
		nd.Introducers["alpha"] = append(nd.Introducers["alpha"],
			privtest.Entry{Server: s, FURL: s.FURL(fmt.Sprintf("tcp:far-%d.example:%d", i, s.Port))})
	}
	dir := t.TempDir()
	if err := privtest.WriteNodeDir(dir, nd); err != nil {
		t.Fatal(err)
	}
	res := new(privtest.Resolver)
	logs := &logRecorder{}
	reg := prometheus.NewPedanticRegistry()
	b := openBroker(t, dir, tubfarm.Options{TestHooks: &tubfarm.TestHooks{Resolver: res}, Logger: slog.New(logs), Registerer: reg})
	if err := b.WhenConnected(testCtx(t), 4); err != nil {
		t.Fatal(err)
	}

	st := mustServer(t, b, lan.ID).Status()
	if !st.RevealsIP || st.Handler != "tcp" {
		t.Errorf("LAN server: RevealsIP=%v handler=%q, want true, tcp", st.RevealsIP, st.Handler)
	}
	checkSources(t, "LAN server", lan.Sources(), privtest.ClientAddr)
	for _, s := range far {
		st := mustServer(t, b, s.ID).Status()
		if st.RevealsIP || st.Handler != "tor" {
			t.Errorf("%s: RevealsIP=%v handler=%q, want false, tor", s.Nickname, st.RevealsIP, st.Handler)
		}
		checkSources(t, s.Nickname, s.Sources(), privtest.SOCKSAddr)
	}
	for _, n := range res.Names() {
		if n != "lan-server.example" {
			t.Errorf("resolved %q locally; only the LAN server's name may be", n)
		}
	}
	if len(res.Names()) == 0 {
		t.Error("the LAN server's name was not resolved by the resolver seam")
	}
	for _, s := range proxy.Streams() {
		if s.Host() == "lan-server.example" {
			t.Error("the LAN server was also dialed through the proxy")
		}
	}
	if n := gaugeValue(t, reg, "tubfarm_servers_revealing_ip"); n != 1 {
		t.Errorf("tubfarm_servers_revealing_ip = %v, want 1", n)
	}
	r := logs.find(slog.LevelWarn, "reveal")
	if r == nil {
		t.Fatal("no warning logged for the server that reveals the IP address")
	}
	if !r.hasAttr(lan.ID) {
		t.Errorf("the warning %q does not name the server %s (attrs %v)", r.Message, lan.ID, r.attrs)
	}
	if n := logs.count(slog.LevelWarn, "reveal"); n != 1 {
		t.Errorf("%d reveal warnings, want 1 (only the LAN server)", n)
	}
}

// TestPrivacyRefusesTCPTCP checks that reveal-IP-address = false with
// direct TCP for tcp hints (explicit or by default) refuses to start with
// Tahoe-LAFS's PrivacyError, before any connection.
func TestPrivacyRefusesTCPTCP(t *testing.T) {
	srv := privtest.StartServer(t, privtest.ServerConfig{Nickname: "s"})
	for _, tc := range []struct{ name, cfg string }{
		{"tcp = tcp", "[node]\nreveal-IP-address = false\ntub.port = disabled\ntub.location = disabled\n[connections]\ntcp = tcp\n"},
		{"tcp unset", "[node]\nreveal-IP-address = False\ntub.port = disabled\ntub.location = disabled\n"},
		{"tcp = TCP", "[node]\nreveal-ip-address = no\ntub.port = disabled\ntub.location = disabled\n[connections]\ntcp = TCP\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := privtest.WriteNodeDir(dir, privtest.NodeDir{TahoeCfg: tc.cfg,
				Static: []privtest.Entry{{Server: srv, FURL: srv.FURL("tcp:127.0.0.1:" + strconv.Itoa(srv.Port))}}}); err != nil {
				t.Fatal(err)
			}
			b, err := tubfarm.Open(dir, tubfarm.Options{Logger: quiet()})
			if err == nil {
				b.Close()
				t.Fatal("Open succeeded")
			}
			var pe *hints.PrivacyError
			if !errors.As(err, &pe) || !errors.Is(err, config.ErrPrivacy) {
				t.Errorf("error %v: want a *hints.PrivacyError and config.ErrPrivacy", err)
			}
			const tahoe = "Privacy requested with `reveal-IP-address = false` but `tcp = tcp` conflicts with this."
			if !strings.Contains(err.Error(), tahoe) || !strings.Contains(err.Error(), config.TahoeCfgPath(dir)) {
				t.Errorf("error %q: want Tahoe's message and the file name", err)
			}
		})
	}
	if s := srv.Sources(); len(s) > 0 {
		t.Errorf("a refused configuration connected: %v", s)
	}
}

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu   sync.Mutex
	recs []logRecord
}

type logRecord struct {
	Level   slog.Level
	Message string
	attrs   []string // "key=value", with group prefixes
}

func (r logRecord) hasAttr(value string) bool {
	return slices.ContainsFunc(r.attrs, func(a string) bool { return strings.HasSuffix(a, "="+value) })
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{Level: r.Level, Message: r.Message}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs = append(rec.attrs, a.Key+"="+a.Value.String())
		return true
	})
	h.mu.Lock()
	h.recs = append(h.recs, rec)
	h.mu.Unlock()
	return nil
}

// find returns the first record at level whose message contains substr.
func (h *logRecorder) find(level slog.Level, substr string) *logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.recs {
		if h.recs[i].Level == level && strings.Contains(h.recs[i].Message, substr) {
			r := h.recs[i]
			return &r
		}
	}
	return nil
}

func (h *logRecorder) count(level slog.Level, substr string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		if r.Level == level && strings.Contains(r.Message, substr) {
			n++
		}
	}
	return n
}
