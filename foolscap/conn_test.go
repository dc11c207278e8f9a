package foolscap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

// testObj is a Referenceable whose methods are funcs.
type testObj struct {
	iname   string
	methods map[string]func(ctx context.Context, args []any, kw map[string]any) (any, error)
}

func (o *testObj) InterfaceName() string { return o.iname }
func (o *testObj) CallRemote(ctx context.Context, method string, args []any, kw map[string]any) (any, error) {
	f, ok := o.methods[method]
	if !ok {
		return nil, UnknownMethod(o.iname, method)
	}
	return f(ctx, args, kw)
}

type transport struct {
	name string
	pair func(t testing.TB) (net.Conn, net.Conn)
}

var transports = []transport{
	{"pipe", func(t testing.TB) (net.Conn, net.Conn) { return net.Pipe() }},
	{"tcp", tcpPair},
}

func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		ch <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return a, <-ch
}

// connPair starts Conns on both ends: a is the "server" exposing objects.
func connPair(t *testing.T, tr transport, ca, cb ConnConfig) (a, b *Conn) {
	na, nb := tr.pair(t)
	ca.Vocab, cb.Vocab = 1, 1
	a, b = NewConn(na, ca), NewConn(nb, cb)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestConnCalls(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Cleanup(func() { goleak.VerifyNone(t) })
			ctx := testCtx(t)
			release := make(chan struct{})
			svc := &testObj{iname: "RIDemo.example", methods: map[string]func(context.Context, []any, map[string]any) (any, error){
				"echo": func(_ context.Context, args []any, kw map[string]any) (any, error) {
					return Tuple{args, BytesDict(kw)}, nil
				},
				"fail": func(context.Context, []any, map[string]any) (any, error) {
					return nil, &RemoteError{Type: "builtins.ValueError", Value: "boom"}
				},
				"plainfail": func(context.Context, []any, map[string]any) (any, error) {
					return nil, errors.New("go error")
				},
				"slow": func(ctx context.Context, _ []any, _ map[string]any) (any, error) {
					select {
					case <-release:
						return []byte("slow done"), nil
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				},
				"unencodable": func(context.Context, []any, map[string]any) (any, error) {
					return make(chan int), nil
				},
			}}
			a, b := connPair(t, tr, ConnConfig{Lookup: func(name []byte) (Referenceable, bool) {
				return svc, string(name) == "swiss"
			}}, ConnConfig{})

			ref, err := b.GetReference(ctx, "swiss")
			if err != nil {
				t.Fatal(err)
			}
			if ref.InterfaceName() != "RIDemo.example" || ref.Conn() != b {
				t.Errorf("ref iname %q conn %p", ref.InterfaceName(), ref.Conn())
			}
			again, err := b.GetReference(ctx, "swiss")
			if err != nil || again != ref {
				t.Errorf("second GetReference = %p, %v; want the same *RemoteRef", again, err)
			}

			got, err := ref.Call(ctx, "echo", []any{int64(1), "two", []byte("3")}, map[string]any{"k": nil})
			want := Tuple{[]any{int64(1), "two", []byte("3")}, Dict{{[]byte("k"), nil}}}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("echo = %#v, %v", got, err)
			}

			_, err = ref.Call(ctx, "fail", nil, nil)
			var re *RemoteError
			if !errors.As(err, &re) || re.Type != "builtins.ValueError" || re.Value != "boom" || len(re.Parents) != 4 {
				t.Errorf("fail: %#v", err)
			}
			_, err = ref.Call(ctx, "plainfail", nil, nil)
			if !errors.As(err, &re) || re.Type != "builtins.Exception" || re.Value != "go error" {
				t.Errorf("plainfail: %#v", err)
			}
			_, err = ref.Call(ctx, "unencodable", nil, nil)
			if !errors.As(err, &re) || !strings.Contains(re.Value, "cannot serialize") {
				t.Errorf("unencodable: %#v", err)
			}
			_, err = ref.Call(ctx, "nosuch", nil, nil)
			if !errors.As(err, &re) || re.Type != "foolscap.tokens.Violation" || !strings.Contains(re.Value, "method 'nosuch' not defined in RIDemo.example") {
				t.Errorf("nosuch: %#v", err)
			}
			_, err = b.GetReference(ctx, "nope")
			if !errors.As(err, &re) || re.Type != "builtins.KeyError" || re.Value != `"unable to find reference for name starting with 'no'"` {
				t.Errorf("unknown name: %#v", err)
			}
			_, err = b.call(ctx, 99, "x", nil, nil)
			if !errors.As(err, &re) || re.Value != "Violation: ('unknown CLID 99',)" {
				t.Errorf("unknown clid: %#v", err)
			}
			_, err = b.call(ctx, 0, "frobnicate", nil, nil)
			if !errors.As(err, &re) || !strings.Contains(re.Value, "not defined in RIBroker") {
				t.Errorf("broker method: %#v", err)
			}

			// Out-of-order answers: slow is answered after echo.
			slowDone := make(chan error, 1)
			go func() {
				v, err := ref.Call(ctx, "slow", nil, nil)
				if err == nil && !bytes.Equal(v.([]byte), []byte("slow done")) {
					err = fmt.Errorf("slow = %v", v)
				}
				slowDone <- err
			}()
			if _, err := ref.Call(ctx, "echo", nil, nil); err != nil {
				t.Fatal(err)
			}
			close(release)
			if err := <-slowDone; err != nil {
				t.Error(err)
			}

			// CallOnly gets no answer, and leaves nothing pending.
			if err := ref.CallOnly(ctx, "echo", nil, nil); err != nil {
				t.Error(err)
			}

			// Release sends decref; the server forgets the object.
			if err := ref.Release(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := ref.Call(ctx, "echo", nil, nil); !errors.Is(err, ErrReleased) {
				t.Errorf("call after release: %v", err)
			}
			a.mu.Lock()
			n := len(a.locals) + len(a.localIDs)
			a.mu.Unlock()
			if n != 0 {
				t.Errorf("server still holds %d local refs after decref", n)
			}
			if _, err := b.call(ctx, ref.CLID(), "echo", nil, nil); !errors.As(err, &re) || !strings.Contains(re.Value, "unknown CLID") {
				t.Errorf("raw call after decref: %v", err)
			}
		})
	}
}

// TestConnReferencePassing sends a local object (a canary) as an argument,
// has the peer call it back and return it, and checks decref both ways.
func TestConnReferencePassing(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ctx := testCtx(t)
	var serverGot *RemoteRef
	svc := &testObj{methods: map[string]func(context.Context, []any, map[string]any) (any, error){
		"register": func(ctx context.Context, args []any, _ map[string]any) (any, error) {
			r, ok := args[0].(*RemoteRef)
			if !ok {
				return nil, fmt.Errorf("got %T", args[0])
			}
			serverGot = r
			v, err := r.Call(ctx, "hello", []any{[]byte("x")}, map[string]any{"k": 1})
			if err != nil {
				return nil, err
			}
			return []any{v, r}, nil // r goes back as your-reference
		},
		"drop": func(ctx context.Context, _ []any, _ map[string]any) (any, error) {
			return nil, serverGot.Release(ctx)
		},
	}}
	canary := &testObj{iname: "", methods: map[string]func(context.Context, []any, map[string]any) (any, error){
		"hello": func(_ context.Context, args []any, kw map[string]any) (any, error) {
			return []byte(fmt.Sprintf("hi %s %v", args[0], kw["k"])), nil
		},
	}}
	_, b := connPair(t, transports[0], ConnConfig{Lookup: func([]byte) (Referenceable, bool) { return svc, true }}, ConnConfig{})
	ref, err := b.GetReference(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		v, err := ref.Call(ctx, "register", []any{canary}, nil)
		if err != nil {
			t.Fatal(err)
		}
		l := v.([]any)
		if string(l[0].([]byte)) != "hi x 1" || l[1] != Referenceable(canary) {
			t.Fatalf("register = %#v", v)
		}
		b.mu.Lock()
		count := b.locals[canary].count
		b.mu.Unlock()
		if count != int64(i+1) {
			t.Errorf("after %d sends, refcount %d", i+1, count)
		}
	}
	if serverGot.entry.received != 2 {
		t.Errorf("server received the canary %d times, want 2", serverGot.entry.received)
	}
	if _, err := ref.Call(ctx, "drop", nil, nil); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	left := len(b.locals)
	b.mu.Unlock()
	if left != 0 {
		t.Errorf("client still tracks %d local objects after the server's decref", left)
	}
}

func TestConnCancelAndClose(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Cleanup(func() { goleak.VerifyNone(t) })
			ctx := testCtx(t)
			started := make(chan struct{}, 4)
			unblock := make(chan struct{})
			svc := &testObj{methods: map[string]func(context.Context, []any, map[string]any) (any, error){
				"block": func(ctx context.Context, _ []any, _ map[string]any) (any, error) {
					started <- struct{}{}
					select {
					case <-unblock:
						return int64(1), nil
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				},
				"ping": func(context.Context, []any, map[string]any) (any, error) { return int64(2), nil },
			}}
			a, b := connPair(t, tr, ConnConfig{Lookup: func([]byte) (Referenceable, bool) { return svc, true }}, ConnConfig{})
			ref, err := b.GetReference(ctx, "svc")
			if err != nil {
				t.Fatal(err)
			}
			// A cancelled call returns ctx.Err() and forgets its request;
			// the late answer is dropped and the connection stays usable.
			cctx, cancel := context.WithCancel(ctx)
			errc := make(chan error, 1)
			go func() { _, err := ref.Call(cctx, "block", nil, nil); errc <- err }()
			<-started
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled call: %v", err)
			}
			unblock <- struct{}{}
			if v, err := ref.Call(ctx, "ping", nil, nil); err != nil || v != int64(2) {
				t.Errorf("after cancel: %v, %v", v, err)
			}
			b.mu.Lock()
			pending := len(b.pending)
			b.mu.Unlock()
			if pending != 0 {
				t.Errorf("%d requests still pending", pending)
			}

			// A pending call fails when the peer closes.
			go func() { _, err := ref.Call(ctx, "block", nil, nil); errc <- err }()
			<-started
			a.Close()
			err = <-errc
			if !errors.Is(err, ErrConnClosed) || !errors.Is(err, io.EOF) {
				t.Errorf("pending call after peer close: %v", err)
			}
			<-b.Done()
			if !errors.Is(b.Err(), io.EOF) {
				t.Errorf("b.Err() = %v", b.Err())
			}
			if !errors.Is(a.Err(), ErrConnClosed) {
				t.Errorf("a.Err() = %v", a.Err())
			}
			if err := a.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if _, err := ref.Call(ctx, "ping", nil, nil); !errors.Is(err, ErrConnClosed) {
				t.Errorf("call on closed conn: %v", err)
			}
		})
	}
}

// TestConnInboundFlood checks that calls beyond MaxInboundCalls are
// answered with a Failure at once instead of piling up.
func TestConnInboundFlood(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ctx := testCtx(t)
	running := make(chan struct{}, 100)
	unblock := make(chan struct{})
	svc := &testObj{methods: map[string]func(context.Context, []any, map[string]any) (any, error){
		"block": func(ctx context.Context, _ []any, _ map[string]any) (any, error) {
			running <- struct{}{}
			<-unblock
			return nil, nil
		},
	}}
	_, b := connPair(t, transports[1], ConnConfig{MaxInboundCalls: 2, Lookup: func([]byte) (Referenceable, bool) { return svc, true }}, ConnConfig{})
	ref, err := b.GetReference(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { _, err := ref.Call(ctx, "block", nil, nil); errs <- err })
	}
	<-running
	<-running
	for range n - 2 {
		wg.Go(func() { _, err := ref.Call(ctx, "block", nil, nil); errs <- err })
	}
	rejected := 0
	for range n - 2 {
		err := <-errs
		var re *RemoteError
		if errors.As(err, &re) && strings.Contains(re.Value, "too many concurrent calls") {
			rejected++
		} else {
			t.Errorf("flooded call: %v", err)
		}
	}
	close(unblock)
	wg.Wait()
	if rejected != n-2 {
		t.Errorf("%d of %d excess calls rejected", rejected, n-2)
	}
}

// rawPeer starts a Conn on one end of a pipe and returns the other end.
func rawPeer(t *testing.T, cfg ConnConfig) (*Conn, net.Conn) {
	a, raw := net.Pipe()
	cfg.Vocab = 1
	c := NewConn(a, cfg)
	t.Cleanup(func() { c.Close(); raw.Close() })
	return c, raw
}

func readN(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

// TestConnProtocolErrors checks what the Conn does with a misbehaving peer.
func TestConnProtocolErrors(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	t.Run("top-level non-OPEN gets ERROR", func(t *testing.T) {
		c, raw := rawPeer(t, ConnConfig{KeepaliveTimeout: -1})
		go raw.Write([]byte{0x05, 0x81})
		hdr := readN(t, raw, 2)
		if hdr[1] != tokError {
			t.Fatalf("got %x, want an ERROR token", hdr)
		}
		msg := readN(t, raw, int(hdr[0]))
		if !strings.Contains(string(msg), "top-level must be OPEN") {
			t.Errorf("ERROR text %q", msg)
		}
		<-c.Done()
		if !errors.Is(c.Err(), ErrTopLevelNotOpen) {
			t.Errorf("Err = %v", c.Err())
		}
	})
	t.Run("peer ERROR", func(t *testing.T) {
		c, raw := rawPeer(t, ConnConfig{KeepaliveTimeout: -1})
		go raw.Write(wire(t, `3b 8d "BananaError(in <RootUnslicer>): ('top-level must be OPEN',)"`))
		<-c.Done()
		var be *BananaError
		if !errors.As(c.Err(), &be) || be.Reason != ErrPeerError || !strings.Contains(be.Detail, "top-level must be OPEN") {
			t.Errorf("Err = %v", c.Err())
		}
	})
	t.Run("negotiation error block", func(t *testing.T) {
		c, raw := rawPeer(t, ConnConfig{KeepaliveTimeout: -1})
		go func() {
			raw.Write([]byte("banana-decision-version: 1\r\nerror: Duplicate connection\r\n\r\n"))
			raw.Close()
		}()
		<-c.Done()
		if !errors.Is(c.Err(), ErrNegotiationText) || !errors.Is(c.Err(), ErrDuplicateConnection) {
			t.Errorf("Err = %v", c.Err())
		}
	})
	t.Run("violation in inbound call is answered", func(t *testing.T) {
		_, raw := rawPeer(t, ConnConfig{KeepaliveTimeout: -1})
		go raw.Write(wire(t, `0088 0b87 0581 0181 0182 "m" 0188 0c87 0081 0288 0382 "foo" 0289 0189 0089`))
		// OPEN0 error reqID 5 OPEN1 copyable ...
		d := pbDecoder(raw, 0)
		v, err := d.Decode()
		m, _ := v.(*message)
		if err != nil || m == nil || m.kind != "error" || m.reqID != 5 {
			t.Fatalf("reply %+v, %v", v, err)
		}
		if f := m.value.(*RemoteError); f.Type != "foolscap.tokens.Violation" || !strings.Contains(f.Value, "unknown OPEN type") {
			t.Errorf("failure %+v", f)
		}
	})
}

// TestConnKeepalive checks PING/PONG and the idle timers with synctest.
func TestConnKeepalive(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	synctest.Test(t, func(t *testing.T) {
		c, raw := rawPeer(t, ConnConfig{KeepaliveTimeout: 10 * time.Second})
		// We answer the peer's PINGs at once.
		go raw.Write([]byte{0x07, tokPing, tokPing})
		if got := readN(t, raw, 3); !bytes.Equal(got, []byte{0x07, tokPong, tokPong}) {
			t.Errorf("PONGs = %x", got)
		}
		start := time.Now()
		// After 10 s of silence we send PING 1, then PING 2 10 s later.
		if got := readN(t, raw, 2); !bytes.Equal(got, []byte{0x01, tokPing}) {
			t.Errorf("keepalive = %x", got)
		}
		if d := time.Since(start); d != 10*time.Second {
			t.Errorf("first PING after %v", d)
		}
		if got := readN(t, raw, 2); !bytes.Equal(got, []byte{0x02, tokPing}) {
			t.Errorf("second keepalive = %x", got)
		}
		// Receiving anything resets the idle timer.
		time.Sleep(5 * time.Second)
		raw.Write([]byte{tokPong})
		before := time.Now()
		synctest.Wait()
		if !c.LastReceived().Equal(before) {
			t.Errorf("LastReceived = %v, want %v", c.LastReceived(), before)
		}
		if got := readN(t, raw, 2); !bytes.Equal(got, []byte{0x03, tokPing}) || time.Since(before) != 10*time.Second {
			t.Errorf("PING after activity = %x at +%v", got, time.Since(before))
		}
		c.Close()
	})
}

func TestConnDisconnectTimeout(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	synctest.Test(t, func(t *testing.T) {
		c, raw := rawPeer(t, ConnConfig{KeepaliveTimeout: -1, DisconnectTimeout: 30 * time.Second})
		go io.Copy(io.Discard, raw)
		start := time.Now()
		time.Sleep(20 * time.Second)
		raw.Write([]byte{tokPong}) // activity at +20 s
		<-c.Done()
		if d := time.Since(start); d != 50*time.Second {
			t.Errorf("dropped after %v, want 50s", d)
		}
		if !errors.Is(c.Err(), ErrDisconnectTimeout) {
			t.Errorf("Err = %v", c.Err())
		}
	})
}

// TestConnGoPythonBytes checks the bytes a Conn writes for GetReference and
// a first call against the §5.2/§5.3 captures.
func TestConnGoPythonBytes(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ctx := testCtx(t)
	c, raw := rawPeer(t, ConnConfig{KeepaliveTimeout: -1})
	done := make(chan error, 1)
	go func() {
		ref, err := c.GetReference(ctx, "swissnum-storage-0123456789abcdef")
		if err == nil {
			_, err = ref.Call(ctx, "get_version", nil, nil)
		}
		done <- err
	}()
	req := wire(t, `0088 0b87 0181 0081 1282 "getReferenceByName" 0188 0c87 0081 0482 "name" 2182 "swissnum-storage-0123456789abcdef" 0189 0089`)
	if got := readN(t, raw, len(req)); !bytes.Equal(got, req) {
		t.Fatalf("getReferenceByName\n got %x\nwant %x", got, req)
	}
	raw.Write(wire(t, `0088 0d87 0181 0188 0f87 0181 2382 "RIStorageServer.tahoe.allmydata.com" 0189 0089`))
	call := wire(t, `02880b87028101810b826765745f76657273696f6e03880c87008103890289`)
	if got := readN(t, raw, len(call)); !bytes.Equal(got, call) {
		t.Fatalf("get_version\n got %x\nwant %x", got, call)
	}
	raw.Write(wire(t, getVersionAnswer))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// observingObj is a testObj that records the calls refused before they
// reached it.
type observingObj struct {
	testObj
	mu      sync.Mutex
	refused []string
	errs    []error
}

func (o *observingObj) CallRefused(method string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refused = append(o.refused, method)
	o.errs = append(o.errs, err)
}

// TestConnCallRefusedObserver: a call whose arguments break the receiving
// connection's limits is answered with a Violation and reported to its
// target through CallRefused; a call within the limits runs and is not
// reported.
func TestConnCallRefusedObserver(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ctx := testCtx(t)
	obj := &observingObj{testObj: testObj{iname: "RIObs", methods: map[string]func(context.Context, []any, map[string]any) (any, error){
		"put": func(_ context.Context, args []any, _ map[string]any) (any, error) {
			return int64(len(args[0].([]any))), nil
		},
	}}}
	_, b := connPair(t, transports[1],
		ConnConfig{Lookup: func([]byte) (Referenceable, bool) { return obj, true }, Limits: Limits{MaxItems: 8}},
		ConnConfig{})
	ref, err := b.GetReference(ctx, "obj")
	if err != nil {
		t.Fatal(err)
	}
	items := func(n int) []any {
		l := make([]any, n)
		for i := range l {
			l[i] = int64(i)
		}
		return l
	}
	if v, err := ref.Call(ctx, "put", []any{items(3)}, nil); err != nil || v != int64(3) {
		t.Fatalf("put 3 = %v, %v", v, err)
	}
	_, err = ref.Call(ctx, "put", []any{items(20)}, nil)
	var re *RemoteError
	if !errors.As(err, &re) || re.Type != "foolscap.tokens.Violation" {
		t.Fatalf("put 20: %v, want a Violation", err)
	}
	// CallRefused returns before the Violation is queued, so it has run.
	obj.mu.Lock()
	defer obj.mu.Unlock()
	if len(obj.refused) != 1 || obj.refused[0] != "put" || !errors.Is(obj.errs[0], ErrTooManyItems) {
		t.Errorf("refused %v, errors %v; want one put with ErrTooManyItems", obj.refused, obj.errs)
	}
}
