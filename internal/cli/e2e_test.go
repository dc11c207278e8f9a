package cli

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/actors"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/internal/nettest"
	"github.com/tubfarm/tubfarm/internal/privtest"
	"github.com/tubfarm/tubfarm/status"
)

var quickBackoff = actors.Backoff{BaseDelay: 50 * time.Millisecond, Multiplier: 2, Jitter: 0.1, MaxDelay: 500 * time.Millisecond, StableAfter: time.Second}

// TestPinWorkflowEndToEnd is the workflow the command exists for. A node
// with reveal-IP-address = false and [connections] tcp = tor reaches every
// server through a real SOCKS proxy (microsocks, standing in for Tor's
// SocksPort). The LAN server "lan" is announced with a tor: hint that the
// proxy cannot reach. The operator pins it with a LAN hint and direct TCP;
// the running broker reloads servers.yaml, "lan" connects directly and is
// flagged reveals_ip, and the other servers keep their connections through
// the proxy.
func TestPinWorkflowEndToEnd(t *testing.T) {
	socks := privtest.StartMicrosocks(t)
	lan := privtest.StartServer(t, privtest.ServerConfig{Nickname: "lan"})
	far1 := privtest.StartServer(t, privtest.ServerConfig{Nickname: "far-1"})
	far2 := privtest.StartServer(t, privtest.ServerConfig{Nickname: "far-2"})
	_, deadPort, _ := net.SplitHostPort(nettest.RefusedAddr(t))
	torHint := func(s *privtest.Server) string { return "tor:localhost:" + strconv.Itoa(s.Port) }

	dir := filepath.Join(t.TempDir(), "node")
	err := privtest.WriteNodeDir(dir, privtest.NodeDir{
		TahoeCfg: privtest.AnonymousCfg(socks, ""),
		Introducers: map[string][]privtest.Entry{
			"alpha": {{Server: lan, FURL: lan.FURL("tor:localhost:" + deadPort)}, {Server: far1, FURL: far1.FURL(torHint(far1))}},
			"beta":  {{Server: far1, FURL: far1.FURL(torHint(far1))}, {Server: far2, FURL: far2.FURL(torHint(far2))}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	// The running node.
	node, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	reloaded := make(chan error, 16)
	b, err := tubfarm.New(node, tubfarm.Options{Backoff: quickBackoff, WatchInterval: 50 * time.Millisecond,
		OnReload: func(err error) { reloaded <- err }, Introducers: tubfarm.IntroducerOptions{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := b.WhenConnected(ctx, 2); err != nil {
		t.Fatalf("far-1 and far-2 through the proxy: %v", err)
	}
	before := map[string]string{}
	for _, st := range b.Statuses() {
		before[st.ID] = st.TubID
	}
	if s, _ := b.Server(lan.ID); s.Connected() {
		t.Fatalf("lan connected through an unreachable hint")
	}

	r := run(t, dir, "pin", "-d", "NODEDIR", "lan", "--hint", "tcp:127.0.0.1:"+strconv.Itoa(lan.Port), "--connections", "tcp=tcp")
	if r.code != ExitOK {
		t.Fatalf("pin: exit %d: %s", r.code, r.stderr)
	}
	if err := <-reloaded; err != nil {
		t.Fatalf("reload: %v", err)
	}
	if err := b.WhenConnected(ctx, 3); err != nil {
		t.Fatalf("lan after the pin: %v", err)
	}

	rep := status.NewReport("", b.Statuses(), time.Now())
	for _, s := range rep.Servers {
		switch s.ID {
		case lan.ID:
			if s.ConnectedVia == nil || s.ConnectedVia.Handler != "tcp" || !s.RevealsIP || s.Source != "servers.yaml" {
				t.Errorf("lan: via %+v, reveals_ip %v, source %s; want direct tcp, reveals_ip, servers.yaml", s.ConnectedVia, s.RevealsIP, s.Source)
			}
		default:
			if s.ConnectedVia == nil || s.ConnectedVia.Handler != "tor" || s.RevealsIP {
				t.Errorf("%s: via %+v, reveals_ip %v; want tor", s.Nickname, s.ConnectedVia, s.RevealsIP)
			}
			if s.ClientTubID != before[s.ID] {
				t.Errorf("%s was reconnected by the reload (client %s, was %s)", s.Nickname, s.ClientTubID, before[s.ID])
			}
		}
	}
	// Where the connections came from, as the servers saw them.
	if src := lan.Sources(); !slices.Contains(src, netip.MustParseAddr("127.0.0.1")) || slices.Contains(src, privtest.SOCKSAddr) {
		t.Errorf("lan saw connections from %v; want a direct one from 127.0.0.1 and none through the proxy", src)
	}
	for _, s := range []*privtest.Server{far1, far2} {
		for _, a := range s.Sources() {
			if a != privtest.SOCKSAddr {
				t.Errorf("%s saw a connection from %v, not from the proxy (%v)", s.Nickname, a, privtest.SOCKSAddr)
			}
		}
	}

	// A fresh status run on the edited directory agrees, and exits 0.
	r = run(t, dir, "status", "--once", "--timeout", "60s", "-d", "NODEDIR")
	if r.code != ExitOK {
		t.Fatalf("status --once: exit %d: %s", r.code, r.stderr)
	}
	var fresh status.Report
	if err := json.Unmarshal([]byte(r.stdout), &fresh); err != nil {
		t.Fatal(err)
	}
	for _, s := range fresh.Servers {
		if (s.ID == lan.ID) != s.RevealsIP || s.ConnectedVia == nil {
			t.Errorf("status --once: %s reveals_ip %v via %+v", s.Nickname, s.RevealsIP, s.ConnectedVia)
		}
	}
}
