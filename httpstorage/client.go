package httpstorage

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"mime"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/storage"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// ProtoHTTPS is the protocol name of this implementation.
const ProtoHTTPS = "https"

// Time limits, as Tahoe's client has them.
const (
	// DefaultHeaderTimeout bounds the wait for an answer's headers.
	DefaultHeaderTimeout = 60 * time.Second
	// DefaultBodyTimeout bounds each silence while a body is read.
	DefaultBodyTimeout = 60 * time.Second
	// MaxIdleConns is how many idle connections one server's transport
	// keeps (Tahoe: 10), and IdleTimeout how long (Tahoe: 240 s).
	MaxIdleConns = 10
	IdleTimeout  = 240 * time.Second
)

// Config configures a [Client].
type Config struct {
	// Dial opens the TCP connection (direct, or through Tor's SOCKS port
	// with this server's own credentials). Required.
	Dial hints.DialFunc
	// HeaderTimeout and BodyTimeout: zero means the defaults.
	HeaderTimeout, BodyTimeout time.Duration
	// MaxCBOR bounds a CBOR answer; zero means DefaultMaxCBOR.
	MaxCBOR int64
	// TLSConfig, if set, adjusts the TLS configuration (tests set
	// MaxVersion). The certificate pin and the absence of session
	// resumption are restored after it.
	TLSConfig func(*tls.Config)
}

// Client speaks HTTPS storage to one server. It owns its own
// http.Transport: connections, TLS state and idle pool are never shared
// with another server. It implements storage.Server.
type Client struct {
	nurl   hints.NURL
	cfg    Config
	tr     *http.Transport
	hc     *http.Client
	auth   string
	prefix string

	mu      sync.Mutex
	tlsInfo tls.ConnectionState // of the last handshake
}

var _ storage.Server = (*Client)(nil)

// New returns a client for the server n names. It opens no connection.
func New(n hints.NURL, cfg Config) *Client {
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = DefaultHeaderTimeout
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.MaxCBOR <= 0 {
		cfg.MaxCBOR = DefaultMaxCBOR
	}
	c := &Client{
		nurl:   n,
		cfg:    cfg,
		auth:   AuthorizationValue(n.Swissnum),
		prefix: "https://" + n.Addr() + "/storage/v1",
	}
	c.tr = &http.Transport{
		DialTLSContext:         c.dialTLS,
		TLSNextProto:           map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only
		DisableCompression:     true,
		MaxIdleConnsPerHost:    MaxIdleConns,
		MaxIdleConns:           MaxIdleConns,
		IdleConnTimeout:        IdleTimeout,
		ResponseHeaderTimeout:  cfg.HeaderTimeout,
		MaxResponseHeaderBytes: 64 << 10,
		WriteBufferSize:        64 << 10, // whole TLS records for share data
		ReadBufferSize:         64 << 10,
		Proxy:                  nil,
	}
	// No cookie jar, no redirects: a server cannot make the client carry
	// state or go elsewhere.
	c.hc = &http.Client{
		Transport:     c.tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c
}

// AuthorizationValue is the Authorization header of every request: the
// scheme "Tahoe-LAFS" and the standard padded base64 of the swissnum's
// ASCII text.
func AuthorizationValue(swissnum string) string {
	return "Tahoe-LAFS " + base64.StdEncoding.EncodeToString([]byte(swissnum))
}

// TLSConfig returns the client TLS configuration for a server pinned by
// n: no CA, no host name, no dates, no client certificate, no SNI, no
// ALPN, no session resumption; every certificate the server presents must
// have the NURL's SPKI hash. A mismatch is a *tubtls.MismatchError, as a
// wrong TubID is for Foolscap.
func TLSConfig(n hints.NURL) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS12,
		InsecureSkipVerify:     true, // the SPKI pin in VerifyConnection replaces chain checks
		SessionTicketsDisabled: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return tubtls.ErrNoPeerCertificate
			}
			for _, cert := range cs.PeerCertificates {
				if !n.MatchesCert(cert) {
					return &tubtls.MismatchError{Want: n.SPKIHash, Got: hints.SPKIHash(cert)}
				}
			}
			return nil
		},
	}
}

func (c *Client) dialTLS(ctx context.Context, _, _ string) (net.Conn, error) {
	raw, err := c.cfg.Dial(ctx, "tcp", c.nurl.Addr())
	if err != nil {
		return nil, err
	}
	tc := TLSConfig(c.nurl)
	if c.cfg.TLSConfig != nil {
		verify := tc.VerifyConnection
		c.cfg.TLSConfig(tc)
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = verify
		tc.ClientSessionCache = nil
		tc.SessionTicketsDisabled = true
		tc.ServerName = ""
	}
	conn := tls.Client(&silenceConn{Conn: raw, d: c.cfg.BodyTimeout}, tc)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	c.mu.Lock()
	c.tlsInfo = conn.ConnectionState()
	c.mu.Unlock()
	return conn, nil
}

// silenceConn fails a read after d without data: a server that stops
// sending in the middle of an answer cannot hold the request forever.
type silenceConn struct {
	net.Conn
	d time.Duration
}

func (s *silenceConn) Read(p []byte) (int, error) {
	s.Conn.SetReadDeadline(time.Now().Add(s.d))
	return s.Conn.Read(p)
}

// NURL returns the NURL the client was made for.
func (c *Client) NURL() hints.NURL { return c.nurl }

// Protocol returns "https".
func (c *Client) Protocol() string { return ProtoHTTPS }

// TLSState returns the state of the last TLS handshake.
func (c *Client) TLSState() tls.ConnectionState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tlsInfo
}

// Close closes the client's idle connections. Requests in flight end
// with their contexts.
func (c *Client) Close() error {
	c.tr.CloseIdleConnections()
	return nil
}

// secret is one X-Tahoe-Authorization line.
type secret struct {
	kind  string
	value []byte
}

const (
	kindRenew  = "lease-renew-secret"
	kindCancel = "lease-cancel-secret"
	kindUpload = "upload-secret"
	kindWE     = "write-enabler"
)

func leaseSecrets(l storage.LeaseSecrets) []secret {
	return []secret{{kindRenew, l.Renew[:]}, {kindCancel, l.Cancel[:]}}
}

// request is one HTTP exchange.
type request struct {
	op      string
	method  string
	path    string
	secrets []secret
	body    []byte
	ctype   string // of body
	header  map[string]string
}

// do sends r and returns the answer if its status is 2xx; any other
// status is a *storage.ServerError, a transport failure a
// *storage.ConnError.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.prefix+r.path, body)
	if err != nil {
		return nil, &storage.ConnError{Op: r.op, Protocol: ProtoHTTPS, Err: err}
	}
	h := req.Header
	h["User-Agent"] = []string{""} // sends none
	h.Set("Authorization", c.auth)
	h.Set("Accept", "application/cbor")
	for _, s := range r.secrets {
		h.Add("X-Tahoe-Authorization", s.kind+" "+base64.StdEncoding.EncodeToString(s.value))
	}
	if r.ctype != "" {
		h.Set("Content-Type", r.ctype)
	}
	for _, k := range slices.Sorted(maps.Keys(r.header)) {
		h.Set(k, r.header[k])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &storage.ConnError{Op: r.op, Protocol: ProtoHTTPS, Err: err}
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
		return nil, &storage.ServerError{Op: r.op, Protocol: ProtoHTTPS, Status: resp.StatusCode, Msg: printable(msg)}
	}
	return resp, nil
}

func printable(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
}

func protoErr(op string, format string, args ...any) error {
	return &storage.ProtocolError{Op: op, Protocol: ProtoHTTPS, Err: fmt.Errorf(format, args...)}
}

// contentType checks an answer's media type.
func contentType(op string, resp *http.Response, want string) error {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != want {
		return protoErr(op, "content type %q, want %s", resp.Header.Get("Content-Type"), want)
	}
	return nil
}

// readBody reads at most max bytes of a body, failing over it.
func readBody(op string, resp *http.Response, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, &storage.ConnError{Op: op, Protocol: ProtoHTTPS, Err: err}
	}
	if int64(len(b)) > max {
		return nil, &storage.ProtocolError{Op: op, Protocol: ProtoHTTPS, Err: fmt.Errorf("body over %d bytes: %w", max, storage.ErrTooLarge)}
	}
	return b, nil
}

// cborCall sends r and decodes its CBOR answer into out (nil: no body is
// expected).
func (c *Client) cborCall(ctx context.Context, r request, out any) (int, error) {
	resp, err := c.do(ctx, r)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, MaxErrorBody))
		return resp.StatusCode, nil
	}
	if err := contentType(r.op, resp, "application/cbor"); err != nil {
		return 0, err
	}
	b, err := readBody(r.op, resp, c.cfg.MaxCBOR)
	if err != nil {
		return 0, err
	}
	if len(b) == 0 {
		return 0, protoErr(r.op, "%d answer without a body", resp.StatusCode)
	}
	if err := decodeInto(b, out); err != nil {
		return 0, protoErr(r.op, "CBOR: %w", err)
	}
	return resp.StatusCode, nil
}

func decodeInto(b []byte, out any) error {
	if v, ok := out.(*storage.Version); ok {
		d, err := DecodeVersion(b)
		if err != nil {
			return err
		}
		*v = d
		return nil
	}
	return decMode.Unmarshal(b, out)
}

func cborBody(v any) []byte {
	b, err := encMode.Marshal(v)
	if err != nil {
		panic(err) // only our own types are encoded
	}
	return b
}

// GetVersion is GET /version.
func (c *Client) GetVersion(ctx context.Context) (storage.Version, error) {
	var v storage.Version
	_, err := c.cborCall(ctx, request{op: "get_version", method: "GET", path: "/version"}, &v)
	return v, err
}

func siPath(kind string, si storage.Index) string { return "/" + kind + "/" + si.String() }

// AllocateBuckets is POST /immutable/SI, with a fresh upload secret.
func (c *Client) AllocateBuckets(ctx context.Context, si storage.Index, lease storage.LeaseSecrets, shares []storage.ShareNum, allocatedSize uint64) (storage.Allocation, error) {
	const op = "allocate_buckets"
	if err := storage.CheckShareNums(op, shares); err != nil {
		return storage.Allocation{}, err
	}
	if allocatedSize > math.MaxInt64 {
		return storage.Allocation{}, storage.ArgError(op, "allocated size %d out of range", allocatedSize)
	}
	up := storage.RandomSecret()
	var resp AllocateResponse
	_, err := c.cborCall(ctx, request{
		op: op, method: "POST", path: siPath("immutable", si),
		secrets: append(leaseSecrets(lease), secret{kindUpload, up[:]}),
		body:    cborBody(AllocateRequest{ShareNumbers: ShareSet(shares), AllocatedSize: allocatedSize}),
		ctype:   "application/cbor",
	}, &resp)
	if err != nil {
		return storage.Allocation{}, err
	}
	out := storage.Allocation{AlreadyHave: []storage.ShareNum(resp.AlreadyHave), Writers: make(map[storage.ShareNum]storage.BucketWriter)}
	if out.AlreadyHave == nil {
		out.AlreadyHave = []storage.ShareNum{}
	}
	for _, n := range resp.Allocated {
		out.Writers[n] = &writer{c: c, si: si, n: n, size: allocatedSize, secret: up}
	}
	return out, nil
}

type writer struct {
	c      *Client
	si     storage.Index
	n      storage.ShareNum
	size   uint64
	secret storage.Secret

	mu       sync.Mutex
	complete bool
}

func (w *writer) path() string { return siPath("immutable", w.si) + "/" + strconv.Itoa(int(w.n)) }

// Write is a PATCH with Content-Range; a 201 says the share is complete.
func (w *writer) Write(ctx context.Context, offset uint64, data []byte) error {
	const op = "write"
	if len(data) > storage.MaxWriteLength {
		return storage.ArgError(op, "%d bytes, more than %d", len(data), storage.MaxWriteLength)
	}
	if len(data) == 0 {
		return nil
	}
	if offset > math.MaxInt64-uint64(len(data)) {
		return storage.ArgError(op, "offset %d out of range", offset)
	}
	var prog UploadProgress
	status, err := w.c.cborCall(ctx, request{
		op: op, method: "PATCH", path: w.path(),
		secrets: []secret{{kindUpload, w.secret[:]}},
		body:    data,
		ctype:   "application/octet-stream",
		header:  map[string]string{"Content-Range": fmt.Sprintf("bytes %d-%d/*", offset, offset+uint64(len(data))-1)},
	}, &prog)
	if err != nil {
		return err
	}
	if len(prog.Required) > storage.MaxShares*64 {
		return protoErr(op, "%d missing ranges: %w", len(prog.Required), storage.ErrTooLarge)
	}
	switch {
	case status == http.StatusCreated && len(prog.Required) == 0:
		w.mu.Lock()
		w.complete = true
		w.mu.Unlock()
	case status == http.StatusCreated:
		return protoErr(op, "201 with ranges still required")
	case status != http.StatusOK:
		return protoErr(op, "status %d", status)
	}
	return nil
}

// Close checks that a write completed the share: HTTPS storage has no
// close, the write of the last missing byte finishes the share.
func (w *writer) Close(ctx context.Context) error {
	w.mu.Lock()
	done := w.complete
	w.mu.Unlock()
	if !done {
		return fmt.Errorf("storage: close over https: %w", storage.ErrIncomplete)
	}
	return nil
}

// Abort is PUT .../abort.
func (w *writer) Abort(ctx context.Context) error {
	_, err := w.c.cborCall(ctx, request{
		op: "abort", method: "PUT", path: w.path() + "/abort",
		secrets: []secret{{kindUpload, w.secret[:]}},
	}, nil)
	return err
}

// GetBuckets is GET /immutable/SI/shares.
func (c *Client) GetBuckets(ctx context.Context, si storage.Index) (map[storage.ShareNum]storage.BucketReader, error) {
	var set ShareSet
	if _, err := c.cborCall(ctx, request{op: "get_buckets", method: "GET", path: siPath("immutable", si) + "/shares"}, &set); err != nil {
		return nil, err
	}
	out := make(map[storage.ShareNum]storage.BucketReader, len(set))
	for _, n := range set {
		out[n] = &reader{c: c, kind: "immutable", si: si, n: n}
	}
	return out, nil
}

type reader struct {
	c    *Client
	kind string
	si   storage.Index
	n    storage.ShareNum
}

func (r *reader) Read(ctx context.Context, offset, length uint64) ([]byte, error) {
	return r.c.readRange(ctx, "read", r.kind, r.si, r.n, offset, length)
}

func (r *reader) AdviseCorrupt(ctx context.Context, reason string) error {
	return r.c.AdviseCorruptShare(ctx, storage.ShareKind(r.kind), r.si, r.n, reason)
}

// readRange is a GET with one closed Range. A 404 is a *ServerError; the
// caller decides what a missing share means.
func (c *Client) readRange(ctx context.Context, op, kind string, si storage.Index, n storage.ShareNum, offset, length uint64) ([]byte, error) {
	if length > storage.MaxReadLength {
		return nil, storage.ArgError(op, "%d bytes, more than %d", length, storage.MaxReadLength)
	}
	if offset > math.MaxInt64-length {
		return nil, storage.ArgError(op, "offset %d out of range", offset)
	}
	if length == 0 {
		return []byte{}, nil // Tahoe's server refuses an empty range (416)
	}
	resp, err := c.do(ctx, request{
		op: op, method: "GET", path: siPath(kind, si) + "/" + strconv.Itoa(int(n)),
		header: map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", offset, offset+length-1)},
	})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNoContent:
		return []byte{}, nil
	case http.StatusPartialContent:
	default:
		return nil, protoErr(op, "status %d to a range read", resp.StatusCode)
	}
	if err := contentType(op, resp, "application/octet-stream"); err != nil {
		return nil, err
	}
	cr := resp.Header.Get("Content-Range")
	var a, b uint64
	if _, err := fmt.Sscanf(cr, "bytes %d-%d/*", &a, &b); err != nil || a != offset || b < a || b-a >= length {
		return nil, protoErr(op, "Content-Range %q for bytes=%d-%d", cr, offset, offset+length-1)
	}
	want := b - a + 1
	data := make([]byte, want) // want <= length <= MaxReadLength
	if _, err := io.ReadFull(resp.Body, data); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, protoErr(op, "body shorter than Content-Range %q", cr)
		}
		return nil, &storage.ConnError{Op: op, Protocol: ProtoHTTPS, Err: err}
	}
	if n, _ := resp.Body.Read(make([]byte, 1)); n > 0 {
		return nil, &storage.ProtocolError{Op: op, Protocol: ProtoHTTPS, Err: fmt.Errorf("body longer than Content-Range %q: %w", cr, storage.ErrTooLarge)}
	}
	return data, nil
}

// SlotReadv lists the shares if none are named, then reads each vector of
// each share with its own GET, in parallel. A named share the server does
// not hold (404) is left out, as over Foolscap; the reads are not atomic.
func (c *Client) SlotReadv(ctx context.Context, si storage.Index, shares []storage.ShareNum, readv []storage.ReadVector) (map[storage.ShareNum][][]byte, error) {
	const op = "slot_readv"
	if err := storage.CheckShareNums(op, shares); err != nil {
		return nil, err
	}
	if err := storage.CheckReadVectors(op, readv); err != nil {
		return nil, err
	}
	if len(shares) == 0 {
		var set ShareSet
		if _, err := c.cborCall(ctx, request{op: op, method: "GET", path: siPath("mutable", si) + "/shares"}, &set); err != nil {
			return nil, err
		}
		shares = set
	}
	type result struct {
		n    storage.ShareNum
		i    int
		data []byte
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan result)
	sem := make(chan struct{}, MaxIdleConns)
	var wg sync.WaitGroup
	for _, n := range shares {
		for i, v := range readv {
			wg.Add(1)
			go func() {
				defer wg.Done()
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					results <- result{n: n, i: i, err: &storage.ConnError{Op: op, Protocol: ProtoHTTPS, Err: ctx.Err()}}
					return
				}
				data, err := c.readRange(ctx, op, "mutable", si, n, v.Offset, v.Size)
				<-sem
				results <- result{n, i, data, err}
			}()
		}
	}
	go func() { wg.Wait(); close(results) }()
	out := make(map[storage.ShareNum][][]byte)
	missing := make(map[storage.ShareNum]bool)
	var firstErr error
	for r := range results {
		var se *storage.ServerError
		switch {
		case errors.As(r.err, &se) && se.Status == http.StatusNotFound:
			missing[r.n] = true
		case r.err != nil:
			if firstErr == nil {
				firstErr = r.err
				cancel()
			}
		default:
			if out[r.n] == nil {
				out[r.n] = make([][]byte, len(readv))
			}
			out[r.n][r.i] = r.data
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	for n := range missing {
		delete(out, n)
	}
	if len(readv) == 0 {
		for _, n := range shares {
			out[n] = [][]byte{}
		}
	}
	return out, nil
}

// SlotTestvAndReadvAndWritev is POST /mutable/SI/read-test-write.
func (c *Client) SlotTestvAndReadvAndWritev(ctx context.Context, si storage.Index, secrets storage.WriteSecrets, tw map[storage.ShareNum]storage.TestWrite, readv []storage.ReadVector) (bool, map[storage.ShareNum][][]byte, error) {
	const op = "slot_testv_and_readv_and_writev"
	if err := storage.CheckTestWrites(op, tw); err != nil {
		return false, nil, err
	}
	if err := storage.CheckReadVectors(op, readv); err != nil {
		return false, nil, err
	}
	req := RTWRequest{TestWriteVectors: make(map[uint64]RTWShare, len(tw)), ReadVector: make([]RTWRead, len(readv))}
	for n, t := range tw {
		s := RTWShare{Test: make([]RTWTest, len(t.Tests)), Write: make([]RTWWrite, len(t.Writes)), NewLength: t.NewLength}
		for i, tv := range t.Tests {
			s.Test[i] = RTWTest{Offset: tv.Offset, Size: tv.Size, Specimen: nonNil(tv.Specimen)}
		}
		for i, wv := range t.Writes {
			s.Write[i] = RTWWrite{Offset: wv.Offset, Data: nonNil(wv.Data)}
		}
		req.TestWriteVectors[uint64(n)] = s
	}
	for i, r := range readv {
		req.ReadVector[i] = RTWRead{Offset: r.Offset, Size: r.Size}
	}
	var resp RTWResponse
	_, err := c.cborCall(ctx, request{
		op: op, method: "POST", path: siPath("mutable", si) + "/read-test-write",
		secrets: []secret{{kindWE, secrets.WriteEnabler[:]}, {kindRenew, secrets.Renew[:]}, {kindCancel, secrets.Cancel[:]}},
		body:    cborBody(req),
		ctype:   "application/cbor",
	}, &resp)
	if err != nil {
		return false, nil, err
	}
	if len(resp.Data) > storage.MaxShares {
		return false, nil, protoErr(op, "%d shares: %w", len(resp.Data), storage.ErrTooLarge)
	}
	out := make(map[storage.ShareNum][][]byte, len(resp.Data))
	for n, reads := range resp.Data {
		if n >= storage.MaxShares || len(reads) != len(readv) {
			return false, nil, protoErr(op, "share %d: %d reads for %d vectors", n, len(reads), len(readv))
		}
		for i, r := range reads {
			if uint64(len(r)) > readv[i].Size {
				return false, nil, protoErr(op, "share %d: %d bytes for a read of %d: %w", n, len(r), readv[i].Size, storage.ErrTooLarge)
			}
			if r == nil {
				reads[i] = []byte{}
			}
		}
		out[storage.ShareNum(n)] = reads
	}
	return resp.Success, out, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// AddLease is PUT /lease/SI; a 404 (no shares) is not an error.
func (c *Client) AddLease(ctx context.Context, si storage.Index, lease storage.LeaseSecrets) error {
	_, err := c.cborCall(ctx, request{op: "add_lease", method: "PUT", path: "/lease/" + si.String(), secrets: leaseSecrets(lease)}, nil)
	return ignore404(err)
}

// AdviseCorruptShare is POST /KIND/SI/N/corrupt; a 404 is not an error.
func (c *Client) AdviseCorruptShare(ctx context.Context, kind storage.ShareKind, si storage.Index, n storage.ShareNum, reason string) error {
	const op = "advise_corrupt_share"
	if kind != storage.Immutable && kind != storage.Mutable {
		return storage.ArgError(op, "share kind %q", kind)
	}
	if len(reason) == 0 || len(reason) > storage.MaxReasonLength {
		return storage.ArgError(op, "reason of %d bytes: want 1 to %d", len(reason), storage.MaxReasonLength)
	}
	_, err := c.cborCall(ctx, request{
		op: op, method: "POST", path: siPath(string(kind), si) + "/" + strconv.Itoa(int(n)) + "/corrupt",
		body: cborBody(CorruptRequest{Reason: strings.ToValidUTF8(reason, "?")}), ctype: "application/cbor",
	}, nil)
	return ignore404(err)
}

func ignore404(err error) error {
	var se *storage.ServerError
	if errors.As(err, &se) && se.Status == http.StatusNotFound {
		return nil
	}
	return err
}
