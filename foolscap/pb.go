package foolscap

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"weak"
)

// RemoteRef is a reference to an object the peer exposes (Foolscap's
// RemoteReference), received as a my-reference. Use [RemoteRef.Call] to
// invoke its methods. The same object received again on the same
// connection yields the same *RemoteRef until it is released, explicitly
// with [RemoteRef.Release] or by the garbage collector once the program no
// longer holds it (then the peer is sent decref, as Foolscap does when a
// RemoteReference is collected).
type RemoteRef struct {
	conn  *Conn // nil for a reference decoded outside a connection
	clid  int64
	iname string
	url   string
	entry *remoteEntry // nil when conn is nil
}

// remoteEntry is the connection's record of one RemoteRef. It holds the
// reference weakly, so that the program dropping it lets it be collected.
type remoteEntry struct {
	clid int64
	ref  weak.Pointer[RemoteRef]
	// guarded by conn.mu
	received int64 // times the peer sent it; decref sends this count
	released bool  // decref sent, or to be sent by the cleanup
}

// InterfaceName returns the RemoteInterface name the peer sent ("" if none).
func (r *RemoteRef) InterfaceName() string { return r.iname }

// URL returns the object's FURL as the peer sent it ("" if none).
func (r *RemoteRef) URL() string { return r.url }

// Conn returns the connection the reference lives on (nil if the reference
// was decoded by a standalone [Decoder]).
func (r *RemoteRef) Conn() *Conn { return r.conn }

// CLID returns the peer's connection-local ID for the object.
func (r *RemoteRef) CLID() int64 { return r.clid }

func (r *RemoteRef) String() string {
	return fmt.Sprintf("<RemoteRef clid=%d %s>", r.clid, r.iname)
}

func (r *RemoteRef) check() error {
	if r == nil || r.conn == nil {
		return errors.New("foolscap: RemoteRef is not attached to a connection")
	}
	r.conn.mu.Lock()
	released := r.entry.released
	r.conn.mu.Unlock()
	if released {
		return ErrReleased
	}
	return nil
}

// Call invokes method on the remote object and waits for its answer.
// Positional args and keyword kwargs are encoded as described in the
// package documentation (keywords are sent sorted, as Foolscap does). A
// remote failure is returned as a *RemoteError; an answer the peer aborted
// or that violates our limits as a *Violation. If ctx ends first, Call
// returns ctx.Err() and forgets the request (a late answer is dropped);
// if ctx ends while the request is being written, the connection is closed
// because the stream cannot be recovered.
func (r *RemoteRef) Call(ctx context.Context, method string, args []any, kwargs map[string]any) (any, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	return r.conn.call(ctx, r.clid, method, args, kwargs)
}

// CallOnly invokes method without asking for an answer (request ID 0,
// Foolscap's callRemoteOnly). It returns once the request is written.
func (r *RemoteRef) CallOnly(ctx context.Context, method string, args []any, kwargs map[string]any) error {
	if err := r.check(); err != nil {
		return err
	}
	return r.conn.send(ctx, func(e *Encoder, dst []byte) ([]byte, error) {
		return e.appendCall(dst, 0, r.clid, method, args, kwargs)
	})
}

// Release tells the peer we no longer need the object: it calls
// decref(clid, count) on the peer's broker, count being the number of times
// the reference was received, and waits for the acknowledgement. Later
// calls on r fail with [ErrReleased]. Releasing is optional; the peer frees
// everything when the connection closes. Release is idempotent.
func (r *RemoteRef) Release(ctx context.Context) error {
	if r == nil || r.conn == nil {
		return errors.New("foolscap: RemoteRef is not attached to a connection")
	}
	c := r.conn
	c.mu.Lock()
	e := r.entry
	if e.released {
		c.mu.Unlock()
		return nil
	}
	e.released = true
	count := e.received
	if c.remotes[r.clid] == e {
		delete(c.remotes, r.clid)
	}
	c.mu.Unlock()
	_, err := c.call(ctx, 0, "decref", nil, map[string]any{"clid": r.clid, "count": count})
	return err
}

// GetReference asks the peer for the object published under name (the
// swissnum of a FURL): a call to getReferenceByName(name=<bytes>) on the
// peer's broker (clid 0). An unknown name fails with a *RemoteError of type
// builtins.KeyError.
func (c *Conn) GetReference(ctx context.Context, name string) (*RemoteRef, error) {
	v, err := c.call(ctx, 0, "getReferenceByName", nil, map[string]any{"name": []byte(name)})
	if err != nil {
		return nil, err
	}
	ref, ok := v.(*RemoteRef)
	if !ok {
		return nil, fmt.Errorf("foolscap: getReferenceByName answered %T, not a reference", v)
	}
	return ref, nil
}

// call sends a request and waits for its answer.
func (c *Conn) call(ctx context.Context, clid int64, method string, args []any, kwargs map[string]any) (any, error) {
	ch := make(chan callResult, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.closedErr()
	}
	reqID := c.nextReqID
	c.nextReqID++
	c.pending[reqID] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.pending, reqID)
		c.mu.Unlock()
	}
	err := c.send(ctx, func(e *Encoder, dst []byte) ([]byte, error) {
		return e.appendCall(dst, reqID, clid, method, args, kwargs)
	})
	if err != nil {
		forget()
		return nil, err
	}
	select {
	case res := <-ch:
		return res.v, res.err
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	case <-c.ctx.Done():
		select {
		case res := <-ch:
			return res.v, res.err
		default:
		}
		forget()
		return nil, c.closedErr()
	}
}

// resolve delivers the outcome of request reqID, if still wanted.
func (c *Conn) resolve(reqID int64, res callResult) {
	c.mu.Lock()
	ch, ok := c.pending[reqID]
	delete(c.pending, reqID)
	known := reqID < c.nextReqID
	c.mu.Unlock()
	if !ok {
		if !known {
			c.log.Debug("foolscap: answer for a request never sent", "reqID", reqID)
		}
		return // cancelled by its caller, or bogus
	}
	ch <- res
}

// dispatch handles one decoded top-level message on the reader goroutine.
// It reports false if the reader must stop.
func (c *Conn) dispatch(m *message) bool {
	switch m.kind {
	case "answer", "error":
		if !m.haveReqID {
			return true
		}
		switch {
		case m.violation != nil:
			c.resolve(m.reqID, callResult{err: m.violation})
		case m.kind == "answer":
			c.resolve(m.reqID, callResult{v: m.value})
		default:
			f, ok := m.value.(*RemoteError)
			if !ok { // the decoder accepts only a Failure; this is a safety net
				f = &RemoteError{Type: "unknown", Value: describe(m.value, maxFailureValue)}
			}
			c.resolve(m.reqID, callResult{err: f})
		}
	case "call":
		if m.violation != nil {
			if m.haveReqID && !errors.Is(m.violation, ErrAborted) {
				var v *Violation
				errors.As(m.violation, &v)
				c.callRefused(m)
				c.queueReply(reply{reqID: m.reqID, kind: "error", v: violationFailure(v)})
			}
			return true
		}
		c.inboundCall(m)
	}
	return true
}

// callRefused tells the target of a refused call, if the message got as
// far as naming it and it is a RefusalObserver.
func (c *Conn) callRefused(m *message) {
	if !m.haveMethod || m.clid == 0 {
		return
	}
	c.mu.Lock()
	lr := c.localIDs[m.clid]
	c.mu.Unlock()
	if lr == nil {
		return
	}
	if o, ok := lr.obj.(RefusalObserver); ok {
		o.CallRefused(m.method, m.violation)
	}
}

// inboundCall runs a call the peer made to one of our objects.
func (c *Conn) inboundCall(m *message) {
	if m.clid == 0 {
		c.brokerCall(m)
		return
	}
	c.mu.Lock()
	lr := c.localIDs[m.clid]
	c.mu.Unlock()
	if lr == nil {
		c.queueReply(reply{reqID: m.reqID, kind: "error",
			v: violationFailure(&Violation{Reason: ErrBadValue, Detail: fmt.Sprintf("unknown CLID %d", m.clid)})})
		return
	}
	select {
	case c.slots <- struct{}{}:
	default:
		c.queueReply(reply{reqID: m.reqID, kind: "error",
			v: violationFailure(&Violation{Reason: ErrTooManyItems, Detail: fmt.Sprintf("too many concurrent calls (limit %d)", cap(c.slots))})})
		return
	}
	go func() {
		defer func() { <-c.slots }()
		v, err := lr.obj.CallRemote(c.ctx, m.method, m.args.args, m.args.kwargs)
		if m.reqID == 0 {
			return
		}
		r := reply{reqID: m.reqID, kind: "answer", v: v}
		if err != nil {
			r = reply{reqID: m.reqID, kind: "error", v: goFailure(err)}
		}
		c.sendReply(r)
	}()
}

// brokerCall answers calls on clid 0: Foolscap's RIBroker.
func (c *Conn) brokerCall(m *message) {
	arg := func(i int, name string) (any, bool) {
		if i < len(m.args.args) {
			return m.args.args[i], true
		}
		v, ok := m.args.kwargs[name]
		return v, ok
	}
	bad := func(format string, a ...any) {
		c.queueReply(reply{reqID: m.reqID, kind: "error",
			v: violationFailure(&Violation{Reason: ErrBadValue, Detail: fmt.Sprintf(format, a...)})})
	}
	switch m.method {
	case "getReferenceByName":
		v, _ := arg(0, "name")
		name, ok := v.([]byte)
		if !ok {
			bad("name must be bytes, not %T", v)
			return
		}
		var obj Referenceable
		if c.cfg.Lookup != nil {
			obj, ok = c.cfg.Lookup(name)
		}
		if !ok || obj == nil {
			hint := string(name)
			if r := []rune(hint); len(r) > 2 {
				hint = string(r[:2])
			}
			msg := "unable to find reference for name starting with '" + hint + "'"
			c.queueReply(reply{reqID: m.reqID, kind: "error", v: &RemoteError{
				Type:      "builtins.KeyError",
				Value:     pyRepr(msg),
				Traceback: "Traceback unavailable\n",
				Parents:   []string{"builtins.KeyError", "builtins.LookupError", "builtins.Exception", "builtins.BaseException", "builtins.object"},
			}})
			return
		}
		c.queueReply(reply{reqID: m.reqID, kind: "answer", v: obj})
	case "decref":
		cv, _ := arg(0, "clid")
		nv, _ := arg(1, "count")
		clid, ok1 := cv.(int64)
		count, ok2 := nv.(int64)
		if !ok1 || !ok2 {
			bad("decref takes int clid and count")
			return
		}
		c.mu.Lock()
		if lr := c.localIDs[clid]; lr != nil {
			lr.count -= count
			if lr.count <= 0 {
				delete(c.localIDs, clid)
				delete(c.locals, lr.obj)
			}
		}
		c.mu.Unlock()
		c.queueReply(reply{reqID: m.reqID, kind: "answer", v: nil})
	case "decgift":
		c.queueReply(reply{reqID: m.reqID, kind: "answer", v: nil})
	default:
		bad("method '%s' not defined in RIBroker", m.method)
	}
}

// violationFailure is the Failure Foolscap sends for a Violation.
func violationFailure(v *Violation) *RemoteError {
	const typ = "foolscap.tokens.Violation"
	return &RemoteError{Type: typ, Value: v.pythonText(), Traceback: "Traceback unavailable\n", Parents: standardParents(typ)}
}

// goFailure turns an error from a Referenceable into the Failure sent.
func goFailure(err error) *RemoteError {
	var re *RemoteError
	if errors.As(err, &re) {
		return re
	}
	const typ = "builtins.Exception"
	return &RemoteError{Type: typ, Value: err.Error(), Traceback: "Traceback unavailable\n",
		Parents: []string{typ, "builtins.BaseException", "builtins.object"}}
}

// UnknownMethod returns the Failure a [Referenceable] should return for a
// method it does not implement, in the form Foolscap uses ("foolscap.tokens.Violation").
func UnknownMethod(iface, method string) *RemoteError {
	return violationFailure(&Violation{Reason: ErrBadValue, Detail: fmt.Sprintf("method '%s' not defined in %s", method, iface)})
}

// encodeLocal implements refEncoder.
func (c *Conn) encodeLocal(r Referenceable) (int64, bool, string, string, func(), error) {
	if !reflect.TypeOf(r).Comparable() {
		return 0, false, "", "", nil, &EncodeError{Value: r, Msg: "Referenceable must be a comparable type (use a pointer)"}
	}
	c.mu.Lock()
	lr := c.locals[r]
	if lr == nil {
		c.nextCLID++
		lr = &localRef{clid: c.nextCLID, obj: r}
		c.locals[r] = lr
		c.localIDs[lr.clid] = lr
	}
	first := lr.count == 0
	lr.count++
	c.mu.Unlock()
	undo := func() {
		c.mu.Lock()
		lr.count--
		if lr.count <= 0 && c.localIDs[lr.clid] == lr {
			delete(c.localIDs, lr.clid)
			delete(c.locals, r)
		}
		c.mu.Unlock()
	}
	var iname, url string
	if first {
		iname = r.InterfaceName()
		if c.cfg.ReferenceURL != nil {
			url = c.cfg.ReferenceURL(r)
		}
	}
	return lr.clid, first, iname, url, undo, nil
}

// encodeRemote implements refEncoder.
func (c *Conn) encodeRemote(r *RemoteRef) (int64, error) {
	if r.conn != c {
		return 0, &EncodeError{Value: r, Msg: "a RemoteRef can only be sent back to its own connection (gifts are not supported)"}
	}
	c.mu.Lock()
	released := r.entry.released
	c.mu.Unlock()
	if released {
		return 0, &EncodeError{Value: r, Msg: "RemoteRef was released"}
	}
	return r.clid, nil
}

// decodeMyRef implements refDecoder.
func (c *Conn) decodeMyRef(clid int64, iname, url string) (any, error) {
	if url != "" && c.cfg.PeerTubID != "" {
		rest, ok := strings.CutPrefix(url, "pb://")
		tubid, _, _ := strings.Cut(rest, "@")
		if !ok || tubid != c.cfg.PeerTubID {
			return nil, &Violation{Reason: ErrBadValue, Detail: fmt.Sprintf("inbound reference claims bad tubid, %s vs %s", c.cfg.PeerTubID, tubid)}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.remotes[clid]
	if e != nil {
		if r := e.ref.Value(); r != nil {
			e.received++
			return r, nil
		}
		// Collected, its cleanup not run yet. The cleanup sends decref
		// for what e received; the new reference counts afresh.
		delete(c.remotes, clid)
	}
	if len(c.remotes) >= c.cfg.MaxRemoteRefs {
		return nil, &Violation{Reason: ErrTooManyItems, Detail: fmt.Sprintf("more than %d remote references held on this connection", c.cfg.MaxRemoteRefs)}
	}
	e = &remoteEntry{clid: clid, received: 1}
	r := &RemoteRef{conn: c, clid: clid, iname: iname, url: url, entry: e}
	e.ref = weak.Make(r)
	c.remotes[clid] = e
	runtime.AddCleanup(r, c.collected, e)
	return r, nil
}

// collected runs once the program has dropped the RemoteRef of e: unless
// it was released already, the peer is sent decref for the times it sent
// the reference, by the control goroutine.
func (c *Conn) collected(e *remoteEntry) {
	c.mu.Lock()
	if e.released { // Release sent decref
		c.mu.Unlock()
		return
	}
	e.released = true
	if c.remotes[e.clid] == e {
		delete(c.remotes, e.clid)
	}
	count := e.received
	closed := c.err != nil
	c.mu.Unlock()
	if closed || count == 0 {
		return
	}
	c.ctlMu.Lock()
	c.decrefs = append(c.decrefs, decref{clid: e.clid, count: count})
	c.ctlMu.Unlock()
	select {
	case c.ctlWake <- struct{}{}:
	default:
	}
}

// decodeYourRef implements refDecoder.
func (c *Conn) decodeYourRef(clid int64) (any, error) {
	c.mu.Lock()
	lr := c.localIDs[clid]
	c.mu.Unlock()
	if lr == nil {
		return nil, &Violation{Reason: ErrBadValue, Detail: fmt.Sprintf("unknown clid '%d'", clid)}
	}
	return lr.obj, nil
}
