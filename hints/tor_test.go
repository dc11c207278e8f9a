package hints

import (
	"context"
	"encoding/hex"
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"

	socks5 "github.com/armon/go-socks5"
	"golang.org/x/net/proxy"

	"github.com/tubfarm/tubfarm/internal/microsocks"
	tubtls "github.com/tubfarm/tubfarm/tls"

	"github.com/tubfarm/tubfarm/internal/nettest"
)

func TestParseEndpoint(t *testing.T) {
	for _, tt := range []struct {
		in, want string
	}{
		{"tcp:127.0.0.1:9050", "127.0.0.1:9050"},
		{"TCP:127.0.0.1:9050", "127.0.0.1:9050"},
		{" tcp:localhost:9150 ", "localhost:9150"},
		{"tcp:host=127.0.0.1:port=7656", "127.0.0.1:7656"},
		{"tcp:port=7656:host=10.0.0.2", "10.0.0.2:7656"},
		{"tcp:127.0.0.1:port=7656", "127.0.0.1:7656"},
		{`tcp:\:\:1:9050`, "[::1]:9050"},
		{"tcp:[::1]:9050", "[::1]:9050"},
		{"127.0.0.1:9050", "127.0.0.1:9050"},
		{"localhost:09050", "localhost:9050"},
		{"[::1]:7656", "[::1]:7656"},
	} {
		got, err := ParseEndpoint("[tor] socks.port", tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseEndpoint(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, tt := range []struct {
		in, want    string
		unsupported bool
	}{
		{"unix:/var/run/tor/socks", `hints: [tor] socks.port "unix:/var/run/tor/socks": unsupported endpoint type "unix" (want tcp:HOST:PORT)`, true},
		{"tls:example.com:443", `hints: [tor] socks.port "tls:example.com:443": unsupported endpoint type "tls" (want tcp:HOST:PORT)`, true},
		{"tor:abc.onion:80", `hints: [tor] socks.port "tor:abc.onion:80": unsupported endpoint type "tor" (want tcp:HOST:PORT)`, true},
		{"", `hints: [tor] socks.port "": empty endpoint (want tcp:HOST:PORT)`, false},
		{"9050", `hints: [tor] socks.port "9050": missing port (want tcp:HOST:PORT)`, false},
		{"tcp:127.0.0.1", `hints: [tor] socks.port "tcp:127.0.0.1": missing port (want tcp:HOST:PORT)`, false},
		{"tcp:127.0.0.1:0", `hints: [tor] socks.port "tcp:127.0.0.1:0": bad port "0" (want 1 to 65535)`, false},
		{"tcp:127.0.0.1:65536", `hints: [tor] socks.port "tcp:127.0.0.1:65536": bad port "65536" (want 1 to 65535)`, false},
		{"tcp:127.0.0.1:+1", `hints: [tor] socks.port "tcp:127.0.0.1:+1": bad port "+1" (want 1 to 65535)`, false},
		{"tcp::9050", `hints: [tor] socks.port "tcp::9050": missing host (want tcp:HOST:PORT)`, false},
		{"tcp:a:1:2", `hints: [tor] socks.port "tcp:a:1:2": too many fields (want tcp:HOST:PORT)`, false},
		{"tcp:a:1:timeout=3", `hints: [tor] socks.port "tcp:a:1:timeout=3": tcp endpoint option "timeout" is not supported`, false},
		{"tcp:a:1:x=3", `hints: [tor] socks.port "tcp:a:1:x=3": unknown tcp endpoint option "x"`, false},
	} {
		_, err := ParseEndpoint("[tor] socks.port", tt.in)
		var ee *EndpointError
		if err == nil || err.Error() != tt.want || !errors.As(err, &ee) || ee.Value != tt.in {
			t.Errorf("ParseEndpoint(%q) error = %v, want %q", tt.in, err, tt.want)
		}
		if errors.Is(err, ErrUnsupportedEndpoint) != tt.unsupported {
			t.Errorf("ParseEndpoint(%q): errors.Is(ErrUnsupportedEndpoint) = %v", tt.in, !tt.unsupported)
		}
	}
}

func TestNewTorErrors(t *testing.T) {
	_, err := NewTor(TorConfig{SOCKSPort: "unix:/run/tor/socks"})
	if err == nil || err.Error() != `hints: [tor] socks.port "unix:/run/tor/socks": unsupported endpoint type "unix" (want tcp:HOST:PORT)` {
		t.Errorf("NewTor(unix:) error = %v", err)
	}
	tor, err := NewTor(TorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if got := tor.Addrs(); strings.Join(got, ",") != "127.0.0.1:9050,127.0.0.1:9150" || !tor.Isolated() {
		t.Errorf("default Tor: addrs %v, isolated %v", got, tor.Isolated())
	}
}

// tubIDs returns n TubIDs of fresh identities.
func tubIDs(t *testing.T, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		id, err := tubtls.NewEphemeral()
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id.TubID
	}
	return ids
}

func TestTorIsolation(t *testing.T) {
	echo := nettest.Echo(t)
	p := startTorProxy(t, true, echo)
	tor, err := NewTor(TorConfig{SOCKSPort: "tcp:" + p.addr, Forward: DirectTCPWithResolver(nil, noResolver{t})})
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	keys := tubIDs(t, n)
	for _, k := range keys {
		for range 2 { // two connections per identity
			c, err := tor.ForIdentity(k)(testCtx(t), "tcp", "exampleonionaddressxyz.onion:3457")
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, c)
			c.Close()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.users) != 2*n {
		t.Fatalf("proxy saw %d authenticated requests, want %d (methods %v)", len(p.users), 2*n, p.methods)
	}
	seen := map[string]string{}
	for i, k := range keys {
		u1, u2 := p.users[2*i], p.users[2*i+1]
		if u1 != u2 {
			t.Errorf("identity %d: user names %q and %q differ for the same key", i, u1, u2)
		}
		if prev, dup := seen[u1]; dup {
			t.Errorf("identities %s and %s share user name %q", prev, k, u1)
		}
		seen[u1] = k
		if _, err := hex.DecodeString(u1); err != nil || len(u1) != 32 {
			t.Errorf("user name %q is not 32 hex digits", u1)
		}
		for _, part := range []string{strings.ToLower(k), k[:8], k[len(k)-8:]} {
			if strings.Contains(strings.ToLower(u1), strings.ToLower(part)) {
				t.Errorf("user name %q contains part %q of the TubID", u1, part)
			}
		}
		if pw := p.passwords[u1]; pw != TorIsolationPassword {
			t.Errorf("password for %q = %q, want %q", u1, pw, TorIsolationPassword)
		}
	}
	// Rotation: a new identity means a new user name, and a second Tor
	// (say, after a restart) never reuses the first one's names.
	tor2, err := NewTor(TorConfig{SOCKSPort: p.addr})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := tor.isolationAuth(keys[0]).User, tor2.isolationAuth(keys[0]).User; a == b {
		t.Errorf("two Tor transports derive the same user name %q for one key", a)
	}
	// The names reached the proxy unresolved.
	for _, name := range p.names {
		if name != "exampleonionaddressxyz.onion" {
			t.Errorf("proxy resolved %q", name)
		}
	}
	if len(p.names) != 2*n {
		t.Errorf("proxy resolved %d names, want %d", len(p.names), 2*n)
	}
}

func TestTorIsolationOff(t *testing.T) {
	echo := nettest.Echo(t)
	open := startTorProxy(t, false, echo)
	tor, err := NewTor(TorConfig{SOCKSPort: open.addr, DisableIsolation: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b"} {
		c, err := tor.ForIdentity(k)(testCtx(t), "tcp", "abc.onion:80")
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, c)
		c.Close()
	}
	open.mu.Lock()
	if len(open.methods) != 2 || open.methods[0] != socks5.NoAuth || open.methods[1] != socks5.NoAuth {
		t.Errorf("methods = %v, want two NoAuth", open.methods)
	}
	open.mu.Unlock()

	// A proxy that insists on username/password proves none is offered.
	strict := startTorProxy(t, true, echo)
	tor, err = NewTor(TorConfig{SOCKSPort: strict.addr, DisableIsolation: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tor.ForIdentity("a")(testCtx(t), "tcp", "abc.onion:80")
	if err == nil || !strings.Contains(err.Error(), "no acceptable authentication methods") {
		t.Errorf("isolation off against an auth-only proxy: %v", err)
	}
	strict.mu.Lock()
	if len(strict.passwords) != 0 {
		t.Errorf("credentials were sent: %v", strict.passwords)
	}
	strict.mu.Unlock()
}

func TestTorDefaultFallback(t *testing.T) {
	echo := nettest.Echo(t)
	second := startTorProxy(t, true, echo)

	t.Run("first refuses", func(t *testing.T) {
		tor, err := NewTor(TorConfig{defaults: []string{nettest.RefusedAddr(t), second.addr}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := tor.ForIdentity("k")(testCtx(t), "tcp", "abc.onion:80")
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, c)
		c.Close()
		if n := second.accepts.Load(); n != 1 {
			t.Errorf("second port accepted %d connections, want 1", n)
		}
	})

	t.Run("first answers badly", func(t *testing.T) {
		// The first port accepts and hangs up: that is not a refusal, so
		// the second port must not be tried.
		l := listen(t)
		done := make(chan struct{})
		go func() {
			defer close(done)
			c, err := l.Accept()
			if err == nil {
				c.Close()
			}
		}()
		before := second.accepts.Load()
		tor, err := NewTor(TorConfig{defaults: []string{l.Addr().String(), second.addr}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tor.ForIdentity("k")(testCtx(t), "tcp", "abc.onion:80"); err == nil {
			t.Fatal("dial through a port that hangs up succeeded")
		}
		<-done
		if n := second.accepts.Load() - before; n != 0 {
			t.Errorf("second port was tried %d times after a non-refusal", n)
		}
	})

	t.Run("both refuse", func(t *testing.T) {
		a, b := nettest.RefusedAddr(t), nettest.RefusedAddr(t)
		tor, err := NewTor(TorConfig{defaults: []string{a, b}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tor.ForIdentity("k")(testCtx(t), "tcp", "abc.onion:80")
		if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "no Tor SOCKS port accepted the connection") ||
			!strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), b) {
			t.Errorf("both refused: %v", err)
		}
	})

	t.Run("configured port does not fall back", func(t *testing.T) {
		before := second.accepts.Load()
		a := nettest.RefusedAddr(t)
		tor, err := NewTor(TorConfig{SOCKSPort: "tcp:" + a, defaults: []string{a, second.addr}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tor.ForIdentity("k")(testCtx(t), "tcp", "abc.onion:80")
		if !errors.Is(err, syscall.ECONNREFUSED) || second.accepts.Load() != before {
			t.Errorf("configured port: err %v, fallback used %v", err, second.accepts.Load() != before)
		}
	})
}

func TestTorCancel(t *testing.T) {
	addr, accepted := blackhole(t)
	tor, err := NewTor(TorConfig{SOCKSPort: addr})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := tor.ForIdentity("k")(ctx, "tcp", "abc.onion:80")
		errc <- err
	}()
	c := <-accepted
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled dial: %v", err)
	}
	waitClosedByPeer(t, c)
}

func TestTorMicrosocks(t *testing.T) {
	echo := nettest.Echo(t)
	_, echoPort, _ := net.SplitHostPort(echo)

	t.Run("no auth", func(t *testing.T) {
		addr := microsocks.Start(t)
		tor, err := NewTor(TorConfig{SOCKSPort: "tcp:" + addr, DisableIsolation: true, Forward: DirectTCPWithResolver(nil, noResolver{t})})
		if err != nil {
			t.Fatal(err)
		}
		// microsocks, not us, resolves "localhost".
		c, err := tor.ForIdentity("k")(testCtx(t), "tcp", "localhost:"+echoPort)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, c)
		c.Close()
	})

	t.Run("isolation credentials", func(t *testing.T) {
		tor, err := NewTor(TorConfig{})
		if err != nil {
			t.Fatal(err)
		}
		key := tubIDs(t, 1)[0]
		auth := tor.isolationAuth(key)
		addr := microsocks.Start(t, "-u", auth.User, "-P", auth.Password)
		tor.addrs = []string{addr}
		c, err := tor.ForIdentity(key)(testCtx(t), "tcp", "127.0.0.1:"+echoPort)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, c)
		c.Close()
		// Another identity's credentials are different, so this proxy,
		// which checks them, refuses it.
		if _, err := tor.ForIdentity(key+"x")(testCtx(t), "tcp", "127.0.0.1:"+echoPort); err == nil {
			t.Error("a different identity was accepted with the first identity's credentials")
		}
	})

	t.Run("SOCKS5 with auth", func(t *testing.T) {
		addr := microsocks.Start(t, "-u", "alice", "-P", "s3cret")
		dial, err := SOCKS5(addr, &proxy.Auth{User: "alice", Password: "s3cret"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := dial(testCtx(t), "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(mustAtoi(t, echoPort))))
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, c)
		c.Close()
	})
}

func mustAtoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
