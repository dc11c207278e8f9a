package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/internal/grid"
	"github.com/tubfarm/tubfarm/internal/pyfoolscap"
)

// pyGrid runs N real Foolscap 21.7 Tubs, each with its own port and its
// own Tahoe-like storage object, and prints "CONNECT <n> <client tubid>
// <client host>" whenever a client connection is attached to Tub n.
// remote_drop() disconnects every client of that Tub.
const pyGrid = `
import sys
from twisted.internet import reactor
from foolscap.api import Tub, Referenceable

class RecordingTub(Tub):
    def brokerAttached(self, tubref, broker, isClient):
        print("CONNECT %s %s %s" % (self.n, tubref.getTubID(), broker.transport.getPeer().host), flush=True)
        return Tub.brokerAttached(self, tubref, broker, isClient)

class Storage(Referenceable):
    def __init__(self, tub):
        self.tub = tub
    def remote_get_version(self):
        return {b"application-version": b"tahoe-lafs/1.19.0",
                b"http://allmydata.org/tahoe/protocols/storage/v1": {b"available-space": 123456789}}
    def remote_drop(self):
        for b in list(self.tub.brokers.values()):
            reactor.callLater(0, b.transport.loseConnection)

n = int(sys.argv[1])
for i in range(n):
    tub = RecordingTub()
    tub.n = i
    tub.startService()
    l = tub.listenOn("tcp:0:interface=127.0.0.1")
    tub.setLocation("tcp:127.0.0.1:%d" % l.getPortnum())
    print("FURL %d %s" % (i, tub.registerReference(Storage(tub))), flush=True)
print("READY", flush=True)
reactor.run()
`

// startPyGrid runs pyGrid with n Tubs and returns it with their FURLs, in
// Tub order.
func startPyGrid(t *testing.T, n int) (*pyfoolscap.Proc, []string) {
	t.Helper()
	py := pyfoolscap.Start(t, pyGrid, strconv.Itoa(n))
	furls := make([]string, n)
	for {
		line := py.Line(t, 30*time.Second)
		if line == "READY" {
			return py, furls
		}
		var i int
		var furl string
		if _, err := fmt.Sscanf(line, "FURL %d %s", &i, &furl); err != nil || i < 0 || i >= n {
			t.Fatalf("unexpected line from python: %q", line)
		}
		furls[i] = furl
	}
}

// nextConnect reads pyGrid's next "CONNECT <n> <client tubid> <host>" line.
func nextConnect(t *testing.T, py *pyfoolscap.Proc) (tub int, tubid, host string) {
	t.Helper()
	line := py.Line(t, 30*time.Second)
	if _, err := fmt.Sscanf(line, "CONNECT %d %s %s", &tub, &tubid, &host); err != nil {
		t.Fatalf("unexpected line from python: %q", line)
	}
	return tub, tubid, host
}

// TestUnlinkableAgainstFoolscap has real Foolscap servers record the TubID
// of each client that connects: N servers see N distinct client TubIDs,
// none of them the node's own, and with the default policy (a fresh
// identity per attempt) a reconnect shows yet another TubID.
func TestUnlinkableAgainstFoolscap(t *testing.T) {
	const n = 4
	py, furls := startPyGrid(t, n)
	dir := t.TempDir()
	var sb strings.Builder
	sb.WriteString("storage:\n")
	for i, f := range furls {
		fmt.Fprintf(&sb, "  py-%d:\n    ann:\n      nickname: py-%d\n      anonymous-storage-FURL: %s\n", i, i, f)
	}
	if err := grid.WriteNodeDir(dir, grid.NodeDir{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config.ServersPath(dir), []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	b := openBroker(t, dir, tubfarm.Options{Backoff: fastBackoff})
	ctx := testCtx(t)
	if err := b.WhenConnected(ctx, n); err != nil {
		t.Fatal(err)
	}

	seen := map[string]int{} // client TubID -> server
	for range n {
		i, tubid, _ := nextConnect(t, py)
		if j, dup := seen[tubid]; dup {
			t.Errorf("servers %d and %d saw the same client TubID %s", i, j, tubid)
		}
		seen[tubid] = i
		if tubid == b.Identity().TubID {
			t.Errorf("server %d saw the node's persistent TubID", i)
		}
		if st := mustServer(t, b, fmt.Sprintf("py-%d", i)).Status(); st.TubID != tubid || st.Version != "tahoe-lafs/1.19.0" {
			t.Errorf("server %d saw %s; broker status says TubID %s, version %q", i, tubid, st.TubID, st.Version)
		}
	}

	// Server 0 drops us; the reconnect comes with a new identity.
	srv := mustServer(t, b, "py-0")
	first := srv.Status().TubID
	if _, err := srv.Call(ctx, "drop"); err != nil {
		t.Fatal(err)
	}
	i, tubid, _ := nextConnect(t, py)
	if i != 0 {
		t.Fatalf("after drop, Tub %d saw a connection, want Tub 0", i)
	}
	if tubid == first {
		t.Errorf("reconnect reused TubID %s", first)
	}
	if _, dup := seen[tubid]; dup {
		t.Errorf("reconnect used TubID %s, already seen by another server", tubid)
	}
}
