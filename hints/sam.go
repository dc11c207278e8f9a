package hints

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultSAMAddr is the I2P router's SAM bridge address used when "[i2p]
// sam.port" is unset.
const DefaultSAMAddr = "127.0.0.1:7656"

// samHello is the version negotiation this client sends: SAM 3.0 to 3.1,
// like Tahoe-LAFS's txi2p.
const samHello = "HELLO VERSION MIN=3.0 MAX=3.1"

// Errors carried by a [SAMError]: one per RESULT code of the SAM v3
// specification, plus protocol and lifecycle failures. Test for them with
// [errors.Is].
var (
	ErrSAMNoVersion     = errors.New("NOVERSION")       // the bridge speaks no SAM version from 3.0 to 3.1
	ErrSAMCantReachPeer = errors.New("CANT_REACH_PEER") // the peer exists but cannot be reached
	ErrSAMPeerNotFound  = errors.New("PEER_NOT_FOUND")  // the peer cannot be found on the network
	ErrSAMI2PError      = errors.New("I2P_ERROR")       // a generic I2P error, such as an I2CP disconnection
	ErrSAMInvalidKey    = errors.New("INVALID_KEY")     // the destination or key is not valid
	ErrSAMInvalidID     = errors.New("INVALID_ID")      // the session ID is unknown to the bridge
	ErrSAMTimeout       = errors.New("TIMEOUT")         // I2P timed out waiting for the peer
	ErrSAMDuplicatedID  = errors.New("DUPLICATED_ID")   // the session ID is already in use
	ErrSAMDuplicatedDst = errors.New("DUPLICATED_DEST") // the destination is already in use
	ErrSAMKeyNotFound   = errors.New("KEY_NOT_FOUND")   // the bridge's naming service does not know the name

	// ErrSAMProtocol reports a reply that breaks the SAM protocol: not
	// the expected command, malformed, or longer than MaxSAMLine.
	ErrSAMProtocol = errors.New("SAM protocol error")

	// ErrSAMClosed reports a dial on a session or [SAM] that was closed,
	// or whose control connection the bridge ended.
	ErrSAMClosed = errors.New("SAM session closed")
)

// samResults maps RESULT codes to their errors and explanations.
var samResults = map[string]struct {
	err  error
	text string
}{
	"NOVERSION":       {ErrSAMNoVersion, "the bridge supports no SAM version from 3.0 to 3.1"},
	"CANT_REACH_PEER": {ErrSAMCantReachPeer, "the peer exists but cannot be reached"},
	"PEER_NOT_FOUND":  {ErrSAMPeerNotFound, "the peer cannot be found on the I2P network"},
	"I2P_ERROR":       {ErrSAMI2PError, "generic I2P error"},
	"INVALID_KEY":     {ErrSAMInvalidKey, "the destination or key is not valid"},
	"INVALID_ID":      {ErrSAMInvalidID, "the bridge does not know this session ID"},
	"TIMEOUT":         {ErrSAMTimeout, "I2P timed out waiting for the peer"},
	"DUPLICATED_ID":   {ErrSAMDuplicatedID, "the session ID is already in use"},
	"DUPLICATED_DEST": {ErrSAMDuplicatedDst, "the destination is already in use"},
	"KEY_NOT_FOUND":   {ErrSAMKeyNotFound, "the bridge's naming service does not know the name"},
}

// A SAMError reports a failed exchange with a SAM bridge.
type SAMError struct {
	Bridge string // the bridge address, "host:port"
	Op     string // "dial", "HELLO", "SESSION CREATE", "NAMING LOOKUP" or "STREAM CONNECT"
	Dest   string // the destination or name, for NAMING LOOKUP and STREAM CONNECT

	// Result is the bridge's RESULT code when it refused, such as
	// "CANT_REACH_PEER", and Message its MESSAGE, if any. Both are empty
	// when the exchange failed before a reply.
	Result, Message string

	// Err is the RESULT's error (ErrSAMCantReachPeer ...), nil for a RESULT
	// this package does not know, ErrSAMProtocol wrapped with details, or
	// the I/O error.
	Err error
}

func (e *SAMError) Error() string {
	s := "hints: SAM bridge " + e.Bridge + ": " + e.Op
	if e.Dest != "" {
		s += " " + quote(e.Dest)
	}
	if e.Result != "" {
		s += ": " + e.Result
		if r, ok := samResults[e.Result]; ok {
			s += " (" + r.text + ")"
		}
		if e.Message != "" {
			s += ": " + e.Message
		}
		return s
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns e.Err.
func (e *SAMError) Unwrap() error { return e.Err }

// protoError is an ErrSAMProtocol with details.
type protoError struct{ msg string }

func (e *protoError) Error() string { return ErrSAMProtocol.Error() + ": " + e.msg }
func (e *protoError) Unwrap() error { return ErrSAMProtocol }

// SAMConfig configures a [SAM] client from tahoe.cfg's [i2p] section.
type SAMConfig struct {
	// Addr is "[i2p] sam.port", an endpoint string such as
	// "tcp:127.0.0.1:7656" (see [ParseEndpoint]). Empty means
	// DefaultSAMAddr.
	Addr string

	// SessionOptions are extra "KEY=VALUE" I2CP and streaming options for
	// SESSION CREATE, such as "inbound.quantity=3".
	SessionOptions []string

	// Forward dials the bridge itself. Nil means [DirectTCP](nil).
	Forward DialFunc
}

// SAM is a client of an I2P router's SAM v3 bridge that opens streams to
// I2P destinations.
//
// Each identity gets its own SAM session, and so its own transient I2P
// destination: servers see unrelated sources for different identities.
// [SAM.ForIdentity] creates the session on first use and reuses it for
// every stream of that identity; [SAM.Retire] ends it. Name lookups happen
// on the bridge (NAMING LOOKUP), never locally.
//
// A SAM is safe for concurrent use.
type SAM struct {
	addr    string
	opts    []string
	forward DialFunc

	mu       sync.Mutex
	closed   bool
	sessions map[string]*samEntry
}

// samEntry is the session slot of one identity. lock serializes session
// creation; sess is guarded by SAM.mu.
type samEntry struct {
	lock chan struct{}
	sess *SAMSession
}

// NewSAM returns a SAM client for cfg. It does not contact the bridge. An
// unusable cfg.Addr fails with an *[EndpointError] naming "[i2p] sam.port";
// an option that is not KEY=VALUE without spaces fails too.
func NewSAM(cfg SAMConfig) (*SAM, error) {
	s := &SAM{addr: DefaultSAMAddr, forward: cfg.Forward, sessions: map[string]*samEntry{}}
	if cfg.Addr != "" {
		a, err := ParseEndpoint("[i2p] sam.port", cfg.Addr)
		if err != nil {
			return nil, err
		}
		s.addr = a
	}
	if s.forward == nil {
		s.forward = DirectTCP(nil)
	}
	for _, o := range cfg.SessionOptions {
		k, _, ok := strings.Cut(o, "=")
		if !ok || k == "" || !isSAMToken(o) {
			return nil, errors.New("hints: SAM session option " + quote(o) + ": want KEY=VALUE without spaces or quotes")
		}
		s.opts = append(s.opts, o)
	}
	return s, nil
}

// Addr returns the bridge address s dials.
func (s *SAM) Addr() string { return s.addr }

// ForIdentity returns the DialFunc for one identity. Its first dial
// creates the identity's session (which may take a minute while I2P builds
// tunnels, bounded by that dial's context); later dials reuse it, and
// create a new one if the bridge ended it. Pass the key that names the
// identity (the broker passes actors.Identity.Key) as isolationKey, and
// call [SAM.Retire] with it when the identity is replaced or its server
// removed.
func (s *SAM) ForIdentity(isolationKey string) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		sess, err := s.session(ctx, isolationKey)
		if err != nil {
			return nil, err
		}
		return sess.Dial(ctx, network, addr)
	}
}

// session returns the live session of key, creating it if needed.
func (s *SAM) session(ctx context.Context, key string) (*SAMSession, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, &SAMError{Bridge: s.addr, Op: "SESSION CREATE", Err: ErrSAMClosed}
	}
	e := s.sessions[key]
	if e == nil {
		e = &samEntry{lock: make(chan struct{}, 1)}
		s.sessions[key] = e
	}
	s.mu.Unlock()

	select {
	case e.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, &SAMError{Bridge: s.addr, Op: "SESSION CREATE", Err: ctx.Err()}
	}
	defer func() { <-e.lock }()

	s.mu.Lock()
	sess := e.sess
	s.mu.Unlock()
	if sess != nil && !sess.ended() {
		return sess, nil
	}
	sess, err := s.NewSession(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed || s.sessions[key] != e { // closed or retired meanwhile
		s.mu.Unlock()
		sess.Close()
		return nil, &SAMError{Bridge: s.addr, Op: "SESSION CREATE", Err: ErrSAMClosed}
	}
	e.sess = sess
	s.mu.Unlock()
	return sess, nil
}

// Retire closes the session of isolationKey, if any, ending its streams.
// A later ForIdentity dial with the same key creates a new session.
func (s *SAM) Retire(isolationKey string) error {
	s.mu.Lock()
	e := s.sessions[isolationKey]
	delete(s.sessions, isolationKey)
	var sess *SAMSession
	if e != nil {
		sess, e.sess = e.sess, nil
	}
	s.mu.Unlock()
	if sess != nil {
		return sess.Close()
	}
	return nil
}

// Close closes every session made by ForIdentity; later dials fail with
// ErrSAMClosed. Sessions made with NewSession are the caller's to close.
func (s *SAM) Close() error {
	s.mu.Lock()
	s.closed = true
	var all []*SAMSession
	for k, e := range s.sessions {
		if e.sess != nil {
			all = append(all, e.sess)
		}
		delete(s.sessions, k)
	}
	s.mu.Unlock()
	var errs []error
	for _, sess := range all {
		errs = append(errs, sess.Close())
	}
	return errors.Join(errs...)
}

// NewSession creates a STREAM session with a new transient destination
// and a random session ID. Its control connection to the bridge stays open
// until [SAMSession.Close]; ctx bounds only the creation.
func (s *SAM) NewSession(ctx context.Context) (*SAMSession, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	id := "tubfarm-" + hex.EncodeToString(rnd[:])
	c, br, version, err := s.open(ctx, "SESSION CREATE", "")
	if err != nil {
		return nil, err
	}
	cmd := "SESSION CREATE STYLE=STREAM ID=" + id + " DESTINATION=TRANSIENT"
	if version != "3.0" {
		cmd += " SIGNATURE_TYPE=7" // EdDSA_SHA512_Ed25519, as the specification recommends
	}
	for _, o := range s.opts {
		cmd += " " + o
	}
	err = s.withCtx(ctx, c, func() error {
		_, err := s.exchange(c, br, "SESSION CREATE", "", cmd, "SESSION", "STATUS")
		return err
	})
	if err != nil {
		c.Close()
		return nil, withContextErr(ctx, err)
	}
	sess := &SAMSession{sam: s, id: id, version: version, ctrl: c, done: make(chan struct{})}
	go sess.watch(br)
	return sess, nil
}

// open dials the bridge and negotiates the version. On error the
// connection is closed.
func (s *SAM) open(ctx context.Context, op, dest string) (net.Conn, *bufio.Reader, string, error) {
	c, err := s.forward(ctx, "tcp", s.addr)
	if err != nil {
		return nil, nil, "", withContextErr(ctx, &SAMError{Bridge: s.addr, Op: "dial", Dest: dest, Err: err})
	}
	br := bufio.NewReader(c)
	var version string
	err = s.withCtx(ctx, c, func() error {
		r, err := s.exchange(c, br, "HELLO", "", samHello, "HELLO", "REPLY")
		if err != nil {
			return err
		}
		version = r.Args["VERSION"]
		if version != "3.0" && version != "3.1" {
			return &SAMError{Bridge: s.addr, Op: "HELLO",
				Err: &protoError{"bridge chose version " + quote(version) + " (want 3.0 or 3.1)"}}
		}
		return nil
	})
	if err != nil {
		c.Close()
		return nil, nil, "", withContextErr(ctx, err)
	}
	return c, br, version, nil
}

// aLongTimeAgo is a deadline in the past, to abort blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// withCtx runs f with ctx's deadline and cancellation applied to c.
func (s *SAM) withCtx(ctx context.Context, c net.Conn, f func() error) error {
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		c.SetDeadline(aLongTimeAgo)
		close(fired)
	})
	err := f()
	if !stop() {
		<-fired
	}
	if err == nil {
		c.SetDeadline(time.Time{})
	}
	return err
}

// exchange sends cmd and reads one reply, which must be "verb sub" with
// RESULT=OK.
func (s *SAM) exchange(c net.Conn, br *bufio.Reader, op, dest, cmd, verb, sub string) (samReply, error) {
	fail := func(err error) (samReply, error) {
		return samReply{}, &SAMError{Bridge: s.addr, Op: op, Dest: dest, Err: err}
	}
	if _, err := c.Write([]byte(cmd + "\n")); err != nil {
		return fail(err)
	}
	line, err := readSAMLine(br, MaxSAMLine)
	if errors.Is(err, errLineTooLong) {
		return fail(&protoError{err.Error()})
	}
	if err != nil {
		return fail(err)
	}
	r, err := parseSAMReply(line)
	if err != nil {
		return fail(&protoError{err.Error() + " in reply " + quoteShort(line)})
	}
	if !strings.EqualFold(r.Verb, verb) || !strings.EqualFold(r.Sub, sub) {
		return fail(&protoError{"unexpected reply " + quoteShort(line) + " (want " + verb + " " + sub + ")"})
	}
	res, ok := r.Args["RESULT"]
	if !ok {
		return fail(&protoError{"reply without RESULT: " + quoteShort(line)})
	}
	if res != "OK" {
		e := &SAMError{Bridge: s.addr, Op: op, Dest: dest, Result: res, Message: r.Args["MESSAGE"]}
		if known, ok := samResults[res]; ok {
			e.Err = known.err
		}
		return samReply{}, e
	}
	return r, nil
}

// quoteShort quotes s, cut to 80 bytes.
func quoteShort(s string) string {
	if len(s) > 80 {
		return quote(s[:80]) + "..."
	}
	return quote(s)
}

// A SAMSession is one SAM STREAM session: a transient I2P destination
// whose control connection to the bridge stays open for the session's
// life. Streams made with Dial come from its destination. Closing the
// session, or the bridge ending it, ends its streams too.
type SAMSession struct {
	sam     *SAM
	id      string
	version string
	ctrl    net.Conn
	done    chan struct{} // closed when the control connection ends
}

// ID returns the session's nickname, the ID= of its SAM commands.
func (ss *SAMSession) ID() string { return ss.id }

// Version returns the SAM version the bridge chose, "3.0" or "3.1".
func (ss *SAMSession) Version() string { return ss.version }

// Done returns a channel closed when the session has ended: closed by
// Close or by the bridge.
func (ss *SAMSession) Done() <-chan struct{} { return ss.done }

func (ss *SAMSession) ended() bool {
	select {
	case <-ss.done:
		return true
	default:
		return false
	}
}

// watch reads the control connection until it ends, answering PING.
func (ss *SAMSession) watch(br *bufio.Reader) {
	defer close(ss.done)
	for {
		line, err := readSAMLine(br, MaxSAMLine)
		if err != nil {
			ss.ctrl.Close()
			return
		}
		// SAM 3.2 bridges may send "PING [text]", to be answered with
		// "PONG [text]"; a 3.0 or 3.1 bridge should send nothing here.
		if f := strings.Fields(line); len(f) > 0 && strings.EqualFold(f[0], "PING") {
			ss.ctrl.Write([]byte("PONG" + strings.TrimPrefix(strings.TrimSpace(line), f[0]) + "\n"))
		}
	}
}

// Close ends the session: it closes the control connection, upon which
// the bridge drops the destination and its streams. It waits for the
// session's goroutine to exit.
func (ss *SAMSession) Close() error {
	err := ss.ctrl.Close()
	<-ss.done
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// Dial opens a stream from the session's destination. network must be
// "tcp". addr is "HOST:PORT" where HOST is a .b32.i2p address, a base64
// destination, or an I2P host name, which the bridge looks up (NAMING
// LOOKUP); PORT is the I2P port, sent as TO_PORT, or 0 for none.
//
// The exchange: a new connection to the bridge, HELLO, then STREAM
// CONNECT ... SILENT=false; after STREAM STATUS RESULT=OK the connection
// is the stream. ctx bounds the exchange, not the stream. The returned
// connection's RemoteAddr is an [I2PAddr]. A bridge refusal is a
// *[SAMError] wrapping the RESULT's error, such as ErrSAMCantReachPeer.
func (ss *SAMSession) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	s := ss.sam
	fail := func(err error) (net.Conn, error) {
		return nil, &SAMError{Bridge: s.addr, Op: "STREAM CONNECT", Dest: addr, Err: err}
	}
	if network != "tcp" {
		return fail(errors.New("network " + quote(network) + " not supported (want tcp)"))
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return fail(err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || !isDigits(portStr) {
		return fail(errors.New("bad port " + quote(portStr)))
	}
	kind := classifyI2P(host)
	if kind == i2pInvalid {
		return fail(errors.New("not an I2P destination or host name"))
	}
	if ss.ended() {
		return fail(ErrSAMClosed)
	}
	c, br, _, err := s.open(ctx, "STREAM CONNECT", host)
	if err != nil {
		return nil, err
	}
	err = s.withCtx(ctx, c, func() error {
		dest := host
		if kind == i2pName {
			r, err := s.exchange(c, br, "NAMING LOOKUP", host, "NAMING LOOKUP NAME="+host, "NAMING", "REPLY")
			if err != nil {
				return err
			}
			dest = r.Args["VALUE"]
			if classifyI2P(dest) != i2pBase64 {
				return &SAMError{Bridge: s.addr, Op: "NAMING LOOKUP", Dest: host,
					Err: &protoError{"VALUE is not a base64 destination: " + quoteShort(dest)}}
			}
		}
		cmd := "STREAM CONNECT ID=" + ss.id + " DESTINATION=" + dest + " SILENT=false"
		if port != 0 {
			cmd += " TO_PORT=" + strconv.FormatUint(port, 10)
		}
		_, err := s.exchange(c, br, "STREAM CONNECT", host, cmd, "STREAM", "STATUS")
		return err
	})
	if err != nil {
		c.Close()
		return nil, withContextErr(ctx, err)
	}
	return &samConn{Conn: c, r: br, remote: I2PAddr{Dest: host, Port: int(port)}}, nil
}

// An I2PAddr is the far end of an I2P stream.
type I2PAddr struct {
	Dest string // as dialed: a .b32.i2p address, host name or base64 destination
	Port int    // the I2P port, 0 if none
}

// Network returns "i2p".
func (a I2PAddr) Network() string { return "i2p" }

// String returns "Dest:Port".
func (a I2PAddr) String() string { return net.JoinHostPort(a.Dest, strconv.Itoa(a.Port)) }

// samConn is a stream: the bridge connection, read through the buffer
// that may hold the first stream bytes.
type samConn struct {
	net.Conn
	r      *bufio.Reader
	remote I2PAddr
}

func (c *samConn) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *samConn) RemoteAddr() net.Addr       { return c.remote }

// Kinds of I2P host.
const (
	i2pInvalid = iota
	i2pB32     // *.b32.i2p, passed to the bridge as is
	i2pBase64  // a full destination
	i2pName    // a host name, looked up on the bridge
)

// classifyI2P says what kind of I2P host h is. Only characters that
// cannot break a SAM command line are accepted.
func classifyI2P(h string) int {
	if len(h) >= 516 && allBytes(strings.TrimRight(h, "="), isI2PBase64) && len(h)-len(strings.TrimRight(h, "=")) <= 2 {
		return i2pBase64
	}
	if h == "" || len(h) > 255 || !allBytes(h, func(c byte) bool { return isAlnum(c) || c == '.' || c == '-' || c == '_' || c == '~' }) {
		return i2pInvalid
	}
	if l := strings.ToLower(h); strings.HasSuffix(l, ".b32.i2p") && len(l) > len(".b32.i2p") {
		return i2pB32
	}
	return i2pName
}

func isI2PBase64(c byte) bool { return isAlnum(c) || c == '-' || c == '~' }

// isSAMToken reports whether s can be sent as one word of a SAM command.
func isSAMToken(s string) bool {
	return s != "" && allBytes(s, func(c byte) bool { return c > ' ' && c < 0x7f && c != '"' })
}
