package privtest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"

	socks5 "github.com/armon/go-socks5"

	"github.com/tubfarm/tubfarm/internal/microsocks"
)

// A Stream is one SOCKS5 CONNECT request a Proxy accepted.
type Stream struct {
	// Method is the authentication method the proxy chose: 0 (none) or 2
	// (username/password).
	Method uint8
	// User is the RFC 1929 user name, "" without authentication.
	User string
	// FQDN is the host name as the client sent it (address type
	// DOMAINNAME), unresolved; "" if the client sent an IP address.
	FQDN string
	// IP is the address the client sent (address type IPv4 or IPv6); nil
	// if it sent a name.
	IP net.IP
	// Port is the destination port.
	Port int
}

// Host returns the destination as the client named it: FQDN or IP.
func (s Stream) Host() string {
	if s.FQDN != "" {
		return s.FQDN
	}
	return s.IP.String()
}

// Proxy is an in-process SOCKS5 server (github.com/armon/go-socks5)
// standing in for a Tor SocksPort. Like Tor, it resolves names itself and
// prefers username/password authentication when the client offers it (Tor
// accepts any credentials and uses them only to isolate streams).
//
// It is a loopback Tor: every destination, a host name, an .onion name or
// any IP address, leads to port Port of 127.0.0.1, which it dials from
// SOCKSAddr. Names are "resolved" without any lookup.
type Proxy struct {
	// Addr is the proxy's "127.0.0.1:port".
	Addr string

	srv *socks5.Server
	l   net.Listener
	wg  sync.WaitGroup

	mu      sync.Mutex
	streams []Stream
	clients []netip.Addr
	conns   map[net.Conn]bool
	closed  bool
}

// StartProxy starts a Proxy; it is closed when the test ends.
func StartProxy(t testing.TB) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: l.Addr().String(), l: l, conns: map[net.Conn]bool{}}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: SOCKSAddr.AsSlice()}}
	p.srv, err = socks5.New(&socks5.Config{
		AuthMethods: []socks5.Authenticator{
			socks5.UserPassAuthenticator{Credentials: anyCredentials{}},
			socks5.NoAuthAuthenticator{},
		},
		Resolver: loopbackResolver{},
		Rules:    recordingRules{p},
		Logger:   log.New(io.Discard, "", 0),
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

// Close stops the proxy, closes every client connection (and so every
// stream) and waits for its goroutines.
func (p *Proxy) Close() {
	p.l.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.conns[c] = true
		p.clients = append(p.clients, ap.Addr().Unmap())
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.srv.ServeConn(preferUserPass(c))
			p.mu.Lock()
			delete(p.conns, c)
			p.mu.Unlock()
		}()
	}
}

// Streams returns every accepted CONNECT request, in order.
func (p *Proxy) Streams() []Stream {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.streams)
}

// Clients returns the source address of every connection to the proxy.
func (p *Proxy) Clients() []netip.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.clients)
}

// anyCredentials accepts every user name and password, as Tor does.
type anyCredentials struct{}

func (anyCredentials) Valid(string, string) bool { return true }

// loopbackResolver "resolves" every name to 127.0.0.1 without a lookup.
type loopbackResolver struct{}

func (loopbackResolver) Resolve(ctx context.Context, _ string) (context.Context, net.IP, error) {
	return ctx, net.IPv4(127, 0, 0, 1), nil
}

// recordingRules records each request and allows it.
type recordingRules struct{ p *Proxy }

func (r recordingRules) Allow(ctx context.Context, req *socks5.Request) (context.Context, bool) {
	s := Stream{Method: req.AuthContext.Method, FQDN: req.DestAddr.FQDN, Port: req.DestAddr.Port}
	if s.FQDN == "" {
		s.IP = req.DestAddr.IP
	}
	if s.Method == socks5.UserPassAuth {
		s.User = req.AuthContext.Payload["Username"]
	}
	r.p.mu.Lock()
	r.p.streams = append(r.p.streams, s)
	r.p.mu.Unlock()
	return ctx, true
}

// preferUserPass reorders the client's method list so that
// username/password (2) comes first when offered: go-socks5 picks the
// first method of the client's list it knows, and x/net's client lists
// "no authentication" first, while Tor picks username/password.
func preferUserPass(c net.Conn) net.Conn {
	br := bufio.NewReader(c)
	hdr, err := br.Peek(2)
	if err != nil || hdr[0] != 5 {
		return &readerConn{Conn: c, r: br}
	}
	all, err := br.Peek(2 + int(hdr[1]))
	if err != nil {
		return &readerConn{Conn: c, r: br}
	}
	methods := slices.Clone(all[2:])
	if i := slices.Index(methods, socks5.UserPassAuth); i > 0 {
		methods = append([]byte{socks5.UserPassAuth}, slices.Delete(methods, i, i+1)...)
	}
	br.Discard(len(all))
	prefix := append([]byte{5, byte(len(methods))}, methods...)
	return &readerConn{Conn: c, r: io.MultiReader(bytes.NewReader(prefix), br)}
}

type readerConn struct {
	net.Conn
	r io.Reader
}

func (c *readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite passes go-socks5's half-close on, so that a stream whose
// target hung up ends for the client too.
func (c *readerConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// StartMicrosocks runs Debian's microsocks on a free 127.0.0.1 port,
// binding its outgoing connections to SOCKSAddr, and returns its address
// (see package microsocks).
func StartMicrosocks(t testing.TB) string {
	t.Helper()
	return microsocks.Start(t, "-b", SOCKSAddr.String())
}
