package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/internal/grid"
	"github.com/tubfarm/tubfarm/internal/privtest"
)

// TestPrivacyHTTPSIsolation is the unlinkability test of HTTPS storage
// through the broker: in anonymous mode ([connections] tcp = tor), N
// servers announce NURLs under host names; every request reaches them
// through the SOCKS proxy (a tripwire catches any direct dial), each
// server's streams carry SOCKS credentials of their own, and no two
// servers share a user name. Over HTTPS no client certificate is sent, so
// these credentials (and the per-server transport) are what keeps the
// servers apart.
func TestPrivacyHTTPSIsolation(t *testing.T) {
	const n = 4
	proxy := privtest.StartProxy(t)
	g, err := grid.Start(context.Background(), n, "https", grid.Options{HTTPS: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{TahoeCfg: privtest.AnonymousCfg(proxy.Addr, ""), Static: g.Servers}); err != nil {
		t.Fatal(err)
	}
	// Name each server by a host name the proxy alone can resolve.
	yaml, err := os.ReadFile(config.ServersPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	text := string(yaml)
	for i, s := range g.Servers {
		text = strings.ReplaceAll(text, "@127.0.0.1:"+port(s.Addr()), fmt.Sprintf("@https-%d.example:%s", i, port(s.Addr())))
		text = strings.ReplaceAll(text, "@tcp:127.0.0.1:"+port(s.Addr()), fmt.Sprintf("@tcp:https-%d.example:%s", i, port(s.Addr())))
	}
	if err := os.WriteFile(config.ServersPath(dir), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	wire := new(privtest.Tripwire)
	b := openBroker(t, dir, tubfarm.Options{Backoff: fastBackoff, TestHooks: &tubfarm.TestHooks{Direct: wire.Dial}})
	ctx := testCtx(t)
	if err := b.WhenConnected(ctx, n); err != nil {
		t.Fatalf("%v\n%s", err, summaries(b))
	}
	for _, srv := range b.Servers() {
		if p := srv.Status().Protocol; p != "https" {
			t.Fatalf("%s: protocol %q", srv.Nickname(), p)
		}
		roundTrip(t, ctx, srv)
	}
	if d := wire.Addrs(); len(d) != 0 {
		t.Fatalf("direct dials: %v", d)
	}
	owner := map[string]string{} // SOCKS user name -> host
	perHost := map[string]int{}
	for _, st := range proxy.Streams() {
		if st.User == "" {
			t.Errorf("a stream to %s had no SOCKS credentials", st.Host())
		}
		if o, ok := owner[st.User]; ok && o != st.Host() {
			t.Errorf("user name %s used for %s and %s", st.User, o, st.Host())
		}
		owner[st.User] = st.Host()
		perHost[st.Host()]++
	}
	if len(perHost) != n {
		t.Fatalf("streams to %d hosts, want %d: %v", len(perHost), n, perHost)
	}
	for i := range n {
		if perHost[fmt.Sprintf("https-%d.example", i)] == 0 {
			t.Errorf("no stream to https-%d.example", i)
		}
	}
}

func port(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }
