package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/actors"
	"github.com/tubfarm/tubfarm/internal/privtest"
)

// isoGrid starts n servers named iso-0.example ... behind an anonymous
// node directory whose Tor SOCKS port is proxy, and opens a broker on it.
func isoGrid(t *testing.T, proxy *privtest.Proxy, n int, opts tubfarm.Options) (*tubfarm.Broker, []*privtest.Server) {
	t.Helper()
	nd := privtest.NodeDir{TahoeCfg: privtest.AnonymousCfg(proxy.Addr, ""), Introducers: map[string][]privtest.Entry{}}
	var servers []*privtest.Server
	for i := range n {
		s := privtest.StartServer(t, privtest.ServerConfig{Nickname: fmt.Sprintf("iso-%d", i)})
		servers = append(servers, s)
		nd.Introducers["alpha"] = append(nd.Introducers["alpha"],
			privtest.Entry{Server: s, FURL: s.FURL(fmt.Sprintf("tcp:iso-%d.example:%d", i, s.Port))})
	}
	dir := t.TempDir()
	if err := privtest.WriteNodeDir(dir, nd); err != nil {
		t.Fatal(err)
	}
	opts.Backoff = fastBackoff
	b := openBroker(t, dir, opts)
	if err := b.WhenConnected(testCtx(t), n); err != nil {
		t.Fatalf("%v\n%s", err, summaries(b))
	}
	return b, servers
}

// streamsTo returns the streams the proxy opened to server i of isoGrid.
func streamsTo(p *privtest.Proxy, i int) []privtest.Stream {
	var out []privtest.Stream
	for _, s := range p.Streams() {
		if s.FQDN == fmt.Sprintf("iso-%d.example", i) {
			out = append(out, s)
		}
	}
	return out
}

// nextClient waits for server s to see its next client.
func nextClient(t *testing.T, ctx context.Context, s *privtest.Server) string {
	t.Helper()
	select {
	case id := <-s.Seen():
		return id
	case <-ctx.Done():
		t.Fatalf("%s: no connection", s.Nickname)
		return ""
	}
}

// TestPrivacyTorIsolation checks per-server stream isolation through the
// recording SOCKS server: N servers are reached under N distinct SOCKS
// user names; a reconnect with a new identity (PerAttempt) comes under a
// new user name, one with the same identity (PerServer) under the same;
// with DisableTorIsolation no credentials are sent at all.
func TestPrivacyTorIsolation(t *testing.T) {
	const n = 4
	for _, tc := range []struct {
		name     string
		opts     tubfarm.Options
		isolated bool
		newID    bool // a reconnect presents a new identity
	}{
		{"per attempt", tubfarm.Options{Identity: actors.PerAttempt}, true, true},
		{"per server", tubfarm.Options{Identity: actors.PerServer}, true, false},
		{"isolation off", tubfarm.Options{DisableTorIsolation: true}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := privtest.StartProxy(t)
			b, servers := isoGrid(t, proxy, n, tc.opts)
			ctx := testCtx(t)
			users := map[string]int{}
			for i, s := range servers {
				first := nextClient(t, ctx, s)
				streams := streamsTo(proxy, i)
				if len(streams) != 1 {
					t.Fatalf("server %d: %d streams, want 1", i, len(streams))
				}
				st := streams[0]
				if !tc.isolated {
					if st.Method != 0 || st.User != "" {
						t.Errorf("server %d: method %d user %q with isolation off, want no authentication", i, st.Method, st.User)
					}
					continue
				}
				if st.Method != 2 || st.User == "" {
					t.Fatalf("server %d: method %d user %q, want username/password", i, st.Method, st.User)
				}
				if j, dup := users[st.User]; dup {
					t.Errorf("servers %d and %d share the SOCKS user name %q", j, i, st.User)
				}
				users[st.User] = i
				if st.User == first || slices.Contains(servers[i].Clients(), st.User) {
					t.Errorf("server %d: the SOCKS user name is the TubID", i)
				}
			}

			// Server 0 drops the connection; the broker reconnects.
			s0 := servers[0]
			before := mustServer(t, b, s0.ID).Status().TubID
			s0.Drop()
			after := nextClient(t, ctx, s0)
			if (after != before) != tc.newID {
				t.Errorf("reconnect presented TubID %s after %s; want a new one: %v", after, before, tc.newID)
			}
			streams := streamsTo(proxy, 0)
			if len(streams) != 2 {
				t.Fatalf("server 0: %d streams after the reconnect, want 2", len(streams))
			}
			u1, u2 := streams[0].User, streams[1].User
			switch {
			case !tc.isolated:
				if u2 != "" {
					t.Errorf("reconnect authenticated as %q with isolation off", u2)
				}
			case tc.newID && u2 == u1:
				t.Errorf("new identity, same SOCKS user name %q", u1)
			case tc.newID:
				if j, dup := users[u2]; dup {
					t.Errorf("server 0's new user name is server %d's", j)
				}
			case u2 != u1:
				t.Errorf("same identity, SOCKS user name changed from %q to %q", u1, u2)
			}
		})
	}
}

// TestPrivacyNoTLSResumption checks that two identities connecting to the
// same server never resume a TLS session, even against a server that
// issues session tickets, and even when TestHooks.TLSConfig tries to turn a
// shared client session cache on (a resumed TLS 1.3 session would show the
// server the first identity's certificate again).
func TestPrivacyNoTLSResumption(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cache      bool   // the tweak sets a shared session cache and enables tickets
		maxVersion uint16 // the tweak's MaxVersion, if not zero
	}{
		{name: "defaults"},
		{name: "tweak enables a session cache", cache: true},
		{name: "TLS 1.2 tweak enables a session cache", cache: true, maxVersion: tls.VersionTLS12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := privtest.StartServer(t, privtest.ServerConfig{Nickname: "tickets", Tickets: true})
			dir := t.TempDir()
			if err := privtest.WriteNodeDir(dir, privtest.NodeDir{
				TahoeCfg: "[node]\nnickname = resume\ntub.port = disabled\ntub.location = disabled\n",
				Static:   []privtest.Entry{{Server: s, FURL: s.FURL("tcp:127.0.0.1:" + strconv.Itoa(s.Port))}},
			}); err != nil {
				t.Fatal(err)
			}
			var tweak func(*tls.Config)
			if tc.cache {
				cache := tls.NewLRUClientSessionCache(8) // shared by every attempt
				tweak = func(c *tls.Config) {
					c.ClientSessionCache = cache
					c.SessionTicketsDisabled = false
					if tc.maxVersion != 0 {
						c.MaxVersion = tc.maxVersion
					}
				}
			}
			b := openBroker(t, dir, tubfarm.Options{Backoff: fastBackoff, TestHooks: &tubfarm.TestHooks{TLSConfig: tweak}})
			ctx := testCtx(t)
			if err := b.WhenConnected(ctx, 1); err != nil {
				t.Fatal(err)
			}
			first := nextClient(t, ctx, s)
			s.Drop()
			var hs []privtest.Handshake
			for len(hs) < 2 {
				select {
				case h := <-s.HandshakeDone():
					hs = append(hs, h)
				case <-ctx.Done():
					t.Fatalf("%d handshakes, want 2", len(hs))
				}
			}
			for i, h := range hs {
				if h.DidResume {
					t.Errorf("handshake %d resumed a session (the server sees TubID %s)", i, h.PeerTubID)
				}
			}
			if t.Failed() {
				return // a resumed session fails Foolscap's TubID check: no second client
			}
			second := nextClient(t, ctx, s)
			if first == second {
				t.Fatalf("the reconnect reused identity %s", first)
			}
			if hs[0].PeerTubID != first || hs[1].PeerTubID != second {
				t.Errorf("handshakes show TubIDs %s, %s; clients were %s, %s", hs[0].PeerTubID, hs[1].PeerTubID, first, second)
			}
		})
	}
}
