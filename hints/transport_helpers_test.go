package hints

import (
	"context"
	"io"
	"log"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	socks5 "github.com/armon/go-socks5"
)

// torProxy is an in-process armon/go-socks5 server standing in for a Tor
// SocksPort. It records the authentication method, credentials, names to
// resolve and destinations of every request, and sends every connection
// to one local target port.
type torProxy struct {
	addr    string
	accepts atomic.Int64

	mu        sync.Mutex
	methods   []uint8
	users     []string
	passwords map[string]string
	names     []string
	dests     []string
}

type torCreds struct{ p *torProxy }

// Valid accepts any credentials, as Tor does, and records them.
func (c torCreds) Valid(user, password string) bool {
	c.p.mu.Lock()
	c.p.passwords[user] = password
	c.p.mu.Unlock()
	return true
}

type torRules struct{ p *torProxy }

func (r torRules) Allow(ctx context.Context, req *socks5.Request) (context.Context, bool) {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	r.p.methods = append(r.p.methods, req.AuthContext.Method)
	if req.AuthContext.Method == socks5.UserPassAuth {
		r.p.users = append(r.p.users, req.AuthContext.Payload["Username"])
	}
	r.p.dests = append(r.p.dests, req.DestAddr.FQDN+"|"+req.DestAddr.IP.String())
	return ctx, true
}

type torResolver struct{ p *torProxy }

func (r torResolver) Resolve(ctx context.Context, name string) (context.Context, net.IP, error) {
	r.p.mu.Lock()
	r.p.names = append(r.p.names, name)
	r.p.mu.Unlock()
	return ctx, net.IPv4(127, 0, 0, 1), nil
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// startTorProxy starts a torProxy forwarding to target ("127.0.0.1:port").
// With auth it accepts only username/password authentication (any
// credentials), else only "no authentication".
func startTorProxy(t *testing.T, auth bool, target string) *torProxy {
	t.Helper()
	p := &torProxy{passwords: map[string]string{}}
	ap, err := netip.ParseAddrPort(target)
	if err != nil {
		t.Fatal(err)
	}
	conf := &socks5.Config{
		Resolver: torResolver{p},
		Rules:    torRules{p},
		Logger:   log.New(io.Discard, "", 0),
		Rewriter: portRewriter(ap.Port()),
	}
	if auth {
		conf.Credentials = torCreds{p}
	}
	srv, err := socks5.New(conf)
	if err != nil {
		t.Fatal(err)
	}
	l := listen(t)
	p.addr = l.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(countingListener{l, &p.accepts})
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return p
}

// noResolver fails the test if any lookup is attempted.
type noResolver struct{ t *testing.T }

func (r noResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	r.t.Errorf("local resolver called: LookupNetIP(%q, %q)", network, host)
	return nil, &net.DNSError{Err: "lookup forbidden in this test", Name: host}
}

// mapResolver resolves names from a table and records the calls.
type mapResolver struct {
	mu    sync.Mutex
	calls []string
	m     map[string][]netip.Addr
}

func (r *mapResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	r.calls = append(r.calls, network+" "+host)
	r.mu.Unlock()
	if a, ok := r.m[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}
