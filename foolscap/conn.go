package foolscap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ConnConfig configures the PB layer running over one negotiated connection.
// The zero value of each optional field selects its default. A ConnConfig
// must not be modified after it has been passed to [NewConn].
type ConnConfig struct {
	LocalTubID string // our TubID on this connection
	// PeerTubID is the peer's TubID (checked against its certificate by
	// negotiation). When set, a my-reference whose URL names another TubID
	// is rejected, as Foolscap does ("inbound reference claims bad tubid").
	PeerTubID string
	// Vocab is the negotiated initial vocab table index: 0 (empty) or 1 (the 25 words).
	Vocab int
	// Lookup resolves an inbound getReferenceByName(name). nil: every name
	// is unknown. It runs on the connection's reader goroutine and must not
	// block.
	Lookup func(name []byte) (Referenceable, bool)
	// ReferenceURL returns the FURL sent with the first my-reference of a
	// local object; nil or "" sends none (Foolscap then has no URL for it).
	ReferenceURL func(Referenceable) string
	// KeepaliveTimeout: send a PING after this much idle time. 0 means 240 s (Foolscap's default); negative disables.
	KeepaliveTimeout time.Duration
	// DisconnectTimeout: drop the connection after this much time with nothing received. 0 disables (Foolscap's default).
	DisconnectTimeout time.Duration
	// WriteTimeout bounds writes the connection makes on its own behalf
	// (PONG, PING, answers to inbound calls, ERROR). 0 means 2 minutes.
	// Writes for Call and friends are bounded by their context instead.
	WriteTimeout time.Duration
	// MaxInboundCalls bounds the inbound calls running at once; a call
	// beyond it is answered at once with a Failure
	// ("foolscap.tokens.Violation", "too many concurrent calls"), so a flood
	// cannot grow memory. 0 means 64.
	MaxInboundCalls int
	// MaxRemoteRefs bounds the peer's objects this side holds references
	// to at once. A message carrying a new one beyond it is refused as a
	// Violation. References the program dropped are released by the
	// garbage collector and no longer count. 0 means 4096.
	MaxRemoteRefs int
	// Limits bounds what the decoder accepts (string length, nesting,
	// items, message size); zero fields mean the defaults of [Limits].
	Limits Limits
	// Logger receives debug logs; nil discards.
	Logger *slog.Logger
}

// Defaults for [ConnConfig].
const (
	DefaultKeepaliveTimeout = 240 * time.Second
	DefaultWriteTimeout     = 2 * time.Minute
	DefaultMaxInboundCalls  = 64
	DefaultMaxRemoteRefs    = 4096
)

// Referenceable is a local object that remote peers may call. Passing one
// as an argument or result sends it as a my-reference; the peer then holds
// a RemoteReference to it. Implementations must be comparable (pointer
// types are), since the connection keys its reference table by them.
type Referenceable interface {
	// InterfaceName is the RemoteInterface name sent with the first my-reference ("" for none).
	InterfaceName() string
	// CallRemote runs method with the decoded arguments. A returned error is
	// sent as a Failure: a *RemoteError as is, any other error as
	// builtins.Exception with err.Error() as its value. It runs in its own
	// goroutine; ctx is cancelled when the connection closes.
	CallRemote(ctx context.Context, method string, args []any, kwargs map[string]any) (any, error)
}

// A RefusalObserver is a [Referenceable] that wants to know about the calls
// to it that the connection refused before CallRemote could run, because
// the message broke the connection's [Limits] or was malformed (err is the
// *Violation; the peer has already been answered with it). Without this, such a
// call leaves no trace in the object. CallRefused runs on the connection's
// reader goroutine: it must return quickly.
type RefusalObserver interface {
	CallRefused(method string, err error)
}

// Errors reported by [Conn].
var (
	// ErrConnClosed is returned (wrapping the cause) by operations on a
	// connection that has ended, and is the cause after [Conn.Close].
	ErrConnClosed = errors.New("foolscap: connection closed")
	// ErrDisconnectTimeout is the cause when nothing was received for
	// ConnConfig.DisconnectTimeout.
	ErrDisconnectTimeout = errors.New("foolscap: disconnect timeout: nothing received")
	// ErrReleased is returned by calls on a released [RemoteRef].
	ErrReleased = errors.New("foolscap: remote reference released")
)

// Conn is the PB layer over one negotiated connection: it sends calls to
// the peer's objects, answers the peer's calls to ours, and keeps the
// connection alive. It is safe for concurrent use.
//
// One reader goroutine decodes everything the peer sends and dispatches
// answers, inbound calls and PINGs; each inbound call runs in its own
// goroutine (bounded by ConnConfig.MaxInboundCalls). Whole top-level
// messages are written under a write lock, with PING and PONG between them.
type Conn struct {
	nc  net.Conn
	cfg ConnConfig
	log *slog.Logger
	dec *Decoder // reader goroutine only

	wsem chan struct{} // one-slot write lock, acquirable with a context
	enc  Encoder       // guarded by wsem
	wbuf []byte        // guarded by wsem

	lastRecv atomic.Int64 // unix nanoseconds of the last byte received

	ctlMu      sync.Mutex
	pongs      []uint64      // PONGs owed, bounded; guarded by ctlMu
	decrefs    []decref      // decrefs of collected RemoteRefs; guarded by ctlMu
	ctlWake    chan struct{} // wakes the control goroutine (cap 1)
	replies    chan reply    // answers from the reader, written by the control goroutine
	slots      chan struct{} // inbound call semaphore
	readerDone chan struct{}
	ctlDone    chan struct{}

	ctx    context.Context // cancelled when the connection ends
	cancel context.CancelFunc
	once   sync.Once
	done   chan struct{}

	mu        sync.Mutex // guards the fields below
	err       error      // cause of the end; nil while open
	nextReqID int64
	pending   map[int64]chan callResult
	locals    map[Referenceable]*localRef
	localIDs  map[int64]*localRef
	nextCLID  int64
	remotes   map[int64]*remoteEntry
}

// localRef tracks one of our objects the peer holds references to.
type localRef struct {
	clid  int64
	obj   Referenceable
	count int64 // my-references sent minus decref'd
}

type callResult struct {
	v   any
	err error
}

// decref is a decref call owed for a collected RemoteRef.
type decref struct{ clid, count int64 }

// reply is an answer queued by the reader for the control goroutine.
type reply struct {
	reqID int64
	kind  string // "answer" or "error"
	v     any
}

// NewConn starts the PB layer on c (already negotiated; Banana starts now).
// The Conn owns c and closes it when the connection ends.
func NewConn(c net.Conn, cfg ConnConfig) *Conn {
	if cfg.KeepaliveTimeout == 0 {
		cfg.KeepaliveTimeout = DefaultKeepaliveTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxInboundCalls <= 0 {
		cfg.MaxInboundCalls = DefaultMaxInboundCalls
	}
	if cfg.MaxRemoteRefs <= 0 {
		cfg.MaxRemoteRefs = DefaultMaxRemoteRefs
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pc := &Conn{
		nc:         c,
		cfg:        cfg,
		log:        lg,
		wsem:       make(chan struct{}, 1),
		ctlWake:    make(chan struct{}, 1),
		replies:    make(chan reply, 64),
		slots:      make(chan struct{}, cfg.MaxInboundCalls),
		readerDone: make(chan struct{}),
		ctlDone:    make(chan struct{}),
		ctx:        ctx,
		cancel:     cancel,
		done:       make(chan struct{}),
		nextReqID:  1,
		pending:    make(map[int64]chan callResult),
		locals:     make(map[Referenceable]*localRef),
		localIDs:   make(map[int64]*localRef),
		remotes:    make(map[int64]*remoteEntry),
	}
	pc.enc.refs = pc
	pc.enc.setVocab(cfg.Vocab)
	pc.lastRecv.Store(time.Now().UnixNano())
	pc.dec = NewDecoder(bufio.NewReaderSize(activityReader{pc}, 4<<10), DecoderOptions{
		Vocab:  cfg.Vocab,
		Limits: cfg.Limits,
		OnPing: pc.owePong,
	})
	pc.dec.pb = true
	pc.dec.refs = pc
	pc.dec.wantAnswer = pc.awaited
	go pc.readLoop()
	go pc.controlLoop()
	return pc
}

// awaited reports whether a call waits for the answer to reqID.
func (c *Conn) awaited(reqID int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pending[reqID]
	return ok
}

// activityReader records the time of every successful read.
type activityReader struct{ c *Conn }

func (a activityReader) Read(p []byte) (int, error) {
	n, err := a.c.nc.Read(p)
	if n > 0 {
		a.c.lastRecv.Store(time.Now().UnixNano())
	}
	return n, err
}

// LastReceived returns when bytes last arrived from the peer (or when the
// Conn was created, if none have).
func (c *Conn) LastReceived() time.Time { return time.Unix(0, c.lastRecv.Load()) }

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr returns the peer's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// PeerTubID returns ConnConfig.PeerTubID.
func (c *Conn) PeerTubID() string { return c.cfg.PeerTubID }

// Close closes the connection (sending TLS close_notify when c is a TLS
// connection) and waits for its reader and keepalive goroutines to exit.
// Pending calls fail with an error wrapping [ErrConnClosed]. Inbound calls
// still running see their context cancelled; Close does not wait for them.
// Close is idempotent and returns nil.
func (c *Conn) Close() error {
	c.fail(ErrConnClosed)
	<-c.done
	return nil
}

// Done is closed when the connection has ended and its internal goroutines
// have exited.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended: ErrConnClosed after Close, an error
// wrapping io.EOF when the peer closed, a *BananaError for a protocol
// error (ErrPeerError when the peer sent ERROR), ErrDisconnectTimeout, or
// a network error. It returns nil while the connection is open.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// closedErr is the error for operations on an ended connection.
func (c *Conn) closedErr() error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err == nil || err == ErrConnClosed {
		return ErrConnClosed
	}
	return fmt.Errorf("%w: %w", ErrConnClosed, err)
}

// fail ends the connection with cause err (the first cause wins).
func (c *Conn) fail(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		c.log.Debug("foolscap: connection ending", "peer", c.cfg.PeerTubID, "err", err)
		c.cancel()
		c.nc.Close()
		go func() {
			<-c.readerDone
			<-c.ctlDone
			close(c.done)
		}()
	})
}

// readLoop is the reader goroutine.
func (c *Conn) readLoop() {
	defer close(c.readerDone)
	for {
		v, err := c.dec.Decode()
		if err != nil {
			var viol *Violation
			if errors.As(err, &viol) {
				c.log.Debug("foolscap: discarded inbound message", "err", err)
				continue
			}
			c.readFailed(err)
			return
		}
		m, ok := v.(*message)
		if !ok {
			continue
		}
		if !c.dispatch(m) {
			return
		}
	}
}

// readFailed ends the connection after a read or protocol error, first
// telling the peer with an ERROR token if the fault was its protocol.
func (c *Conn) readFailed(err error) {
	var be *BananaError
	if errors.As(err, &be) && be.Reason != ErrPeerError && be.Reason != ErrNegotiationText && c.ctx.Err() == nil {
		msg := be.Reason.Error()
		if be.Detail != "" {
			msg += ": " + be.Detail
		}
		c.writeRaw(appendErrorToken(nil, "BananaError: ("+pyRepr(msg)+",)"))
	}
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		err = fmt.Errorf("foolscap: connection lost: %w", err)
	case be == nil:
		err = fmt.Errorf("foolscap: read: %w", err)
	}
	c.fail(err)
}

// writeRaw writes b (whole tokens) under the write lock, bounded by
// WriteTimeout and the connection's lifetime. A failure ends the connection.
func (c *Conn) writeRaw(b []byte) {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.WriteTimeout)
	defer cancel()
	c.send(ctx, func(*Encoder, []byte) ([]byte, error) { return b, nil })
}

// send encodes one top-level message with f under the write lock and
// writes it. ctx bounds waiting for the lock and the write itself: its
// deadline becomes the write deadline, and cancelling it during the write
// ends the whole connection, since a partly written message cannot be
// taken back. Encoding errors leave the connection untouched.
func (c *Conn) send(ctx context.Context, f func(e *Encoder, dst []byte) ([]byte, error)) error {
	select {
	case c.wsem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return c.closedErr()
	}
	defer func() { <-c.wsem }()
	if c.ctx.Err() != nil {
		return c.closedErr()
	}
	b, err := f(&c.enc, c.wbuf[:0])
	if err != nil {
		return err
	}
	if cap(b) <= 64<<10 {
		c.wbuf = b[:0]
	}
	if d, ok := ctx.Deadline(); ok {
		c.nc.SetWriteDeadline(d)
	} else {
		c.nc.SetWriteDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { c.nc.SetWriteDeadline(pastDeadline) })
	_, err = c.nc.Write(b)
	stop()
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			c.fail(fmt.Errorf("foolscap: write abandoned: %w", cerr))
			return cerr
		}
		c.fail(fmt.Errorf("foolscap: write: %w", err))
		return c.closedErr()
	}
	return nil
}

// owePong is the decoder's PING callback: queue a PONG for the control
// goroutine. At most 16 are kept; a flood of PINGs gets fewer PONGs.
func (c *Conn) owePong(n uint64) {
	c.ctlMu.Lock()
	if len(c.pongs) < 16 {
		c.pongs = append(c.pongs, n)
	}
	c.ctlMu.Unlock()
	select {
	case c.ctlWake <- struct{}{}:
	default:
	}
}

// controlLoop writes PONGs, keepalive PINGs and the reader's replies, and
// enforces the disconnect timeout.
func (c *Conn) controlLoop() {
	defer close(c.ctlDone)
	ka, dt := c.cfg.KeepaliveTimeout, c.cfg.DisconnectTimeout
	var pingNum uint64
	var lastPing time.Time
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		last := c.LastReceived()
		var wake time.Time
		if dt > 0 {
			if now.Sub(last) >= dt {
				c.fail(ErrDisconnectTimeout)
				return
			}
			wake = last.Add(dt)
		}
		if ka > 0 {
			pingAt := last.Add(ka)
			if lastPing.After(last) {
				pingAt = lastPing.Add(ka)
			}
			if !now.Before(pingAt) {
				pingNum++
				lastPing = now
				c.writeRaw(appendPingPong(nil, pingNum, tokPing))
				pingAt = now.Add(ka)
			}
			if wake.IsZero() || pingAt.Before(wake) {
				wake = pingAt
			}
		}
		if wake.IsZero() {
			wake = now.Add(time.Hour)
		}
		timer.Reset(wake.Sub(now))
		select {
		case <-c.ctx.Done():
			return
		case <-timer.C:
		case <-c.ctlWake:
			c.ctlMu.Lock()
			pongs, decrefs := c.pongs, c.decrefs
			c.pongs, c.decrefs = nil, nil
			c.ctlMu.Unlock()
			if len(pongs) > 0 {
				var b []byte
				for _, n := range pongs {
					b = appendPingPong(b, n, tokPong)
				}
				c.writeRaw(b)
			}
			for _, d := range decrefs {
				c.sendDecref(d)
			}
		case r := <-c.replies:
			c.sendReply(r)
		}
	}
}

// sendReply writes an answer or error message on behalf of the reader (or
// an inbound call), bounded by WriteTimeout.
func (c *Conn) sendReply(r reply) {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.WriteTimeout)
	defer cancel()
	err := c.send(ctx, func(e *Encoder, dst []byte) ([]byte, error) {
		return e.appendAnswer(dst, r.kind, r.reqID, r.v)
	})
	var ee *EncodeError
	if errors.As(err, &ee) && r.kind == "answer" {
		c.log.Debug("foolscap: cannot encode answer", "reqID", r.reqID, "err", err)
		c.send(ctx, func(e *Encoder, dst []byte) ([]byte, error) {
			return e.appendAnswer(dst, "error", r.reqID, goFailure(err))
		})
	}
}

// sendDecref tells the peer a collected RemoteRef is gone, without
// asking for an answer (request ID 0), bounded by WriteTimeout.
func (c *Conn) sendDecref(d decref) {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.WriteTimeout)
	defer cancel()
	c.send(ctx, func(e *Encoder, dst []byte) ([]byte, error) {
		return e.appendCall(dst, 0, 0, "decref", nil, map[string]any{"clid": d.clid, "count": d.count})
	})
}

// queueReply hands a reply to the control goroutine, waiting (back
// pressure on the reader) while its queue is full.
func (c *Conn) queueReply(r reply) {
	if r.reqID == 0 {
		return // callRemoteOnly: no answer wanted
	}
	select {
	case c.replies <- r:
	case <-c.ctx.Done():
	}
}

// pastDeadline is a deadline in the past, set to unblock a write.
var pastDeadline = time.Unix(1, 0)
