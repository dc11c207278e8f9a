// Package privtest holds the instruments of tubfarm's privacy tests: a
// Foolscap storage server that records the source address of every TCP
// connection it accepts and whether each TLS handshake resumed a session,
// a SOCKS5 server standing in for a Tor SocksPort that records what every
// stream asked for and reaches its targets from its own loopback address,
// a runner for Debian's microsocks, a fake I2P SAM v3 bridge, and a writer
// of Tahoe node directories with signed announcements.
//
// Everything listens on 127.0.0.1. Proxies dial their targets from other
// loopback addresses (127.0.9.2 for SOCKS, 127.0.9.3 for SAM), which Linux
// routes without setup, so that a server can tell a connection that came
// through a proxy from a direct one by its source address alone. They are
// unusual on purpose: other tests of the module dial from 127.0.0.2.
package privtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/foolscap"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// Loopback source addresses that tell who made a connection.
var (
	// ClientAddr is where the client under test connects from.
	ClientAddr = netip.MustParseAddr("127.0.0.1")
	// SOCKSAddr is where the SOCKS proxies reach their targets from.
	SOCKSAddr = netip.MustParseAddr("127.0.9.2")
	// SAMAddr is where the fake SAM bridge reaches its targets from.
	SAMAddr = netip.MustParseAddr("127.0.9.3")
)

// StorageInterface is the RemoteInterface name of Tahoe's storage server.
const StorageInterface = "RIStorageServer.tahoe.allmydata.com"

// ServerConfig configures StartServer.
type ServerConfig struct {
	// Nickname names the server in announcements and errors.
	Nickname string
	// TLSConfig, if set, adjusts the server's TLS configuration before
	// each handshake, after the recording hook is installed.
	TLSConfig func(*tls.Config)
	// Tickets makes the server issue TLS session tickets (Foolscap servers
	// made with Go's crypto/tls defaults would), so that a client that
	// kept them could try to resume.
	Tickets bool
}

// A Handshake is one TLS handshake a Server completed.
type Handshake struct {
	PeerTubID string // the client TubID of the certificate in force
	DidResume bool
}

// Server is a Foolscap storage server on its own 127.0.0.1 port, with its
// own Tub and Ed25519 announcement key.
type Server struct {
	// ID is the server's Tahoe id, "v0-" + base32 of its Ed25519 key.
	ID       string
	Nickname string
	Key      ed25519.PrivateKey
	Tub      *foolscap.Tub
	// Port is the listening port; every hint a test writes for this server
	// uses it, so that whatever the hint's host, a connection that reaches
	// the machine reaches this server.
	Port int

	ln    *foolscap.Listener
	rec   *recordingListener
	swiss string

	mu         sync.Mutex
	handshakes []Handshake
	clients    []string
	seen       chan string
	hs         chan Handshake
}

// StartServer starts a server on 127.0.0.1; it is closed when the test
// ends.
func StartServer(t testing.TB, cfg ServerConfig) *Server {
	t.Helper()
	id, err := tubtls.NewEphemeral()
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var ticketKey [32]byte
	rand.Read(ticketKey[:])
	s := &Server{
		ID:       config.FormatServerKey(pub),
		Nickname: cfg.Nickname,
		Key:      priv,
		Tub:      foolscap.NewTub(id),
		Port:     raw.Addr().(*net.TCPAddr).Port,
		rec:      &recordingListener{Listener: raw, conns: map[net.Conn]bool{}, tubID: []byte(id.TubID)},
		swiss:    foolscap.NewSwissnum(),
		seen:     make(chan string, 64),
		hs:       make(chan Handshake, 64),
	}
	s.ln = foolscap.NewListener(s.rec, foolscap.ListenConfig{
		TLSConfig: func(c *tls.Config) {
			c.SessionTicketsDisabled = !cfg.Tickets
			if cfg.Tickets {
				// The listener makes a Config per handshake; one key for
				// all of them lets a ticket from one connection work on
				// the next, as with a long-lived server context.
				c.SetSessionTicketKeys([][32]byte{ticketKey})
			}
			c.VerifyConnection = func(cs tls.ConnectionState) error {
				peer, _ := tubtls.PeerTubID(cs)
				s.mu.Lock()
				h := Handshake{PeerTubID: peer, DidResume: cs.DidResume}
				s.handshakes = append(s.handshakes, h)
				s.mu.Unlock()
				select {
				case s.hs <- h:
				default:
				}
				return nil
			}
			if cfg.TLSConfig != nil {
				cfg.TLSConfig(c)
			}
		},
		OnConnect: func(_ *foolscap.Tub, peer string, _ *foolscap.Conn) {
			s.mu.Lock()
			s.clients = append(s.clients, peer)
			s.mu.Unlock()
			select {
			case s.seen <- peer:
			default:
			}
		},
	})
	s.ln.AddTub(s.Tub)
	// Foolscap needs a location to register; FURL writes its own hints.
	s.Tub.SetLocation("tcp:127.0.0.1:" + strconv.Itoa(s.Port))
	if _, err := s.Tub.Register(&storage{nick: cfg.Nickname}, s.swiss); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.ln.Close() })
	return s
}

// FURL returns the server's storage FURL with the given connection hints.
func (s *Server) FURL(hints ...string) string {
	return "pb://" + s.Tub.TubID() + "@" + strings.Join(hints, ",") + "/" + s.swiss
}

// Sources returns the source address of every TCP connection that asked
// for this server's Tub (its Foolscap upgrade request, "GET /id/<tubid>",
// names the server's TubID), in order, whether or not negotiation then
// succeeded. Connections that name another Tub are not counted: they are
// strays from other processes that reuse loopback ports, and no client of
// this server would send them.
func (s *Server) Sources() []netip.Addr { return s.rec.sources() }

// Clients returns the client TubIDs of the connections that completed
// negotiation, in order.
func (s *Server) Clients() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.clients)
}

// Seen delivers each client TubID as its connection completes negotiation
// (buffered; extra ones are dropped if nobody reads).
func (s *Server) Seen() <-chan string { return s.seen }

// HandshakeDone delivers each TLS handshake as it completes (buffered;
// extra ones are dropped if nobody reads).
func (s *Server) HandshakeDone() <-chan Handshake { return s.hs }

// Handshakes returns every TLS handshake the server completed, in order.
func (s *Server) Handshakes() []Handshake {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.handshakes)
}

// Drop closes every connection the server has accepted, as a server that
// restarts does; the listener stays open.
func (s *Server) Drop() { s.rec.closeAll() }

// recordingListener records the source of every accepted connection whose
// first line names tubID, and keeps every connection so that Drop can
// close them.
type recordingListener struct {
	net.Listener
	tubID []byte
	mu    sync.Mutex
	srcs  []netip.Addr
	conns map[net.Conn]bool
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	l.mu.Lock()
	l.conns[c] = true
	l.mu.Unlock()
	return &trackedConn{Conn: c, l: l, src: ap.Addr().Unmap()}, nil
}

func (l *recordingListener) sources() []netip.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.srcs)
}

func (l *recordingListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.Close()
	}
}

// trackedConn watches the first line the client sends.
type trackedConn struct {
	net.Conn
	l       *recordingListener
	src     netip.Addr
	first   []byte // the start of the stream, until decided
	decided bool
}

// maxFirstLine bounds how much of a stream is inspected for the TubID.
const maxFirstLine = 512

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if !c.decided && n > 0 {
		c.first = append(c.first, p[:min(n, maxFirstLine-len(c.first))]...)
		end := bytes.IndexByte(c.first, '\n')
		if end >= 0 || len(c.first) >= maxFirstLine {
			c.decided = true
			if end >= 0 && bytes.Contains(c.first[:end], c.l.tubID) {
				c.l.mu.Lock()
				c.l.srcs = append(c.l.srcs, c.src)
				c.l.mu.Unlock()
			}
			c.first = nil
		}
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c.Conn)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// storage answers get_version like a Tahoe-LAFS storage server, enough for
// the broker's status.
type storage struct{ nick string }

func (s *storage) InterfaceName() string { return StorageInterface }

func (s *storage) CallRemote(_ context.Context, method string, _ []any, _ map[string]any) (any, error) {
	if method == "get_version" {
		return foolscap.Dict{
			{Key: []byte("application-version"), Value: []byte("tahoe-lafs/1.20.0")},
			{Key: []byte("http://allmydata.org/tahoe/protocols/storage/v1"), Value: foolscap.Dict{
				{Key: []byte("available-space"), Value: int64(1 << 30)},
			}},
		}, nil
	}
	return nil, foolscap.UnknownMethod(StorageInterface, method)
}
