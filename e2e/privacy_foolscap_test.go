package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/internal/privtest"
)

// furlHints matches the hints of a FURL.
var furlHints = regexp.MustCompile(`@tcp:127\.0\.0\.1:(\d+)/`)

// TestPrivacyUnlinkableThroughTor checks unlinkability against real
// Foolscap 21.7 servers reached through the SOCKS path of an anonymous
// node: the servers' FURLs name them by host names that only the proxy
// resolves; each server sees a distinct client TubID, none the node's
// own, every connection comes from the proxy's address, and each server's
// streams carry SOCKS credentials of their own.
func TestPrivacyUnlinkableThroughTor(t *testing.T) {
	const n = 3
	py, furls := startPyGrid(t, n)
	proxy := privtest.StartProxy(t)
	var sb strings.Builder
	sb.WriteString("storage:\n")
	for i, furl := range furls {
		// tcp:127.0.0.1 would be refused as non-Tor-able; name the
		// server instead, as a Tahoe server behind Tor would.
		furl = furlHints.ReplaceAllString(furl, fmt.Sprintf("@tcp:py-%d.example:$1/", i))
		fmt.Fprintf(&sb, "  py-%d:\n    ann:\n      nickname: py-%d\n      anonymous-storage-FURL: %s\n", i, i, furl)
	}
	dir := t.TempDir()
	if err := privtest.WriteNodeDir(dir, privtest.NodeDir{TahoeCfg: privtest.AnonymousCfg(proxy.Addr, "")}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config.ServersPath(dir), []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	res := new(privtest.Resolver)
	b := openBroker(t, dir, tubfarm.Options{Backoff: fastBackoff, TestHooks: &tubfarm.TestHooks{Resolver: res}})
	if err := b.WhenConnected(testCtx(t), n); err != nil {
		t.Fatalf("%v\n%s", err, summaries(b))
	}
	seen := map[string]int{}
	for range n {
		i, tubid, host := nextConnect(t, py)
		if host != privtest.SOCKSAddr.String() {
			t.Errorf("server %d: connection from %s, want the proxy's %s", i, host, privtest.SOCKSAddr)
		}
		if j, dup := seen[tubid]; dup {
			t.Errorf("servers %d and %d saw the same client TubID %s", i, j, tubid)
		}
		seen[tubid] = i
		if tubid == b.Identity().TubID {
			t.Errorf("server %d saw the node's persistent TubID", i)
		}
		if st := mustServer(t, b, fmt.Sprintf("py-%d", i)).Status(); st.TubID != tubid || st.Handler != "tor" {
			t.Errorf("server %d saw %s; status says TubID %s via %q", i, tubid, st.TubID, st.Handler)
		}
	}
	users := map[string]string{}
	for _, s := range proxy.Streams() {
		if s.User == "" || s.FQDN == "" {
			t.Errorf("stream to %s: user %q: want a name and credentials", s.Host(), s.User)
		}
		if other, ok := users[s.User]; ok && other != s.FQDN {
			t.Errorf("%s and %s share SOCKS user %q", other, s.FQDN, s.User)
		}
		users[s.User] = s.FQDN
	}
	if len(users) != n {
		t.Errorf("%d SOCKS user names for %d servers", len(users), n)
	}
	if names := res.Names(); len(names) > 0 {
		t.Errorf("names resolved locally: %v", names)
	}
}
