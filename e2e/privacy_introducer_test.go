package e2e

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/internal/grid"
	"github.com/tubfarm/tubfarm/internal/introducerserver"
	"github.com/tubfarm/tubfarm/internal/privtest"
	"github.com/tubfarm/tubfarm/introducer"
)

// TestPrivacyIntroducers: with reveal-IP-address = false and tcp = tor,
// introducer connections leave only through the SOCKS proxy, each identity
// with credentials of its own; the two introducers see two different client
// TubIDs, none of them a server's or node.pem's. With UseNodeIdentity both
// see node.pem's, as with Tahoe.
func TestPrivacyIntroducers(t *testing.T) {
	for _, nodeID := range []bool{false, true} {
		t.Run("UseNodeIdentity="+strconv.FormatBool(nodeID), func(t *testing.T) {
			g := startGrid(t, 2)
			ia := startIntroducer(t, introducerserver.Options{})
			ib := startIntroducer(t, introducerserver.Options{})
			// Names, not loopback addresses: Tor cannot reach a private
			// address, and the recording proxy sends every name to
			// 127.0.0.1.
			named := func(furl, name string) string { return strings.Replace(furl, "127.0.0.1", name, 1) }
			for i, in := range []*introducerserver.Server{ia, ib} {
				s := g.Servers[i]
				f := s.Announcement(1)
				f["anonymous-storage-FURL"] = named(s.FURL, s.Nickname+".example")
				signed, err := config.Sign(s.Key, f)
				if err != nil {
					t.Fatal(err)
				}
				if r, err := in.Publish(signed); r != introducer.Accepted {
					t.Fatal(r, err)
				}
			}
			proxy := privtest.StartProxy(t)
			dir := t.TempDir()
			if err := grid.WriteNodeDir(dir, grid.NodeDir{TahoeCfg: privtest.AnonymousCfg(proxy.Addr, ""),
				IntroducerFURLs: map[string]string{"a": named(ia.FURL, "introducer-a.example"), "b": named(ib.FURL, "introducer-b.example")}}); err != nil {
				t.Fatal(err)
			}
			wire := new(privtest.Tripwire)
			b := openBroker(t, dir, tubfarm.Options{TestHooks: &tubfarm.TestHooks{Direct: wire.Dial}, WatchInterval: -1,
				Introducers: tubfarm.IntroducerOptions{UseNodeIdentity: nodeID}})
			ctx := testCtx(t)
			if err := b.WhenIntroducersAnswered(ctx); err != nil {
				t.Fatalf("%v: %+v", err, b.Introducers())
			}
			if err := b.WhenConnected(ctx, 2); err != nil {
				t.Fatal(err)
			}
			if got := wire.Addrs(); len(got) > 0 {
				t.Errorf("direct TCP dials: %v", got)
			}

			port := func(addr string) int {
				_, p, _ := strings.Cut(addr, ":")
				n, _ := strconv.Atoi(p)
				return n
			}
			owner := map[int]string{port(ia.Addr()): "introducer a", port(ib.Addr()): "introducer b"}
			for _, s := range g.Servers {
				owner[port(s.Addr())] = s.Nickname
			}
			userOf := map[string]string{}
			seen := map[string]bool{}
			for _, s := range proxy.Streams() {
				who, ok := owner[s.Port]
				if !ok {
					t.Errorf("proxy stream to unknown port %d", s.Port)
					continue
				}
				seen[who] = true
				if s.Method != 2 || s.User == "" {
					t.Errorf("%s: stream without credentials", who)
				}
				if other, ok := userOf[s.User]; ok && other != who && !nodeID {
					t.Errorf("%s and %s share the SOCKS user %q", other, who, s.User)
				}
				userOf[s.User] = who
			}
			if !seen["introducer a"] || !seen["introducer b"] {
				t.Errorf("the proxy did not carry both introducer connections: %v", seen)
			}

			ca, cb := ia.Clients(), ib.Clients()
			if len(ca) == 0 || len(cb) == 0 {
				t.Fatalf("introducers saw %v and %v", ca, cb)
			}
			node := b.Identity().TubID
			if nodeID {
				if ca[0] != node || cb[0] != node {
					t.Errorf("with UseNodeIdentity the introducers saw %s and %s, want node.pem's %s", ca[0], cb[0], node)
				}
				return
			}
			if ca[0] == cb[0] {
				t.Errorf("both introducers saw client TubID %s", ca[0])
			}
			for _, c := range append(ca, cb...) {
				if c == node {
					t.Errorf("an introducer saw node.pem's TubID")
				}
				for _, s := range g.Servers {
					if slices.Contains(s.Clients(), c) {
						t.Errorf("introducer client TubID %s also seen by server %s", c, s.Nickname)
					}
				}
			}
		})
	}
}
