package foolscap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	tubtls "github.com/tubfarm/tubfarm/tls"
)

// Per-hint statuses, worded as Foolscap's ConnectionInfo.connectorStatuses
// (and hence Tahoe's welcome page) word them. Failures are reported as
// "failed to connect: <error>" (the dial failed) and
// "negotiation failed: <error>" (it failed after the dial); "bad hint: ..."
// belongs to the caller, which turns hints into [Target]s.
const (
	StatusConnecting  = "connecting"         // dialing
	StatusNegotiating = "negotiating"        // connected; upgrade, TLS and hellos under way
	StatusSuccessful  = "successful"         // this hint won
	StatusRefused     = "connection refused" // the dial was refused
	StatusAbandoned   = "abandoned"          // cancelled because another hint won (or the attempt was cancelled)
)

// Target is one way to reach the server: a connection hint that the caller
// has already parsed and matched with a handler.
type Target struct {
	// Hint is the raw connection hint, e.g. "tcp:example.com:1234". It keys
	// the statuses in [ConnectInfo] and appears in errors.
	Hint string
	// Addr is the "host:port" given to Dial.
	Addr string
	// Host is the value of the Host header of the upgrade request (Foolscap
	// sends the hint's host, IPv6 without brackets; the server ignores it).
	Host string
	// Handler describes the handler for status displays: "tcp", "tor", "i2p".
	Handler string
	// Dial opens the connection, with network "tcp". If nil, a zero
	// net.Dialer is used. It must honour ctx.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// DialConfig configures [Dial]. Identity (or MakeIdentity), TubID and
// Targets are required.
type DialConfig struct {
	// Identity is the client's certificate and key; its TubID is our
	// my-tub-id.
	Identity *tubtls.Identity
	// MakeIdentity, used when Identity is nil, makes the identity when the
	// first target's upgrade has been accepted, right before its TLS
	// handshake, and only then: an attempt that reaches no server makes
	// none. Dial calls it at most once.
	MakeIdentity func() (*tubtls.Identity, error)
	// Incarnation is our my-incarnation, 16 lowercase hex digits, which
	// should stay the same for the life of Identity (see [NewIncarnation]).
	// If empty, a random one is made for this call.
	Incarnation string
	// TubID is the server's TubID, from the FURL. The server's certificate
	// must hash to it, and its hello must claim it.
	TubID string
	// Targets are dialed in parallel; the first to finish negotiation wins.
	// Targets with the same Hint are tried once. If empty, Dial fails with
	// ErrNoLocationHints.
	Targets []Target
	// ConnConfig is the template for the PB layer. Dial fills in
	// LocalTubID, PeerTubID and Vocab.
	ConnConfig ConnConfig
	// TLSConfig, if set, may adjust the TLS client configuration before each
	// handshake (for instance to set MaxVersion). It must keep the
	// certificate and VerifyConnection.
	TLSConfig func(*tls.Config)
	// LastConnection holds the duplicate-connection state kept per
	// (identity, server) across connections (docs/foolscap-protocol.md §3.5). If nil,
	// the hello says "last-connection: none 0" and nothing is remembered,
	// which is right for an identity used for only one connection.
	LastConnection *LastConnection
	// OnStatus, if set, is called with each per-hint status change, in
	// order, never concurrently. It must not block.
	OnStatus func(hint, status string)
	// Timeout bounds the whole attempt over all targets in addition to the
	// context. If zero, DefaultConnectTimeout (120 s) is used; negative
	// means none.
	Timeout time.Duration
}

// LastConnection is the duplicate-connection state one client identity
// keeps about one server (Foolscap's slave_table and master_table entries):
// the last current-connection the server issued to us while it was master,
// and the last seqnum we issued while we were master. The zero value is
// ready to use. It is safe for concurrent use.
type LastConnection struct {
	mu        sync.Mutex
	masterIR  string // the server's incarnation in its last decision to us
	masterSeq uint64 // and its seqnum
	ourSeq    uint64 // last seqnum we issued as master
}

// String returns the value sent as last-connection: "<incarnation> <seqnum>"
// or "none 0".
func (l *LastConnection) String() string {
	if l == nil {
		return "none 0"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.masterIR == "" {
		return "none 0"
	}
	return fmt.Sprintf("%s %d", l.masterIR, l.masterSeq)
}

func (l *LastConnection) remember(ir string, seq uint64) {
	if l == nil || ir == "" {
		return
	}
	l.mu.Lock()
	l.masterIR, l.masterSeq = ir, seq
	l.mu.Unlock()
}

func (l *LastConnection) nextSeq() uint64 {
	if l == nil {
		return 1
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ourSeq++
	return l.ourSeq
}

// ConnectInfo describes a connection attempt made by [Dial]. Dial returns
// it whether or not the attempt succeeded.
type ConnectInfo struct {
	// Statuses maps each hint to its last status (the Status constants,
	// "failed to connect: ..." or "negotiation failed: ...").
	Statuses map[string]string
	// Handlers maps each hint to its Target.Handler.
	Handlers map[string]string
	// WinningHint and Handler are the hint that won and its handler; empty
	// if none did.
	WinningHint string
	Handler     string
	// LocalTubID and PeerTubID identify the two ends.
	LocalTubID string
	PeerTubID  string
	// Role is ours on the winning connection.
	Role Role
	// TLSVersion and CipherSuite are those negotiated on the winning
	// connection (tls.VersionTLS13, ...).
	TLSVersion  uint16
	CipherSuite uint16
	// Started is when Dial began; Established when negotiation completed
	// (zero on failure).
	Started     time.Time
	Established time.Time
	// Timings are the winning attempt's phase durations.
	Timings Timings
}

// Timings are the durations of the phases of one connection attempt.
type Timings struct {
	Dial        time.Duration // TCP (or proxy) connect
	Upgrade     time.Duration // GET /id/... until the 101 reply
	TLS         time.Duration // TLS handshake
	Negotiation time.Duration // hellos and decision
}

// Total is the sum of the phases.
func (t Timings) Total() time.Duration { return t.Dial + t.Upgrade + t.TLS + t.Negotiation }

// Dial connects to the Tub cfg.TubID through cfg.Targets, negotiates the
// connection as the TLS client, and starts the PB layer on it with
// [NewConn].
//
// All targets are dialed at once. The first to complete negotiation wins;
// the others are cancelled, closed and waited for before Dial returns. The
// whole attempt is bounded by ctx and by cfg.Timeout. Failures are
// *NegotiationError; when every target fails, the error is that of the
// target that got furthest (a negotiation failure is preferred to a dial
// failure, as Foolscap does).
func Dial(ctx context.Context, cfg DialConfig) (*Conn, *ConnectInfo, error) {
	nc, cc, info, err := dialNegotiated(ctx, &cfg)
	if err != nil {
		return nil, info, err
	}
	return NewConn(nc, cc), info, nil
}

// dialer is the state of one Dial call.
type dialer struct {
	cfg         *DialConfig
	incarnation string

	idOnce sync.Once
	id     *tubtls.Identity
	idErr  error

	mu   sync.Mutex // guards info and serializes OnStatus
	info *ConnectInfo

	claimed sync.Mutex // held by the attempt that wins; TryLock to claim
}

// attemptResult is one target's outcome.
type attemptResult struct {
	target  Target
	conn    net.Conn
	cc      ConnConfig
	role    Role
	state   tls.ConnectionState
	timings Timings
	err     error
	phase   Phase // reached
}

// dialNegotiated runs Dial up to (not including) NewConn.
func dialNegotiated(ctx context.Context, cfg *DialConfig) (net.Conn, ConnConfig, *ConnectInfo, error) {
	info := &ConnectInfo{Statuses: map[string]string{}, Handlers: map[string]string{}, Started: time.Now()}
	if cfg.Identity == nil && cfg.MakeIdentity == nil {
		return nil, ConnConfig{}, info, errors.New("foolscap: DialConfig.Identity and MakeIdentity are nil")
	}
	info.PeerTubID = cfg.TubID
	if cfg.TubID == "" {
		return nil, ConnConfig{}, info, errors.New("foolscap: DialConfig.TubID is empty")
	}
	d := &dialer{cfg: cfg, incarnation: cfg.Incarnation, info: info}
	if cfg.Identity != nil {
		if _, err := d.identity(); err != nil {
			return nil, ConnConfig{}, info, err
		}
	}
	if d.incarnation == "" {
		d.incarnation = NewIncarnation()
	} else if !validIncarnation(d.incarnation) {
		return nil, ConnConfig{}, info, fmt.Errorf("foolscap: DialConfig.Incarnation %q is not 16 lowercase hex digits", d.incarnation)
	}

	var targets []Target
	seen := map[string]bool{}
	for _, t := range cfg.Targets {
		if seen[t.Hint] {
			continue
		}
		seen[t.Hint] = true
		targets = append(targets, t)
		info.Handlers[t.Hint] = t.Handler
	}
	if len(targets) == 0 {
		return nil, ConnConfig{}, info, &NegotiationError{Phase: PhaseDial, Msg: "nothing to dial", Err: ErrNoLocationHints}
	}

	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultConnectTimeout
	}
	var errTimeout = &NegotiationError{Phase: PhaseDial, Msg: "no connection established within client timeout", Err: context.DeadlineExceeded}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, errTimeout)
		defer cancel()
	}
	actx, cancelAll := context.WithCancel(ctx)
	defer cancelAll()

	results := make(chan attemptResult, len(targets))
	// Foolscap pops hints from the end of the list, so the last starts
	// first; the order does not matter otherwise.
	for i := len(targets) - 1; i >= 0; i-- {
		go func(t Target) { results <- d.attempt(actx, t) }(targets[i])
	}
	var win *attemptResult
	var failures []attemptResult
	for range targets {
		r := <-results
		if r.err == nil {
			win = &r
			cancelAll() // abandon the others
			continue
		}
		failures = append(failures, r)
	}
	if win != nil {
		info.WinningHint, info.Handler = win.target.Hint, win.target.Handler
		info.Role, info.Timings = win.role, win.timings
		info.TLSVersion, info.CipherSuite = win.state.Version, win.state.CipherSuite
		info.Established = time.Now()
		d.setStatus(win.target.Hint, StatusSuccessful)
		return win.conn, win.cc, info, nil
	}
	if ctx.Err() != nil {
		far := PhaseDial
		for _, f := range failures {
			if phaseRank(f.phase) > phaseRank(far) {
				far = f.phase
			}
		}
		cause := context.Cause(ctx)
		if ne, ok := cause.(*NegotiationError); ok {
			return nil, ConnConfig{}, info, &NegotiationError{Phase: far, Msg: ne.Msg, Err: ne.Err}
		}
		msg := "connection attempt cancelled"
		if errors.Is(cause, context.DeadlineExceeded) {
			msg = "no connection established before the deadline"
		}
		return nil, ConnConfig{}, info, &NegotiationError{Phase: far, Msg: msg, Err: cause}
	}
	best := failures[0]
	for _, f := range failures[1:] {
		if phaseRank(f.phase) > phaseRank(best.phase) {
			best = f
		}
	}
	return nil, ConnConfig{}, info, best.err
}

func phaseRank(p Phase) int {
	switch p {
	case PhaseDial:
		return 0
	case PhaseUpgrade:
		return 1
	case PhaseTLS:
		return 2
	case PhaseHello:
		return 3
	case PhaseDecision:
		return 4
	}
	return -1
}

// identity returns the client identity, making it on the first call when
// the config has only MakeIdentity. It refuses an identity whose TubID is
// the server's own.
func (d *dialer) identity() (*tubtls.Identity, error) {
	d.idOnce.Do(func() {
		id := d.cfg.Identity
		if id == nil {
			id, d.idErr = d.cfg.MakeIdentity()
			if d.idErr != nil {
				return
			}
		}
		if id.TubID == d.cfg.TubID {
			d.idErr = fmt.Errorf("foolscap: cannot connect to our own TubID %s", d.cfg.TubID)
			return
		}
		d.id = id
		d.mu.Lock()
		d.info.LocalTubID = id.TubID
		d.mu.Unlock()
	})
	return d.id, d.idErr
}

// setStatus records a hint's status and tells OnStatus.
func (d *dialer) setStatus(hint, status string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.info.Statuses[hint] = status
	if d.cfg.OnStatus != nil {
		d.cfg.OnStatus(hint, status)
	}
}

// attempt connects through one target and negotiates. On failure it closes
// everything it opened and sets the hint's status.
func (d *dialer) attempt(ctx context.Context, t Target) (r attemptResult) {
	r = attemptResult{target: t, phase: PhaseDial}
	fail := func(msg string, err error) attemptResult {
		err = ctxErr(ctx, err)
		r.err = &NegotiationError{Phase: r.phase, Hint: t.Hint, Msg: msg, Err: err}
		switch {
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			d.setStatus(t.Hint, StatusAbandoned)
		case r.phase == PhaseDial && errors.Is(err, syscall.ECONNREFUSED):
			d.setStatus(t.Hint, StatusRefused)
		case r.phase == PhaseDial:
			d.setStatus(t.Hint, "failed to connect: "+err.Error())
		default:
			d.setStatus(t.Hint, "negotiation failed: "+r.err.(*NegotiationError).cause())
		}
		return r
	}

	d.setStatus(t.Hint, StatusConnecting)
	start := time.Now()
	dial := t.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	raw, err := dial(ctx, "tcp", t.Addr)
	if err != nil {
		return fail("", err)
	}
	r.timings.Dial = time.Since(start)
	d.setStatus(t.Hint, StatusNegotiating)
	nc, err := d.negotiate(ctx, raw, &r)
	if err != nil {
		raw.Close()
		if ne, ok := err.(*NegotiationError); ok {
			return fail(ne.Msg, ne.Err)
		}
		return fail("", err)
	}
	r.conn = nc
	return r
}

// cause is the error text for a "negotiation failed:" status.
func (e *NegotiationError) cause() string {
	s := string(e.Phase)
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// negotiate runs the client side of docs/foolscap-protocol.md §3 over raw. It
// returns the connection to hand to the PB layer.
func (d *dialer) negotiate(ctx context.Context, raw net.Conn, r *attemptResult) (net.Conn, error) {
	cfg := d.cfg
	stop := watchContext(ctx, raw)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	nerr := func(msg string, err error) error {
		return &NegotiationError{Phase: r.phase, Msg: msg, Err: ctxErr(ctx, err)}
	}

	// Plaintext upgrade.
	r.phase = PhaseUpgrade
	start := time.Now()
	if _, err := raw.Write(upgradeRequest(cfg.TubID, r.target.Host)); err != nil {
		return nil, nerr("sending upgrade request", err)
	}
	resp, rest, err := readBlockPlain(raw, MaxBlockSize)
	if err != nil {
		return nil, nerr("reading upgrade response", err)
	}
	if err := parseUpgradeResponse(resp); err != nil {
		return nil, nerr("", err)
	}
	r.timings.Upgrade = time.Since(start)

	// TLS, pinned to the FURL's TubID.
	r.phase = PhaseTLS
	start = time.Now()
	id, err := d.identity()
	if err != nil {
		return nil, nerr("client identity", err)
	}
	tcfg := id.ClientConfig(cfg.TubID)
	if cfg.TLSConfig != nil {
		cfg.TLSConfig(tcfg)
	}
	sniff := &sniffConn{Conn: withPrefix(raw, rest)}
	tc := tls.Client(sniff, tcfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		if msg, ok := sniff.plaintextError(); ok {
			return nil, nerr("server sent a plaintext error instead of TLS", &RemoteNegotiationError{Msg: msg})
		}
		return nil, nerr("handshake", err)
	}
	sniff.done, sniff.seen = true, nil // stop recording, and free what was kept for errors
	r.state = tc.ConnectionState()
	r.timings.TLS = time.Since(start)

	// Hellos.
	r.phase = PhaseHello
	start = time.Now()
	if _, err := tc.Write(helloBlock(id.TubID, d.incarnation, cfg.LastConnection.String())); err != nil {
		return nil, nerr("sending hello", err)
	}
	blk, err := readBlock(tc, MaxBlockSize)
	if err != nil {
		return nil, nerr("reading server hello", err)
	}
	hello, err := parseBlock(blk)
	if err != nil {
		return nil, nerr("server hello", err)
	}
	certTubID, err := tubtls.PeerTubID(r.state)
	if err != nil {
		return nil, nerr("", err)
	}
	terms, err := evaluateHello(hello, certTubID)
	if err != nil {
		return nil, nerr("server hello", err)
	}
	if terms.tubID != cfg.TubID { // unreachable after the TLS pin; kept as Foolscap's own check
		return nil, nerr("connected to the wrong Tub", fmt.Errorf("%w: server is %s, FURL says %s", ErrWrongTubID, terms.tubID, cfg.TubID))
	}

	// Decision.
	r.phase = PhaseDecision
	cc := cfg.ConnConfig
	cc.LocalTubID, cc.PeerTubID = id.TubID, terms.tubID
	if id.TubID > terms.tubID {
		r.role = RoleMaster
		if !d.claimed.TryLock() {
			return nil, nerr("another hint won", context.Canceled)
		}
		seq := cfg.LastConnection.nextSeq()
		if _, err := tc.Write(decisionBlock(terms.version, terms.vocab, d.incarnation, seq)); err != nil {
			return nil, nerr("sending decision", err)
		}
		cc.Vocab = terms.vocab
	} else {
		r.role = RoleSlave
		blk, err := readBlock(tc, MaxBlockSize)
		if err != nil {
			return nil, nerr("reading decision", err)
		}
		dec, err := parseBlock(blk)
		if err != nil {
			return nil, nerr("decision", err)
		}
		dt, err := acceptDecision(dec)
		if err != nil {
			return nil, nerr("server decision", err)
		}
		if !d.claimed.TryLock() {
			return nil, nerr("another hint won", context.Canceled)
		}
		cfg.LastConnection.remember(dt.currentConnIR, dt.currentConnSeq)
		cc.Vocab = dt.vocab
	}
	stopped = true
	if !stop() {
		return nil, nerr("", ctx.Err())
	}
	r.timings.Negotiation = time.Since(start)
	r.cc = cc
	return tc, nil
}
