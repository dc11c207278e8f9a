package foolscap

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file holds what the client and the server sides of connection
// negotiation share (docs/foolscap-protocol.md §3): the wire constants, the block
// codec, the HTTP-style upgrade request and response, version and vocab
// choice, and the error types.

// MaxBlockSize is the largest negotiation block (HTTP upgrade request or
// response, hello, decision or error block) either side accepts, terminator
// included. Foolscap fails with "Header too long" beyond it.
const MaxBlockSize = 4096

// DefaultConnectTimeout is the whole-attempt timeout of [Dial] when the
// caller sets none, Foolscap's TubConnector.CONNECTION_TIMEOUT.
const DefaultConnectTimeout = 120 * time.Second

// DefaultServerTimeout is how long a [Listener] lets one inbound connection
// negotiate before dropping it, Foolscap's SERVER_TIMEOUT.
const DefaultServerTimeout = 120 * time.Second

// Banana protocol versions this package speaks: only 3, like Foolscap 21.7.
const (
	bananaMinVersion = 3
	bananaMaxVersion = 3
)

// Initial vocab table indexes we offer (0 = empty, 1 = the 25-word table) and
// the first four hex digits of SHA-1 over each table's words joined by NUL.
const (
	vocabMin = 0
	vocabMax = 1
)

var vocabHashes = [...]string{0: "da39", 1: "bb33"}

// Block keys.
const (
	keyNegotiationRange = "banana-negotiation-range"
	keyVocabRange       = "initial-vocab-table-range"
	keyLastConnection   = "last-connection"
	keyIncarnation      = "my-incarnation"
	keyTubID            = "my-tub-id"
	keyDecisionVersion  = "banana-decision-version"
	keyCurrentConn      = "current-connection"
	keyVocabIndex       = "initial-vocab-table-index"
	keyError            = "error"
	keyOldVersion       = "banana-negotiation-version"
	keyForced           = "negotiation-forced"
)

// Error texts the peer sends in error blocks and 500 responses, as Foolscap
// words them.
const (
	msgInternalError  = "internal server error, see logs"
	msgDuplicate      = "Duplicate connection"
	msgNeedEncryption = "secure Tubs require encryption"
	msgUnknownTubID   = "unknown TubID "
)

var (
	blockEnd          = []byte("\r\n\r\n")
	upgradeHeader     = []byte("Upgrade: TLS/1.0")
	switchingResponse = []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: TLS/1.0, PB/1.0\r\nConnection: Upgrade\r\n\r\n")
	serverErrorPrefix = "Internal Server Error: "
)

// Phase names a step of connection establishment. It is used in
// [NegotiationError] and in [Timings], and is meant as a bounded metric label.
type Phase string

// The phases of one connection attempt, in order.
const (
	PhaseDial     Phase = "dial"     // TCP (or proxy) connect
	PhaseUpgrade  Phase = "upgrade"  // plaintext GET /id/<tubid> and its 101 reply
	PhaseTLS      Phase = "tls"      // TLS handshake and certificate pinning
	PhaseHello    Phase = "hello"    // hello blocks, version choice, identity checks
	PhaseDecision Phase = "decision" // decision block, duplicate-connection rules
)

// Role is which side of a connection makes the negotiation decision: the one
// whose TubID string compares greater is the master (docs/foolscap-protocol.md §3.4).
type Role int

// Roles.
const (
	RoleSlave  Role = iota // the peer decided
	RoleMaster             // we decided
)

// String returns "master" or "slave".
func (r Role) String() string {
	switch r {
	case RoleMaster:
		return "master"
	case RoleSlave:
		return "slave"
	default:
		return "Role(" + strconv.Itoa(int(r)) + ")"
	}
}

// Sentinel errors. Match them with [errors.Is].
var (
	// ErrNoLocationHints means a FURL yielded no usable connection hint, so
	// there was nothing to dial (Foolscap's NoLocationHintsError).
	ErrNoLocationHints = errors.New("foolscap: no location hints")
	// ErrDuplicateConnection means the master rejected the connection as a
	// duplicate of one it already has to the same peer (docs/foolscap-protocol.md
	// §3.5). A [RemoteNegotiationError] whose message is "Duplicate
	// connection" matches it.
	ErrDuplicateConnection = errors.New("foolscap: duplicate connection")
	// ErrWrongTubID means the peer's hello claims another TubID than the
	// one expected (the FURL's, or its certificate's). A certificate that
	// does not hash to the FURL's TubID is reported as *tubtls.MismatchError
	// instead, whose message also says "wrong tubid".
	ErrWrongTubID = errors.New("foolscap: wrong tubid")
	// ErrBlockTooLong means a negotiation block exceeded [MaxBlockSize].
	ErrBlockTooLong = errors.New("foolscap: negotiation block too long")
	// ErrNoPeerCertificate means the TLS client presented no certificate;
	// Foolscap needs one on both sides.
	ErrNoPeerCertificate = errors.New("foolscap: peer presented no certificate")
)

// NegotiationError reports the failure of one connection attempt: which
// hint, in which phase, and why. Err, when set, is the cause (a net error,
// a TLS error, *tubtls.MismatchError, *RemoteNegotiationError, a context
// error, or a sentinel such as [ErrWrongTubID]).
type NegotiationError struct {
	Phase Phase  // where it failed
	Hint  string // the connection hint (client) or remote address (server); may be empty
	Msg   string // what went wrong, in words
	Err   error  // underlying cause; may be nil
}

func (e *NegotiationError) Error() string {
	var b strings.Builder
	b.WriteString("foolscap: ")
	if e.Hint != "" {
		b.WriteString(e.Hint)
		b.WriteString(": ")
	}
	b.WriteString(string(e.Phase))
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *NegotiationError) Unwrap() error { return e.Err }

// Timeout reports whether the attempt failed because a deadline passed.
func (e *NegotiationError) Timeout() bool {
	if errors.Is(e.Err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(e.Err, &ne) && ne.Timeout()
}

// RemoteNegotiationError is an error the peer reported during negotiation:
// the message of a 500 response or of an error block.
type RemoteNegotiationError struct {
	Msg string
}

func (e *RemoteNegotiationError) Error() string {
	return "foolscap: peer reported: " + e.Msg
}

// Is makes a "Duplicate connection" report match [ErrDuplicateConnection].
func (e *RemoteNegotiationError) Is(target error) bool {
	return target == ErrDuplicateConnection && e.Msg == msgDuplicate
}

// BlockError reports a malformed negotiation block.
type BlockError struct {
	Line int    // 1-based line number within the block; 0 for the whole block
	Msg  string // what is wrong
}

func (e *BlockError) Error() string {
	if e.Line == 0 {
		return "foolscap: bad negotiation block: " + e.Msg
	}
	return fmt.Sprintf("foolscap: bad negotiation block: line %d: %s", e.Line, e.Msg)
}

// parseBlock parses a negotiation block with its terminating blank line
// removed: lines "key: value" separated by CRLF. Like Foolscap, it splits
// each line at the first colon, lowercases the key and left-strips the
// value; a later duplicate key wins. A line without a colon is an error
// (Foolscap fails with an internal error there).
func parseBlock(b []byte) (map[string]string, error) {
	if len(b)+len(blockEnd) > MaxBlockSize {
		return nil, ErrBlockTooLong
	}
	m := make(map[string]string, 6)
	line := 0
	for len(b) > 0 || line == 0 {
		line++
		var l []byte
		l, b, _ = bytes.Cut(b, []byte("\r\n"))
		k, v, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			return nil, &BlockError{Line: line, Msg: fmt.Sprintf("no colon in %q", truncate(l, 64))}
		}
		m[strings.ToLower(string(k))] = string(bytes.TrimLeft(v, " \t\r\n\v\f"))
	}
	return m, nil
}

// appendBlock appends the encoding of m, keys sorted, and the blank line.
func appendBlock(dst []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		dst = append(dst, k...)
		dst = append(dst, ": "...)
		dst = append(dst, m[k]...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// errorBlock is what a side sends after TLS has started when it gives up.
func errorBlock(msg string) []byte {
	return appendBlock(nil, map[string]string{keyDecisionVersion: "1", keyError: sanitizeMsg(msg)})
}

func sanitizeMsg(msg string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
}

// readBlock reads one block from r up to and including the blank line that
// ends it, and returns it without the terminator. It never reads a byte past
// the terminator: each Read asks for at most as many bytes as the
// terminator still needs, so whatever follows (TLS, Banana) stays unread.
// More than max bytes without a terminator is ErrBlockTooLong.
func readBlock(r io.Reader, max int) ([]byte, error) {
	buf := make([]byte, 0, 256)
	matched := 0 // bytes of "\r\n\r\n" matched at the end of buf
	for {
		need := len(blockEnd) - matched
		if len(buf)+need > cap(buf) {
			buf = slices.Grow(buf, len(buf)+need)
		}
		n, err := r.Read(buf[len(buf) : len(buf)+need])
		for _, c := range buf[len(buf) : len(buf)+n] {
			switch {
			case c == blockEnd[matched]:
				matched++
			case c == '\r':
				matched = 1
			default:
				matched = 0
			}
		}
		buf = buf[:len(buf)+n]
		if matched == len(blockEnd) {
			return buf[:len(buf)-len(blockEnd)], nil
		}
		if len(buf) >= max {
			return buf, ErrBlockTooLong
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return buf, err
		}
	}
}

// readBlockPlain is readBlock for the plaintext upgrade exchange, where a
// byte-at-a-time read would be a system call each: it reads whatever has
// arrived (never more than limit bytes in all) and returns the bytes that
// followed the terminator as rest. The caller must read rest before
// anything else from r (see withPrefix). Peers do not normally send
// anything after the upgrade request or response until they get an answer,
// so rest is normally empty.
func readBlockPlain(r io.Reader, limit int) (block, rest []byte, err error) {
	buf := make([]byte, 0, 256)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, len(buf))
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), limit)])
		from := max(0, len(buf)-len(blockEnd)+1) // the terminator may straddle reads
		buf = buf[:len(buf)+n]
		if i := bytes.Index(buf[from:], blockEnd); i >= 0 {
			end := from + i
			return buf[:end], buf[end+len(blockEnd):], nil
		}
		if len(buf) >= limit {
			return buf, nil, ErrBlockTooLong
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return buf, nil, err
		}
	}
}

// prefixConn is a net.Conn whose first reads return rest.
type prefixConn struct {
	net.Conn
	rest []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.rest) > 0 {
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// withPrefix returns c with rest put back in front of what is still to be
// read from it.
func withPrefix(c net.Conn, rest []byte) net.Conn {
	if len(rest) == 0 {
		return c
	}
	return &prefixConn{Conn: c, rest: rest}
}

// upgradeRequest returns the client's plaintext request (docs/foolscap-protocol.md
// §3.1).
func upgradeRequest(tubID, host string) []byte {
	b := make([]byte, 0, 128)
	b = append(b, "GET /id/"...)
	b = append(b, tubID...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nUpgrade: TLS/1.0\r\nConnection: Upgrade\r\n\r\n"...)
	return b
}

// parseUpgradeRequest parses the client's request (without the blank line)
// as Foolscap's server does and returns the requested TubID, which may be
// empty. A request Foolscap would call "not right" is a *BlockError.
func parseUpgradeRequest(b []byte) (tubID string, err error) {
	first, _, _ := bytes.Cut(b, []byte("\r\n"))
	if !bytes.HasPrefix(first, []byte("GET ")) {
		return "", &BlockError{Line: 1, Msg: fmt.Sprintf("not right: not a GET: %q", truncate(first, 64))}
	}
	fields := bytes.Fields(first)
	if len(fields) != 3 {
		return "", &BlockError{Line: 1, Msg: fmt.Sprintf("not right: %d fields in request line, want 3", len(fields))}
	}
	url, ok := bytes.CutPrefix(fields[1], []byte("/id/"))
	if !ok {
		return "", &BlockError{Line: 1, Msg: fmt.Sprintf("not right: path %q does not start with /id/", truncate(fields[1], 64))}
	}
	return string(url), nil
}

// parseUpgradeResponse checks the server's reply (without the blank line):
// the status must be 101 and the block must contain "Upgrade: TLS/1.0". A
// 500 reply yields *RemoteNegotiationError with the server's message;
// anything else a *BlockError.
func parseUpgradeResponse(b []byte) error {
	first, _, _ := bytes.Cut(b, []byte("\r\n"))
	fields := bytes.Fields(first)
	if len(fields) < 2 {
		return &BlockError{Line: 1, Msg: fmt.Sprintf("bad status line %q", truncate(first, 80))}
	}
	switch string(fields[1]) {
	case "101":
		if !bytes.Contains(b, upgradeHeader) {
			return &BlockError{Msg: fmt.Sprintf("101 reply without TLS upgrade: %q", truncate(b, 200))}
		}
		return nil
	case "500":
		s := string(first)
		if _, msg, ok := strings.Cut(s, serverErrorPrefix); ok {
			return &RemoteNegotiationError{Msg: msg}
		}
		return &RemoteNegotiationError{Msg: s}
	default:
		return &BlockError{Line: 1, Msg: fmt.Sprintf("expected 101 Switching Protocols, got %q", truncate(first, 80))}
	}
}

// serverErrorResponse is the plaintext failure reply.
func serverErrorResponse(msg string) []byte {
	return []byte("HTTP/1.1 500 " + serverErrorPrefix + sanitizeMsg(msg) + "\r\n\r\n")
}

// parseRange parses "min max".
func parseRange(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok {
		return 0, 0, fmt.Errorf("range %q is not two numbers", s)
	}
	if lo, err = strconv.Atoi(strings.TrimSpace(a)); err != nil {
		return 0, 0, fmt.Errorf("range %q: %w", s, err)
	}
	if hi, err = strconv.Atoi(strings.TrimSpace(b)); err != nil {
		return 0, 0, fmt.Errorf("range %q: %w", s, err)
	}
	return lo, hi, nil
}

// bestOverlap is Foolscap's best_overlap: the highest value in both ranges.
func bestOverlap(myMin, myMax, yourMin, yourMax int, name string) (int, error) {
	best := min(myMax, yourMax)
	if best < myMin {
		//lint:ignore ST1005 Foolscap's own text, sent to the peer as is
		return 0, fmt.Errorf("I can't handle %s %d", name, best)
	}
	if best < yourMin {
		//lint:ignore ST1005 Foolscap's own text, sent to the peer as is
		return 0, fmt.Errorf("You can't handle %s %d", name, best)
	}
	return best, nil
}

// hello is what we send right after TLS starts.
func helloBlock(tubID, incarnation, lastConnection string) []byte {
	m := map[string]string{
		keyNegotiationRange: fmt.Sprintf("%d %d", bananaMinVersion, bananaMaxVersion),
		keyVocabRange:       fmt.Sprintf("%d %d", vocabMin, vocabMax),
		keyIncarnation:      incarnation,
		keyTubID:            tubID,
	}
	if lastConnection != "" {
		m[keyLastConnection] = lastConnection
	}
	return appendBlock(nil, m)
}

// helloTerms are the results of evaluating the peer's hello.
type helloTerms struct {
	tubID   string
	version int
	vocab   int // valid when we are the master
}

// evaluateHello checks the peer's hello against its certificate TubID:
// error key, protocol version overlap, my-tub-id. The returned error's
// text is suitable for an error block when it is a plain error; it is
// *RemoteNegotiationError when the peer reported a failure.
func evaluateHello(h map[string]string, certTubID string) (helloTerms, error) {
	var t helloTerms
	if msg, ok := h[keyError]; ok {
		return t, &RemoteNegotiationError{Msg: msg}
	}
	r, ok := h[keyNegotiationRange]
	if !ok {
		if _, old := h[keyOldVersion]; old {
			//lint:ignore ST1005 Foolscap's own text, sent to the peer as is
			return t, errors.New("Peer is speaking foolscap-0.0.5 or earlier, which is not compatible with this version. Please upgrade the peer.")
		}
		//lint:ignore ST1005 Foolscap's own text, sent to the peer as is
		return t, errors.New("No valid banana-negotiation sequence seen")
	}
	lo, hi, err := parseRange(r)
	if err != nil {
		return t, fmt.Errorf("%s: %w", keyNegotiationRange, err)
	}
	if t.version, err = bestOverlap(bananaMinVersion, bananaMaxVersion, lo, hi, "banana version"); err != nil {
		return t, err
	}
	if f := h[keyForced]; strings.EqualFold(f, "true") {
		return t, errors.New("negotiation-forced is not supported")
	}
	t.tubID = h[keyTubID]
	if t.tubID == "" {
		return t, errors.New("hello has no my-tub-id")
	}
	if t.tubID != certTubID {
		return t, fmt.Errorf("%w: hello claims my-tub-id %s, certificate is %s", ErrWrongTubID, t.tubID, certTubID)
	}
	vr, ok := h[keyVocabRange]
	if !ok {
		vr = "0 0"
	}
	vlo, vhi, err := parseRange(vr)
	if err != nil {
		return t, fmt.Errorf("%s: %w", keyVocabRange, err)
	}
	if t.vocab, err = bestOverlap(vocabMin, vocabMax, vlo, vhi, "initial vocab set"); err != nil {
		return t, err
	}
	return t, nil
}

// decisionBlock is what the master sends.
func decisionBlock(version, vocab int, incarnation string, seq uint64) []byte {
	return appendBlock(nil, map[string]string{
		keyDecisionVersion: strconv.Itoa(version),
		keyCurrentConn:     incarnation + " " + strconv.FormatUint(seq, 10),
		keyVocabIndex:      strconv.Itoa(vocab) + " " + vocabHashes[vocab],
	})
}

// decisionTerms are what the slave learns from the master's decision.
type decisionTerms struct {
	vocab          int
	currentConnIR  string // master's incarnation; "" if the decision had none
	currentConnSeq uint64
}

// acceptDecision checks a decision block as Foolscap's slave does.
func acceptDecision(d map[string]string) (decisionTerms, error) {
	var t decisionTerms
	v := d[keyDecisionVersion]
	if v == "" {
		//lint:ignore ST1005 Foolscap's own text, sent to the peer as is
		return t, errors.New("No banana-decision-version value")
	}
	if msg, ok := d[keyError]; ok {
		return t, &RemoteNegotiationError{Msg: msg}
	}
	ver, err := strconv.Atoi(v)
	if err != nil || ver < 1 || ver > bananaMaxVersion {
		//lint:ignore ST1005 Foolscap's own text, sent to the peer as is
		return t, fmt.Errorf("I cannot handle banana-decision-version value of %q", v)
	}
	if s := d[keyVocabIndex]; s != "" {
		idx, hash, _ := strings.Cut(s, " ")
		if t.vocab, err = strconv.Atoi(idx); err != nil {
			return t, fmt.Errorf("bad %s %q", keyVocabIndex, s)
		}
		if t.vocab < vocabMin || t.vocab > vocabMax {
			//lint:ignore ST1005 Foolscap's own text, sent to the peer as is
			return t, fmt.Errorf("I can't handle initial vocab table index %d", t.vocab)
		}
		if hash = strings.TrimSpace(hash); t.vocab > 0 && hash != vocabHashes[t.vocab] {
			//lint:ignore ST1005 Foolscap's own text, sent to the peer as is
			return t, fmt.Errorf("Our hash for vocab-table-index %d (%s) does not match your hash (%s)", t.vocab, vocabHashes[t.vocab], hash)
		}
	}
	if s := d[keyCurrentConn]; s != "" {
		ir, seq, ok := strings.Cut(s, " ")
		n, err := strconv.ParseUint(strings.TrimSpace(seq), 10, 64)
		if !ok || ir == "" || err != nil {
			return t, fmt.Errorf("bad %s %q", keyCurrentConn, s)
		}
		t.currentConnIR, t.currentConnSeq = ir, n
	}
	return t, nil
}

// NewIncarnation returns a fresh incarnation string: 16 lowercase hex digits
// of randomness, as Foolscap's Tub makes once per process.
func NewIncarnation() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validIncarnation reports whether s has the 16-hex-digit form.
func validIncarnation(s string) bool {
	if len(s) != 16 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// aLongTimeAgo is a deadline in the past, used to unblock I/O on
// cancellation.
var aLongTimeAgo = time.Unix(1, 0)

// watchContext makes ctx reach c: when ctx is done, c's deadline moves into
// the past so blocked I/O returns (and by then ctx.Err is set, so callers
// report cancellation rather than an i/o timeout). The returned stop
// function undoes this; it reports false if ctx had already fired (the
// caller should then treat the operation as cancelled).
func watchContext(ctx context.Context, c net.Conn) (stop func() bool) {
	cancelStop := context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
	return cancelStop
}

// ctxErr returns ctx's error when ctx is done and err is what its
// cancellation causes (a deadline error from watchContext, a closed
// connection, a context error); otherwise err. I/O failures caused by
// cancellation then read as such rather than as i/o timeouts, and genuine
// failures keep their cause.
func ctxErr(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if cerr == nil || err == nil {
		return err
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return cerr
	}
	return err
}

// sniffConn records the first bytes read through it, so that a failed TLS
// handshake can be explained when the peer sent a plaintext error block
// instead of TLS (docs/foolscap-protocol.md §3.7).
type sniffConn struct {
	net.Conn
	seen []byte
	done bool // stop recording (set once the handshake is over)
}

func (s *sniffConn) Read(p []byte) (int, error) {
	n, err := s.Conn.Read(p)
	if room := MaxBlockSize - len(s.seen); !s.done && room > 0 {
		s.seen = append(s.seen, p[:min(n, room)]...)
	}
	return n, err
}

// plaintextError returns the error block the peer sent in clear, if the
// bytes seen look like one. It reads the rest of the block (bounded by the
// caller's deadline) when only part of it was seen.
func (s *sniffConn) plaintextError() (string, bool) {
	if !bytes.HasPrefix(s.seen, []byte(keyDecisionVersion)) && !bytes.HasPrefix(s.seen, []byte(keyError)) {
		return "", false
	}
	b := s.seen
	if !bytes.Contains(b, blockEnd) {
		rest, _ := readBlock(s.Conn, MaxBlockSize-len(b))
		b = append(b, rest...)
	}
	blk, _, _ := bytes.Cut(b, blockEnd)
	m, err := parseBlock(blk)
	if err != nil {
		return string(truncate(blk, 200)), true
	}
	if msg, ok := m[keyError]; ok {
		return msg, true
	}
	return string(truncate(blk, 200)), true
}
