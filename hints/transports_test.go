package hints

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/tubfarm/tubfarm/internal/samtest"

	"github.com/tubfarm/tubfarm/internal/nettest"
)

func TestDirectTCPWithResolver(t *testing.T) {
	echo := nettest.Echo(t)
	_, port, _ := net.SplitHostPort(echo)
	refused := nettest.RefusedAddr(t)
	_, refusedPort, _ := net.SplitHostPort(refused)
	r := &mapResolver{m: map[string][]netip.Addr{
		"storage.example":  {netip.MustParseAddr("127.0.0.1")},
		"v4mapped.example": {netip.MustParseAddr("::ffff:127.0.0.1")},
	}}
	dial := DirectTCPWithResolver(nil, r)
	for _, addr := range []string{"storage.example:" + port, "v4mapped.example:" + port, "127.0.0.1:" + port} {
		c, err := dial(testCtx(t), "tcp", addr)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		roundTrip(t, c)
		c.Close()
	}
	if strings.Join(r.calls, ",") != "ip storage.example,ip v4mapped.example" {
		t.Errorf("resolver calls %q: IP literals must not be looked up", r.calls)
	}

	_, err := dial(testCtx(t), "tcp", "nosuch.example:1")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("unknown name: %v", err)
	}
	_, err = dial(testCtx(t), "tcp4", "storage.example:"+refusedPort)
	if err == nil || r.calls[len(r.calls)-1] != "ip4 storage.example" {
		t.Errorf("tcp4 dial: %v, calls %q", err, r.calls)
	}
	if _, err := dial(testCtx(t), "udp", "storage.example:1"); err == nil {
		t.Error("udp accepted")
	}
}

// TestProxiedPathsNeverResolve drives every proxied path with names and a
// resolver that fails the test if called: Tor with and without isolation,
// tcp hints sent to Tor, and I2P names, b32 and full destinations.
func TestProxiedPathsNeverResolve(t *testing.T) {
	echo := nettest.Echo(t)
	torProxy := startTorProxy(t, true, echo)
	bridge := samtest.Start(t, samtest.Config{})
	peer := bridge.AddPeer(echo)
	bridge.AddName("storage.i2p", peer)

	fwd := DirectTCPWithResolver(nil, noResolver{t})
	tr, err := NewTransports(TransportConfig{
		Direct: fwd,
		Tor:    &TorConfig{SOCKSPort: "tcp:" + torProxy.addr, Forward: fwd},
		I2P:    &SAMConfig{Addr: bridge.Addr, Forward: fwd},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()

	// tahoe.cfg: reveal-IP-address = false, [connections] tcp = tor.
	p, err := NewPolicy(HandlerTor, false, true, true)
	if err != nil {
		t.Fatal(err)
	}
	id := tubIDs(t, 1)[0]
	ds := tr.ForIdentity(id)
	if len(ds) != 3 {
		t.Errorf("Dialers has %d handlers, want tcp, tor, i2p", len(ds))
	}
	for _, hint := range []string{
		"tcp:storage.example.com:3457",
		"storage.example.org:3457",
		"tor:exampleonionaddressxyz.onion:3457",
		"i2p:" + peer.B32,
		"i2p:" + peer.B32 + ":3457",
		"i2p:storage.i2p",
	} {
		dec := p.Decide(hint)
		if dec.RevealsIP || dec.Handler == HandlerTCP {
			t.Fatalf("%s would be dialed directly", hint)
		}
		c, err := ds.Dial(testCtx(t), dec)
		if err != nil {
			t.Fatalf("%s: %v", dec, err)
		}
		roundTrip(t, c)
		c.Close()
	}
	torProxy.mu.Lock()
	names := strings.Join(torProxy.names, ",")
	torProxy.mu.Unlock()
	if names != "storage.example.com,storage.example.org,exampleonionaddressxyz.onion" {
		t.Errorf("Tor resolved %q", names)
	}
	if n := len(bridge.Sessions()); n != 1 {
		t.Errorf("%d I2P sessions for one identity", n)
	}
	if err := tr.Retire(id); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, bridge.Sessions()[0].Ended, "retired I2P session")
}

func TestNewTransports(t *testing.T) {
	tr, err := NewTransports(TransportConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if ds := tr.ForIdentity("k"); len(ds) != 1 || ds[HandlerTCP] == nil || tr.Tor() != nil || tr.SAM() != nil {
		t.Errorf("no Tor, no I2P: %v", ds)
	}
	if tr.Retire("k") != nil || tr.Close() != nil {
		t.Error("Retire/Close without I2P failed")
	}
	_, err = NewTransports(TransportConfig{Tor: &TorConfig{SOCKSPort: "unix:/x"}})
	var ee *EndpointError
	if !errors.As(err, &ee) || ee.Field != "[tor] socks.port" {
		t.Errorf("bad socks.port: %v", err)
	}
	_, err = NewTransports(TransportConfig{I2P: &SAMConfig{Addr: "tcp:127.0.0.1"}})
	if !errors.As(err, &ee) || ee.Field != "[i2p] sam.port" {
		t.Errorf("bad sam.port: %v", err)
	}
}
