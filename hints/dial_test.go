package hints

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	socks5 "github.com/armon/go-socks5"
	"golang.org/x/net/proxy"
)

// listen returns a 127.0.0.1 listener closed when the test ends.
func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// echoOnce accepts one connection, echoes one line-sized read, and closes.
func echoOnce(t *testing.T, l net.Listener) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		c.Write(buf[:n])
	}()
	return done
}

func roundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo = %q, %v", buf, err)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDirectTCP(t *testing.T) {
	l := listen(t)
	done := echoOnce(t, l)
	_, port, _ := net.SplitHostPort(l.Addr().String())
	p := mustPolicy(t, HandlerTCP, true, nil)
	dec := p.Decide("tcp:127.0.0.1:" + port)
	c, err := Dialers{HandlerTCP: DirectTCP(nil)}.Dial(testCtx(t), dec)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c)
	c.Close()
	<-done
}

func TestDirectTCPCancelled(t *testing.T) {
	l := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := DirectTCP(&net.Dialer{})(ctx, "tcp", l.Addr().String())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("dial with cancelled ctx: %v, want context.Canceled", err)
	}
}

func TestDialersDialErrors(t *testing.T) {
	p := mustPolicy(t, HandlerTor, false, nil)
	ds := Dialers{HandlerTCP: DirectTCP(nil)}
	_, err := ds.Dial(testCtx(t), p.Decide("tor:abc.onion:80"))
	var de *DialError
	if !errors.As(err, &de) || !errors.Is(err, ErrNoDialer) ||
		err.Error() != `hints: dial "tor:abc.onion:80" via tor: no dialer for handler` {
		t.Errorf("no dialer: %v", err)
	}
	_, err = ds.Dial(testCtx(t), p.Decide("tcp:10.0.0.1:80"))
	if !errors.Is(err, ErrNotUsable) || !errors.Is(err, ErrBadHint) ||
		err.Error() != `hints: dial "tcp:10.0.0.1:80" via tor: hint is not usable: bad hint: ignoring non-Tor-able ipaddr 10.0.0.1` {
		t.Errorf("unusable: %v", err)
	}
	_, err = ds.Dial(testCtx(t), Decision{Raw: "x"})
	if !errors.Is(err, ErrNotUsable) || err.Error() != `hints: dial "x": hint is not usable` {
		t.Errorf("zero decision: %v", err)
	}
}

// socksServer is an in-process armon/go-socks5 server on 127.0.0.1 that
// records the names it is asked to resolve and the users it admits, and
// sends every connection to target.
type socksServer struct {
	addr   string
	mu     sync.Mutex
	names  []string
	users  []string
	dests  []string
	wg     sync.WaitGroup
	closed chan struct{}
}

type recordingResolver struct {
	s      *socksServer
	target net.IP
}

func (r recordingResolver) Resolve(ctx context.Context, name string) (context.Context, net.IP, error) {
	r.s.mu.Lock()
	r.s.names = append(r.s.names, name)
	r.s.mu.Unlock()
	return ctx, r.target, nil
}

type recordingRules struct{ s *socksServer }

func (r recordingRules) Allow(ctx context.Context, req *socks5.Request) (context.Context, bool) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if req.AuthContext != nil {
		r.s.users = append(r.s.users, req.AuthContext.Payload["Username"])
	}
	r.s.dests = append(r.s.dests, req.DestAddr.FQDN+"|"+req.DestAddr.IP.String()+"|"+strconv.Itoa(req.DestAddr.Port))
	return ctx, true
}

func startSOCKS(t *testing.T, creds socks5.StaticCredentials, targetPort int) *socksServer {
	t.Helper()
	s := &socksServer{closed: make(chan struct{})}
	conf := &socks5.Config{
		Resolver: recordingResolver{s: s, target: net.IPv4(127, 0, 0, 1)},
		Rules:    recordingRules{s: s},
		Logger:   log.New(io.Discard, "", 0),
		Rewriter: portRewriter(targetPort),
	}
	if creds != nil {
		conf.Credentials = creds
	}
	srv, err := socks5.New(conf)
	if err != nil {
		t.Fatal(err)
	}
	l := listen(t)
	s.addr = l.Addr().String()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		srv.Serve(l)
	}()
	t.Cleanup(func() { l.Close(); s.wg.Wait() })
	return s
}

// portRewriter sends every request to targetPort on the resolved address,
// so hints can name any port.
type portRewriter int

func (p portRewriter) Rewrite(ctx context.Context, req *socks5.Request) (context.Context, *socks5.AddrSpec) {
	a := *req.DestAddr
	a.Port = int(p)
	return ctx, &a
}

func TestSOCKS5(t *testing.T) {
	target := listen(t)
	done := echoOnce(t, target)
	tport := target.Addr().(*net.TCPAddr).Port
	s := startSOCKS(t, socks5.StaticCredentials{"server-v0-abc": "x"}, tport)

	dial, err := SOCKS5(s.addr, &proxy.Auth{User: "server-v0-abc", Password: "x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := mustPolicy(t, HandlerTor, false, nil)
	dec := p.Decide("tor:exampleonionaddressxyz.onion:3457")
	c, err := Dialers{HandlerTor: dial}.Dial(testCtx(t), dec)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c)
	c.Close()
	<-done

	s.mu.Lock()
	defer s.mu.Unlock()
	// The name reached the proxy unresolved, exactly as written, and the
	// proxy (not us) resolved it.
	if len(s.names) != 1 || s.names[0] != "exampleonionaddressxyz.onion" {
		t.Errorf("proxy resolved %q, want exactly the onion name", s.names)
	}
	if len(s.dests) != 1 || s.dests[0] != "exampleonionaddressxyz.onion|127.0.0.1|3457" {
		t.Errorf("proxy saw destinations %q", s.dests)
	}
	if len(s.users) != 1 || s.users[0] != "server-v0-abc" {
		t.Errorf("proxy saw users %q, want the per-server credential", s.users)
	}
}

func TestSOCKS5IPLiteral(t *testing.T) {
	target := listen(t)
	done := echoOnce(t, target)
	s := startSOCKS(t, nil, target.Addr().(*net.TCPAddr).Port)
	dial, err := SOCKS5(s.addr, nil, DirectTCP(nil))
	if err != nil {
		t.Fatal(err)
	}
	c, err := dial(testCtx(t), "tcp", "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c)
	c.Close()
	<-done
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.names) != 0 || len(s.dests) != 1 || s.dests[0] != "|127.0.0.1|1" {
		t.Errorf("IP literal: names %q dests %q", s.names, s.dests)
	}
}

func TestSOCKS5BadCredentials(t *testing.T) {
	s := startSOCKS(t, socks5.StaticCredentials{"alice": "right"}, 1)
	dial, err := SOCKS5(s.addr, &proxy.Auth{User: "alice", Password: "wrong"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = dial(testCtx(t), "tcp", "example.com:80")
	var oe *net.OpError
	if err == nil || !errors.As(err, &oe) {
		t.Fatalf("wrong password: err = %v, want *net.OpError", err)
	}
}

func TestSOCKS5Config(t *testing.T) {
	long := string(make([]byte, 256))
	for _, tc := range []struct {
		addr string
		auth *proxy.Auth
		want string
	}{
		{"127.0.0.1", nil, `hints: SOCKS5 proxy address "127.0.0.1": address 127.0.0.1: missing port in address`},
		{"127.0.0.1:9050", &proxy.Auth{}, "hints: SOCKS5 user name must be 1 to 255 bytes"},
		{"127.0.0.1:9050", &proxy.Auth{User: long}, "hints: SOCKS5 user name must be 1 to 255 bytes"},
		{"127.0.0.1:9050", &proxy.Auth{User: "u", Password: long}, "hints: SOCKS5 password must be at most 255 bytes"},
	} {
		if _, err := SOCKS5(tc.addr, tc.auth, nil); err == nil || err.Error() != tc.want {
			t.Errorf("SOCKS5(%q, %+v) error = %v, want %q", tc.addr, tc.auth, err, tc.want)
		}
	}
}

// blackhole accepts connections and never answers. Each accepted
// connection is reported on the returned channel; the goroutine reading it
// reports when the client side closed (EOF or reset).
func blackhole(t *testing.T) (addr string, accepted <-chan net.Conn) {
	l := listen(t)
	ch := make(chan net.Conn, 1)
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case ch <- c:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String(), ch
}

// waitClosedByPeer reads c until the peer closes it, bounded by a deadline.
func waitClosedByPeer(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue // the SOCKS greeting
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("the client never closed the proxy connection")
		}
		return
	}
}

func TestSOCKS5Deadline(t *testing.T) {
	addr, accepted := blackhole(t)
	dial, err := SOCKS5(addr, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = dial(ctx, "tcp", "abc.onion:80")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial error = %v, want one matching context.DeadlineExceeded", err)
	}
	var ne net.Error
	var oe *net.OpError
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.As(err, &oe) {
		t.Errorf("error %v lost its net.Error/*net.OpError nature", err)
	}
	waitClosedByPeer(t, <-accepted)
}

func TestSOCKS5Cancel(t *testing.T) {
	addr, accepted := blackhole(t)
	dial, err := SOCKS5(addr, &proxy.Auth{User: "u", Password: "p"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := dial(ctx, "tcp", "abc.onion:80")
		errc <- err
	}()
	c := <-accepted // the dial is now stuck waiting for the proxy
	cancel()
	err = <-errc
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("dial error = %v, want one matching context.Canceled", err)
	}
	waitClosedByPeer(t, c)
}
