package foolscap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	tubtls "github.com/tubfarm/tubfarm/tls"
)

// ListenConfig configures a [Listener]. The zero value is usable.
type ListenConfig struct {
	// ConnConfig is the template for the PB layer of accepted connections.
	// The Listener fills in LocalTubID, PeerTubID, Vocab and Lookup (the
	// hosting Tub's registry).
	ConnConfig ConnConfig
	// ServerTimeout bounds the negotiation of one inbound connection, from
	// accept to the start of Banana. If zero, DefaultServerTimeout (120 s);
	// negative means none.
	ServerTimeout time.Duration
	// MaxNegotiations bounds the inbound connections negotiating at once;
	// MaxNegotiationsPerHost bounds those from one remote IP address. A
	// connection accepted beyond either is closed at once, unread, and
	// counted in [ListenerStats].Refused. Established connections do not
	// count. If zero, DefaultMaxNegotiations (256) and
	// DefaultMaxNegotiationsPerHost (16); negative means no limit.
	MaxNegotiations        int
	MaxNegotiationsPerHost int
	// TLSConfig, if set, may adjust the TLS server configuration before
	// each handshake (for instance MaxVersion).
	TLSConfig func(*tls.Config)
	// OnConnect, if set, is called in its own goroutine for each connection
	// that completed negotiation, with the hosting Tub and the client's
	// TubID (proved by its certificate).
	OnConnect func(tub *Tub, peerTubID string, c *Conn)
	// OnError, if set, is called for each inbound connection whose
	// negotiation failed, with a *NegotiationError.
	OnError func(remote net.Addr, err error)
	// Logger receives negotiation failures at debug level; nil discards.
	Logger *slog.Logger
	// Serve, if set, replaces the PB layer: it is given each negotiated
	// connection (Banana starts now) with the ConnConfig the PB layer would
	// have had, and returns when done with it; the Listener then closes it.
	// It is for peers that write their own Banana, such as a scripted
	// hostile server in tests. OnConnect is not called.
	Serve func(nc net.Conn, cc ConnConfig)
}

// Listener accepts Foolscap connections for one or more Tubs on one
// listening socket, dispatching each by the TubID of its upgrade request
// (GET /id/<tubid>).
type Listener struct {
	ln      net.Listener
	cfg     ListenConfig
	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	newConn func(net.Conn, ConnConfig) *Conn // NewConn

	// handoff is ListenConfig.Serve (or a test's): it replaces the PB
	// layer, gets the negotiated connection and returns when done with it.
	handoff func(nc net.Conn, cc ConnConfig)

	mu     sync.Mutex
	tubs   map[string]*Tub
	stats  ListenerStats
	hosts  map[string]int        // negotiations in progress per remote IP
	raw    map[net.Conn]struct{} // connections still negotiating
	pbs    map[*Conn]struct{}    // connections handed to the PB layer
	closed bool

	closeOnce sync.Once
	closeErr  error
}

// Defaults for [ListenConfig]'s negotiation limits.
const (
	DefaultMaxNegotiations        = 256
	DefaultMaxNegotiationsPerHost = 16
)

// ListenerStats counts a Listener's inbound negotiations.
type ListenerStats struct {
	Negotiating     int    // negotiating now
	PeakNegotiating int    // the most negotiating at once
	PeakPerHost     int    // the most negotiating at once from one IP address
	Refused         uint64 // connections closed unread because a limit was reached
}

// Stats returns the Listener's negotiation counters.
func (l *Listener) Stats() ListenerStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// Listen listens on network and addr (e.g. "tcp", "127.0.0.1:0") and
// serves Foolscap connections; add Tubs with [Listener.AddTub].
func Listen(ctx context.Context, network, addr string, cfg ListenConfig) (*Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("foolscap: listen: %w", err)
	}
	return NewListener(ln, cfg), nil
}

// NewListener serves Foolscap connections accepted from ln, which the
// Listener now owns.
func NewListener(ln net.Listener, cfg ListenConfig) *Listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{
		ln:      ln,
		cfg:     cfg,
		ctx:     ctx,
		cancel:  cancel,
		newConn: NewConn,
		handoff: cfg.Serve,
		tubs:    map[string]*Tub{},
		hosts:   map[string]int{},
		raw:     map[net.Conn]struct{}{},
		pbs:     map[*Conn]struct{}{},
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// AddTub serves t on this listener. A Tub may be served by several
// listeners.
func (l *Listener) AddTub(t *Tub) {
	l.mu.Lock()
	l.tubs[t.TubID()] = t
	l.mu.Unlock()
}

// RemoveTub stops accepting new connections for tubID. Established
// connections stay up.
func (l *Listener) RemoveTub(tubID string) {
	l.mu.Lock()
	delete(l.tubs, tubID)
	l.mu.Unlock()
}

// Addr returns the listening address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Close stops listening, closes every accepted connection (negotiating or
// established) and waits for the Listener's goroutines to end. It is
// idempotent and returns the error of closing the socket.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		l.cancel()
		l.closeErr = l.ln.Close()
		l.mu.Lock()
		for c := range l.raw {
			c.Close()
		}
		for c := range l.pbs {
			c.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return l.closeErr
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			if isTemporary(err) {
				// Back off as net/http does, e.g. on EMFILE.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-l.ctx.Done():
					t.Stop()
					return
				}
				continue
			}
			l.logf("accept failed, listener stops", "err", err)
			return
		}
		delay = 0
		host := remoteHost(c)
		ok, refused := l.track(c, host)
		if !ok {
			c.Close()
			if refused {
				continue
			}
			return
		}
		l.wg.Add(1)
		go l.serve(c, host)
	}
}

// isTemporary reports errors Accept may recover from.
func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// remoteHost is the IP address a connection comes from.
func remoteHost(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

func limit(n, def int) int {
	switch {
	case n == 0:
		return def
	case n < 0:
		return int(^uint(0) >> 1)
	}
	return n
}

// track records a new connection as negotiating. It reports false if the
// Listener is closed, or, with refused, if a negotiation limit is reached.
func (l *Listener) track(c net.Conn, host string) (ok, refused bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false, false
	}
	if l.stats.Negotiating >= limit(l.cfg.MaxNegotiations, DefaultMaxNegotiations) ||
		l.hosts[host] >= limit(l.cfg.MaxNegotiationsPerHost, DefaultMaxNegotiationsPerHost) {
		l.stats.Refused++
		return false, true
	}
	l.stats.Negotiating++
	l.stats.PeakNegotiating = max(l.stats.PeakNegotiating, l.stats.Negotiating)
	l.hosts[host]++
	l.stats.PeakPerHost = max(l.stats.PeakPerHost, l.hosts[host])
	l.raw[c] = struct{}{}
	return true, false
}

// negotiated records that the negotiation of a connection from host ended.
func (l *Listener) negotiated(host string) {
	l.mu.Lock()
	l.stats.Negotiating--
	if l.hosts[host]--; l.hosts[host] <= 0 {
		delete(l.hosts, host)
	}
	l.mu.Unlock()
}

func (l *Listener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.raw, c)
	l.mu.Unlock()
}

func (l *Listener) logf(msg string, args ...any) {
	if l.cfg.Logger != nil {
		l.cfg.Logger.Debug("foolscap: "+msg, args...)
	}
}

// serve negotiates one inbound connection and hands it to the PB layer.
func (l *Listener) serve(raw net.Conn, host string) {
	defer l.wg.Done()
	defer l.untrack(raw)
	ctx := l.ctx
	if d := l.cfg.ServerTimeout; d >= 0 {
		if d == 0 {
			d = DefaultServerTimeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	s := &serverNegotiation{l: l, raw: raw, phase: PhaseUpgrade}
	nc, cc, tub, slot, err := s.run(ctx)
	l.negotiated(host)
	if err != nil {
		raw.Close()
		ne, ok := err.(*NegotiationError)
		if !ok {
			ne = &NegotiationError{Phase: s.phase, Err: err}
		}
		ne.Hint = raw.RemoteAddr().String()
		l.logf("inbound negotiation failed", "err", ne)
		if l.cfg.OnError != nil {
			l.cfg.OnError(raw.RemoteAddr(), ne)
		}
		return
	}
	if l.handoff != nil {
		if tub.attach(slot, nc) {
			l.handoff(nc, cc)
		}
		nc.Close()
		tub.detach(cc.PeerTubID, slot)
		return
	}
	c := l.newConn(nc, cc)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.Close()
		tub.detach(cc.PeerTubID, slot)
		return
	}
	l.pbs[c] = struct{}{}
	l.mu.Unlock()
	if !tub.attach(slot, c) {
		c.Close() // replaced by a newer connection while we were starting
	}
	if l.cfg.OnConnect != nil {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.cfg.OnConnect(tub, cc.PeerTubID, c)
		}()
	}
	select {
	case <-c.Done():
	case <-l.ctx.Done():
		c.Close()
	}
	tub.detach(cc.PeerTubID, slot)
	l.mu.Lock()
	delete(l.pbs, c)
	l.mu.Unlock()
}

// serverNegotiation is the server side of docs/foolscap-protocol.md §3 on one
// connection.
type serverNegotiation struct {
	l     *Listener
	raw   net.Conn
	phase Phase
}

func (s *serverNegotiation) fail(msg string, err error) error {
	return &NegotiationError{Phase: s.phase, Msg: msg, Err: err}
}

func (s *serverNegotiation) run(ctx context.Context) (net.Conn, ConnConfig, *Tub, *peerConn, error) {
	var zero ConnConfig
	stop := watchContext(ctx, s.raw)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	wrap := func(msg string, err error) error { return s.fail(msg, ctxErr(ctx, err)) }
	plainFail := func(wire string, err error) error {
		s.raw.Write(serverErrorResponse(wire))
		return s.fail("", err)
	}

	// Plaintext: GET /id/<tubid>.
	req, rest, err := readBlockPlain(s.raw, MaxBlockSize)
	if errors.Is(err, ErrBlockTooLong) {
		//lint:ignore ST1005 Foolscap's own text, sent to the peer as is
		return nil, zero, nil, nil, plainFail(msgInternalError, fmt.Errorf("Header too long: %w", err))
	}
	if err != nil {
		return nil, zero, nil, nil, wrap("reading upgrade request", err)
	}
	tubID, err := parseUpgradeRequest(req)
	if err != nil {
		return nil, zero, nil, nil, plainFail(msgInternalError, err)
	}
	if tubID == "" {
		return nil, zero, nil, nil, plainFail(msgNeedEncryption, errors.New(msgNeedEncryption))
	}
	s.l.mu.Lock()
	tub := s.l.tubs[tubID]
	s.l.mu.Unlock()
	if tub == nil {
		return nil, zero, nil, nil, plainFail(msgUnknownTubID+tubID, errors.New(msgUnknownTubID+tubID))
	}
	if _, err := s.raw.Write(switchingResponse); err != nil {
		return nil, zero, nil, nil, wrap("sending 101", err)
	}

	// TLS. The client certificate is requested but not required by TLS, so
	// that its absence gets Foolscap's error block rather than an alert.
	s.phase = PhaseTLS
	tcfg := tub.id.ServerConfig()
	tcfg.ClientAuth = tls.RequestClientCert
	if s.l.cfg.TLSConfig != nil {
		s.l.cfg.TLSConfig(tcfg)
	}
	tc := tls.Server(withPrefix(s.raw, rest), tcfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, zero, nil, nil, wrap("handshake", err)
	}
	blockFail := func(wire string, err error) error {
		tc.Write(errorBlock(wire))
		return s.fail("", ctxErr(ctx, err))
	}

	// Hellos: ours goes out at once.
	s.phase = PhaseHello
	if _, err := tc.Write(helloBlock(tub.TubID(), tub.incarnation, "")); err != nil {
		return nil, zero, nil, nil, wrap("sending hello", err)
	}
	blk, err := readBlock(tc, MaxBlockSize)
	if errors.Is(err, ErrBlockTooLong) {
		return nil, zero, nil, nil, blockFail(msgInternalError, err)
	}
	if err != nil {
		return nil, zero, nil, nil, wrap("reading client hello", err)
	}
	hello, err := parseBlock(blk)
	if err != nil {
		return nil, zero, nil, nil, blockFail(msgInternalError, err)
	}
	certTubID, err := tubtls.PeerTubID(tc.ConnectionState())
	if err != nil {
		return nil, zero, nil, nil, blockFail(msgInternalError, ErrNoPeerCertificate)
	}
	terms, err := evaluateHello(hello, certTubID)
	var rerr *RemoteNegotiationError
	switch {
	case errors.As(err, &rerr):
		return nil, zero, nil, nil, s.fail("client hello", err) // the client has hung up
	case errors.Is(err, ErrWrongTubID):
		return nil, zero, nil, nil, blockFail(msgInternalError, err) // Foolscap: "TubID mismatch"
	case err != nil:
		return nil, zero, nil, nil, blockFail(err.Error(), err)
	}
	if terms.tubID == tub.TubID() {
		return nil, zero, nil, nil, blockFail(msgInternalError, errors.New("client claims our own TubID"))
	}

	// Decision.
	s.phase = PhaseDecision
	cc := s.l.cfg.ConnConfig
	cc.LocalTubID, cc.PeerTubID, cc.Lookup, cc.ReferenceURL = tub.TubID(), terms.tubID, tub.Lookup, tub.referenceURL
	var slot *peerConn
	if tub.TubID() > terms.tubID {
		o := offer{incarnation: hello[keyIncarnation]}
		if lc, ok := hello[keyLastConnection]; ok {
			o.lastConnection = lc
			if o.lastConnection == "" {
				o.lastConnection = "none 0"
			}
		}
		var seq uint64
		var old *peerConn
		slot, seq, old, err = tub.decideAsMaster(terms.tubID, o)
		if err != nil {
			return nil, zero, nil, nil, blockFail(msgDuplicate, ErrDuplicateConnection)
		}
		tub.closeReplaced(old)
		if _, err := tc.Write(decisionBlock(terms.version, terms.vocab, tub.incarnation, seq)); err != nil {
			tub.detach(terms.tubID, slot)
			return nil, zero, nil, nil, wrap("sending decision", err)
		}
		cc.Vocab = terms.vocab
	} else {
		blk, err := readBlock(tc, MaxBlockSize)
		if err != nil {
			return nil, zero, nil, nil, wrap("reading decision", err)
		}
		dec, err := parseBlock(blk)
		if err == nil {
			var dt decisionTerms
			dt, err = acceptDecision(dec)
			cc.Vocab = dt.vocab
		}
		if err != nil {
			if !errors.As(err, &rerr) {
				// Our send side is already Banana: complain with an ERROR token.
				tc.Write(appendErrorToken(nil, err.Error()))
			}
			return nil, zero, nil, nil, s.fail("client decision", ctxErr(ctx, err))
		}
		var old *peerConn
		slot, old = tub.acceptAsSlave(terms.tubID, hello[keyIncarnation])
		tub.closeReplaced(old)
	}
	stopped = true
	if !stop() {
		tub.detach(terms.tubID, slot)
		return nil, zero, nil, nil, s.fail("", ctx.Err())
	}
	return tc, cc, tub, slot, nil
}
