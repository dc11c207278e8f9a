package httpstorage_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm/foolscap"
	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/httpstorage"
	"github.com/tubfarm/tubfarm/internal/memstore"
	"github.com/tubfarm/tubfarm/internal/privtest"
	"github.com/tubfarm/tubfarm/storage"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// colluder is an HTTPS storage server that records, for every request,
// where its connection came from, whether its TLS session was resumed,
// and which headers a client could be recognised by.
type colluder struct {
	nurl hints.NURL
	mu   sync.Mutex
	seen []seen
}

type seen struct {
	from    netip.Addr
	resumed bool
	ua      []string
	cookie  []string
	sni     string
}

// startColluders starts n servers that share one session ticket key, as
// colluding operators would: a client that resumed a session made with
// one of them on another would be recognised.
func startColluders(t *testing.T, n int) []*colluder {
	t.Helper()
	var key [32]byte
	key[0] = 42
	out := make([]*colluder, n)
	for i := range out {
		id, err := tubtls.NewEphemeral()
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c := &colluder{}
		st := memstore.New(memstore.Config{})
		inner := st.HTTP(swiss)
		m := memstore.Serve(ln, memstore.ServeConfig{
			Foolscap: foolscap.ListenConfig{},
			Cert:     id.Certificate,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ap, _ := netip.ParseAddrPort(r.RemoteAddr)
				c.mu.Lock()
				c.seen = append(c.seen, seen{from: ap.Addr(), resumed: r.TLS.DidResume, ua: r.Header.Values("User-Agent"), cookie: r.Header.Values("Cookie"), sni: r.TLS.ServerName})
				c.mu.Unlock()
				w.Header().Add("Set-Cookie", fmt.Sprintf("tracker=%d", i))
				inner.ServeHTTP(w, r)
			}),
			TLS: func(tc *tls.Config) {
				tc.SessionTicketsDisabled = false
				tc.SetSessionTicketKeys([][32]byte{key})
			},
		})
		t.Cleanup(func() { m.Close() })
		if c.nurl, err = hints.FormatNURL(id.Certificate.Leaf, "tcp:"+ln.Addr().String(), swiss); err != nil {
			t.Fatal(err)
		}
		out[i] = c
	}
	return out
}

// TestUnlinkable: N servers, each reached through the Tor transport with
// its own isolation key, see N distinct SOCKS user names, only the proxy's
// address, no resumed TLS session (even with shared ticket keys and a
// fresh connection per request), no SNI, no User-Agent and no cookie.
func TestUnlinkable(t *testing.T) {
	const n = 6
	for _, useMicrosocks := range []bool{false, true} {
		name := "recording-proxy"
		if useMicrosocks {
			name = "microsocks"
		}
		t.Run(name, func(t *testing.T) {
			var proxy *privtest.Proxy
			var socks string
			if useMicrosocks {
				socks = privtest.StartMicrosocks(t)
			} else {
				proxy = privtest.StartProxy(t)
				socks = proxy.Addr
			}
			tor, err := hints.NewTor(hints.TorConfig{SOCKSPort: "tcp:" + socks})
			if err != nil {
				t.Fatal(err)
			}
			servers := startColluders(t, n)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for i, s := range servers {
				c := httpstorage.New(s.nurl, httpstorage.Config{Dial: tor.ForIdentity(fmt.Sprintf("identity-%d", i))})
				for range 3 {
					if _, err := c.GetVersion(ctx); err != nil {
						t.Fatal(err)
					}
					if _, err := c.GetBuckets(ctx, storage.Index{}); err != nil {
						t.Fatal(err)
					}
					c.Close() // the next request needs a new connection: would it resume?
				}
			}
			for i, s := range servers {
				s.mu.Lock()
				for _, r := range s.seen {
					if r.from != privtest.SOCKSAddr {
						t.Errorf("server %d: a request came from %v, not through the proxy", i, r.from)
					}
					if r.resumed {
						t.Errorf("server %d: a TLS session was resumed", i)
					}
					if len(r.ua) != 0 || len(r.cookie) != 0 || r.sni != "" {
						t.Errorf("server %d: User-Agent %q, Cookie %q, SNI %q", i, r.ua, r.cookie, r.sni)
					}
				}
				if len(s.seen) != 6 {
					t.Errorf("server %d saw %d requests, want 6", i, len(s.seen))
				}
				s.mu.Unlock()
			}
			if proxy == nil {
				return
			}
			users := map[string]map[int]bool{} // user name -> destination ports
			for _, st := range proxy.Streams() {
				if st.User == "" {
					t.Errorf("a stream to port %d had no SOCKS user name", st.Port)
				}
				if users[st.User] == nil {
					users[st.User] = map[int]bool{}
				}
				users[st.User][st.Port] = true
			}
			if len(users) != n {
				t.Errorf("%d distinct SOCKS user names for %d servers", len(users), n)
			}
			for u, ports := range users {
				if len(ports) != 1 {
					t.Errorf("user name %s was used for %d servers", u, len(ports))
				}
			}
		})
	}
}
