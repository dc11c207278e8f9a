package memstore

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/tubfarm/tubfarm/foolscap"
)

// SniffTimeout is how long a new connection has to send its first 8 bytes
// (Tahoe: 30 s).
const SniffTimeout = 30 * time.Second

// foolscapPrefix is how every Foolscap connection starts.
const foolscapPrefix = "GET /id/"

// Mux serves Foolscap and HTTPS storage on one listener, as Tahoe does:
// a connection whose first 8 bytes are "GET /id/" goes to Foolscap,
// anything else to TLS and HTTP.
type Mux struct {
	// Foolscap is the Foolscap listener; add Tubs to it.
	Foolscap *foolscap.Listener

	ln      net.Listener
	fsSide  *chanListener
	webSide *chanListener
	web     *http.Server
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once

	onAccept func(net.Conn)

	mu      sync.Mutex
	pending map[net.Conn]struct{}
}

// ServeConfig configures [Serve].
type ServeConfig struct {
	// Foolscap configures the Foolscap side.
	Foolscap foolscap.ListenConfig
	// Cert is the HTTPS certificate: the same as the Tub's, as in Tahoe.
	Cert tls.Certificate
	// Handler serves HTTPS requests.
	Handler http.Handler
	// TLS, if set, adjusts the server's TLS configuration (tests turn
	// session tickets on, to check that clients never resume).
	TLS func(*tls.Config)
	// OnAccept, if set, sees every accepted connection before anything is
	// read from it.
	OnAccept func(net.Conn)
}

// Serve starts serving on ln. The HTTPS side sends no CertificateRequest
// and offers only http/1.1.
func Serve(ln net.Listener, cfg ServeConfig) *Mux {
	m := &Mux{
		ln:      ln,
		done:    make(chan struct{}),
		pending: make(map[net.Conn]struct{}),
	}
	m.fsSide = newChanListener(ln.Addr())
	m.webSide = newChanListener(ln.Addr())
	webSide := m.webSide
	m.onAccept = cfg.OnAccept
	m.Foolscap = foolscap.NewListener(m.fsSide, cfg.Foolscap)
	tc := &tls.Config{
		Certificates:           []tls.Certificate{cfg.Cert},
		MinVersion:             tls.VersionTLS12,
		NextProtos:             []string{"http/1.1"},
		SessionTicketsDisabled: true,
	}
	if cfg.TLS != nil {
		cfg.TLS(tc)
	}
	m.web = &http.Server{
		Handler:           cfg.Handler,
		TLSConfig:         tc,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ReadHeaderTimeout: time.Minute,
		ErrorLog:          log.New(io.Discard, "", 0), // clients that hang up mid-handshake are normal
		IdleTimeout:       4 * time.Minute,
	}
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		m.web.Serve(tls.NewListener(webSide, m.web.TLSConfig))
	}()
	go func() {
		defer m.wg.Done()
		m.accept(webSide)
	}()
	return m
}

// Addr returns the listening address.
func (m *Mux) Addr() net.Addr { return m.ln.Addr() }

func (m *Mux) accept(web *chanListener) {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		if m.onAccept != nil {
			m.onAccept(c)
		}
		m.mu.Lock()
		m.pending[c] = struct{}{}
		m.mu.Unlock()
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.sniff(c, web)
		}()
	}
}

func (m *Mux) sniff(c net.Conn, web *chanListener) {
	c.SetReadDeadline(time.Now().Add(SniffTimeout))
	var head [8]byte
	_, err := io.ReadFull(c, head[:])
	c.SetReadDeadline(time.Time{})
	m.mu.Lock()
	delete(m.pending, c)
	m.mu.Unlock()
	if err != nil {
		c.Close()
		return
	}
	pc := &prefixConn{Conn: c, prefix: head[:]}
	to := web
	if string(head[:]) == foolscapPrefix {
		to = m.fsSide
	}
	if !to.deliver(pc) {
		c.Close()
	}
}

// Close stops both protocols (closing only m.Foolscap leaves the port open), closes every connection and waits for the
// goroutines it started.
func (m *Mux) Close() error {
	m.once.Do(func() {
		close(m.done)
		m.ln.Close()
		m.mu.Lock()
		for c := range m.pending {
			c.Close()
		}
		m.mu.Unlock()
		m.webSide.Close()
		// Shutdown waits for the connections net/http still lingers on
		// (after an answer that left a body unread it waits up to 500 ms
		// before closing); Close ends whatever is left after a bound.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		m.web.Shutdown(ctx)
		cancel()
		m.web.Close()
	})
	m.Foolscap.Close()
	m.wg.Wait()
	return nil
}

type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// chanListener is a net.Listener fed by the sniffer.
type chanListener struct {
	addr   net.Addr
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
