package foolscap

import (
	"context"
	"crypto/tls"
	"errors"
	"math/big"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm/internal/pyfoolscap"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// These tests run the real Python Foolscap 21.7 (Debian's python3-foolscap)
// as the peer. pyfoolscap fails them, never skips them, when it is missing.

// pyServer hosts a Tahoe-like storage object and prints its FURL. With an
// argument, it claims that TubID while presenting its own certificate (a
// man in the middle, as far as the client can tell).
const pyServer = `
import sys, gc
from twisted.internet import reactor
from foolscap.api import Tub, Referenceable

class Child(Referenceable):
    def remote_ping(self):
        return b"pong"

class Storage(Referenceable):
    held = None
    def remote_get_version(self):
        return {b"http://allmydata.org/tahoe/protocols/storage/v1":
                    {b"maximum-immutable-share-size": 2**64,
                     b"maximum-mutable-share-size": 69105000000000000,
                     b"tolerates-immutable-read-overrun": True,
                     b"available-space": 123456789,
                     b"fills-holes-with-zero-bytes": False},
                b"application-version": b"tahoe-lafs/1.19.0"}
    def remote_echo(self, x):
        return x
    def remote_fail(self, msg):
        raise ValueError(msg)
    def remote_call_back(self, obj, arg):
        return obj.callRemote("echo", arg)
    def remote_hold(self, obj):
        self.held = obj
    def remote_release(self):
        self.held = None
        gc.collect()
    def remote_make_child(self):
        return Child()
    def remote_exported(self):
        return sum(len(b.myReferenceByCLID) for b in tub.brokers.values())

tub = Tub()
if len(sys.argv) > 1:
    tub.tubID = sys.argv[1]
tub.startService()
l = tub.listenOn("tcp:0:interface=127.0.0.1")
import warnings; warnings.simplefilter("ignore")
tub.setLocation("tcp:127.0.0.1:%d" % l.getPortnum())
print(tub.registerReference(Storage(), "swissnum-storage-0123456789abcdef"), flush=True)
reactor.run()
`

// pyClient connects to the FURL given as argument, calls echo and two more
// methods on the object, and prints the results.
const pyClient = `
import sys
from twisted.internet import reactor, defer
from foolscap.api import Tub

@defer.inlineCallbacks
def main():
    tub = Tub()
    tub.startService()
    try:
        ref = yield tub.getReference(sys.argv[1])
        print("TUBID", tub.getTubID(), flush=True)
        r = yield ref.callRemote("echo", b"hello", 7, [1, "two", None], k=(True, 2.5))
        print("ECHO", repr(r), flush=True)
        # inlineCallbacks cannot raise a CopiedFailure, so use errbacks.
        def failed(f):
            return "%s %s" % (f.type, f.getErrorMessage())
        r = yield ref.callRemote("fail", "boom").addCallbacks(lambda r: "no error", failed)
        print("FAIL", r, flush=True)
        r = yield tub.getReference(sys.argv[1].rsplit("/", 1)[0] + "/nosuchname").addCallbacks(lambda r: "no error", failed)
        print("MISSING", r, flush=True)
    except Exception as e:
        print("ERROR", repr(e), flush=True)
    reactor.stop()

reactor.callWhenRunning(main)
reactor.callLater(60, lambda: (print("TIMEOUT", flush=True), reactor.stop()))
reactor.run()
`

func startPyServer(t *testing.T, args ...string) (furl, tubID, addr string) {
	t.Helper()
	p := pyfoolscap.Start(t, pyServer, args...)
	furl = p.Line(t, testTimeout)
	rest, ok := strings.CutPrefix(furl, "pb://")
	if !ok {
		t.Fatalf("python printed %q, not a FURL", furl)
	}
	tubID, rest, _ = strings.Cut(rest, "@")
	hint, _, _ := strings.Cut(rest, "/")
	addr = strings.TrimPrefix(hint, "tcp:")
	return furl, tubID, addr
}

// echoObject is a Go object the Python side calls.
type echoObject struct {
	mu    sync.Mutex
	calls []string
}

func (*echoObject) InterfaceName() string { return "RIEcho.tubfarm.example" }

func (o *echoObject) CallRemote(ctx context.Context, method string, args []any, kwargs map[string]any) (any, error) {
	o.mu.Lock()
	o.calls = append(o.calls, method)
	o.mu.Unlock()
	switch method {
	case "echo":
		if len(args) != 1 || len(kwargs) != 0 {
			return Tuple{args, StrDict(kwargs)}, nil
		}
		return args[0], nil
	case "fail":
		return nil, &RemoteError{Type: "builtins.ValueError", Value: "go says no"}
	}
	return nil, UnknownMethod(o.InterfaceName(), method)
}

// TestInteropGoClientPythonServer connects to a Python Tub in both roles
// and both TLS versions, and calls get_version.
func TestInteropGoClientPythonServer(t *testing.T) {
	_, serverTubID, addr := startPyServer(t)
	for _, master := range []bool{true, false} {
		for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			name := map[bool]string{true: "master", false: "slave"}[master] + map[uint16]string{tls.VersionTLS12: "/TLS1.2", tls.VersionTLS13: "/TLS1.3"}[version]
			t.Run(name, func(t *testing.T) {
				var id *tubtls.Identity
				for id = newID(t); (id.TubID > serverTubID) != master; id = newID(t) {
				}
				ctx := testContext(t)
				c, info, err := Dial(ctx, DialConfig{
					Identity: id, TubID: serverTubID, Targets: []Target{tcpTarget(addr)},
					TLSConfig: func(c *tls.Config) { c.MaxVersion = version },
				})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				wantRole := map[bool]Role{true: RoleMaster, false: RoleSlave}[master]
				if info.Role != wantRole || info.TLSVersion != version {
					t.Errorf("role %v TLS %x, want %v %x", info.Role, info.TLSVersion, wantRole, version)
				}
				ref, err := c.GetReference(ctx, "swissnum-storage-0123456789abcdef")
				if err != nil {
					t.Fatal(err)
				}
				v, err := ref.Call(ctx, "get_version", nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				checkVersion(t, v)
			})
		}
	}
}

// checkVersion checks the Tahoe-shaped dict of docs/foolscap-protocol.md §5.4.
func checkVersion(t *testing.T, v any) {
	t.Helper()
	d, ok := v.(Dict)
	if !ok {
		t.Fatalf("get_version = %T %v, want Dict", v, v)
	}
	if av, _ := d.Get([]byte("application-version")); !reflect.DeepEqual(av, []byte("tahoe-lafs/1.19.0")) {
		t.Errorf("application-version = %#v", av)
	}
	sv, _ := d.Get([]byte("http://allmydata.org/tahoe/protocols/storage/v1"))
	s, ok := sv.(Dict)
	if !ok {
		t.Fatalf("storage protocol entry = %T", sv)
	}
	two64 := new(big.Int).Lsh(big.NewInt(1), 64)
	want := map[string]any{
		"maximum-immutable-share-size":     two64,
		"maximum-mutable-share-size":       int64(69105000000000000),
		"tolerates-immutable-read-overrun": true,
		"available-space":                  int64(123456789),
		"fills-holes-with-zero-bytes":      false,
	}
	for k, w := range want {
		got, ok := s.Get([]byte(k))
		if !ok || !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %#v, want %#v", k, got, w)
		}
	}
}

// TestInteropWrongTubID: a Python server whose certificate does not match
// the FURL's TubID is refused with "wrong tubid".
func TestInteropWrongTubID(t *testing.T) {
	claimed := newID(t).TubID
	_, tubID, addr := startPyServer(t, claimed)
	if tubID != claimed {
		t.Fatalf("python FURL has tubid %s, want the claimed %s", tubID, claimed)
	}
	_, _, err := Dial(testContext(t), DialConfig{Identity: newID(t), TubID: tubID, Targets: []Target{tcpTarget(addr)}})
	var me *tubtls.MismatchError
	var ne *NegotiationError
	if !errors.As(err, &me) || !errors.As(err, &ne) || ne.Phase != PhaseTLS || !strings.Contains(err.Error(), "wrong tubid") {
		t.Fatalf("err = %v, want a TLS-phase wrong tubid error", err)
	}
}

// TestInteropPythonClientGoListener: the Python client gets a reference to
// an object hosted by a Go Tub and calls it.
func TestInteropPythonClientGoListener(t *testing.T) {
	tub := NewTub(newID(t))
	connected := make(chan string, 1)
	l, err := Listen(testContext(t), "tcp", "127.0.0.1:0", ListenConfig{
		OnConnect: func(_ *Tub, peer string, _ *Conn) { connected <- peer },
		OnError:   func(_ net.Addr, err error) { t.Errorf("inbound negotiation failed: %v", err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.AddTub(tub)
	tub.SetLocation("tcp:" + l.Addr().String())
	obj := &echoObject{}
	furl, err := tub.Register(obj, "")
	if err != nil {
		t.Fatal(err)
	}
	p := pyfoolscap.Start(t, pyClient, furl)
	tubLine := p.Line(t, testTimeout)
	peer := recv(t, connected)
	if tubLine != "TUBID "+peer {
		t.Errorf("python says %q, OnConnect saw %s", tubLine, peer)
	}
	for _, want := range []string{
		"ECHO ([b'hello', 7, [1, 'two', None]], {'k': (True, 2.5)})",
		"FAIL <class 'ValueError'> go says no",
		`MISSING <class 'KeyError'> "unable to find reference for name starting with 'no'"`,
	} {
		got := p.Line(t, testTimeout)
		if !strings.HasPrefix(got, want) {
			t.Errorf("python printed %q, want prefix %q", got, want)
		}
	}
}

// pyConn dials the Python server as a fresh identity and returns the
// storage reference.
func pyConn(t *testing.T, tubID, addr string) (*Conn, *RemoteRef) {
	t.Helper()
	ctx := testContext(t)
	c, _, err := Dial(ctx, DialConfig{Identity: newID(t), TubID: tubID, Targets: []Target{tcpTarget(addr)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ref, err := c.GetReference(ctx, "swissnum-storage-0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	return c, ref
}

// TestInteropValues echoes every value kind of docs/foolscap-protocol.md §4.6
// through Python.
func TestInteropValues(t *testing.T) {
	_, tubID, addr := startPyServer(t)
	_, ref := pyConn(t, tubID, addr)
	ctx := testContext(t)
	big64 := new(big.Int).Lsh(big.NewInt(1), 64)
	negBig := new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), 40))
	tests := []struct {
		name string
		in   any
		want any
	}{
		{"bytes", []byte("hello"), []byte("hello")},
		{"vocab word as bytes", []byte("list"), []byte("list")},
		{"str", "héllo", "héllo"},
		{"None", nil, nil},
		{"True", true, true},
		{"False", false, false},
		{"int", 5, int64(5)},
		{"zero", 0, int64(0)},
		{"neg", -5, int64(-5)},
		{"min int32", -(1 << 31), int64(-(1 << 31))},
		{"2^31", 1 << 31, int64(1 << 31)},
		{"2^64", big64, big64},
		{"-2^40", negBig, int64(-(1 << 40))},
		{"float", 1.5, 1.5},
		{"list", []any{int64(1), []byte("a"), "b"}, []any{int64(1), []byte("a"), "b"}},
		{"tuple", Tuple{int64(1), nil}, Tuple{int64(1), nil}},
		{"dict", BytesDict(map[string]any{"a": int64(1), "b": []any{}}), BytesDict(map[string]any{"a": int64(1), "b": []any{}})},
		{"str dict", StrDict(map[string]any{"k": "v"}), StrDict(map[string]any{"k": "v"})},
		{"set", Set{int64(3)}, Set{int64(3)}},
		{"frozenset", FrozenSet{[]byte("x")}, FrozenSet{[]byte("x")}},
		{"nested", []any{Tuple{BytesDict(map[string]any{"x": []any{1.25}})}}, []any{Tuple{BytesDict(map[string]any{"x": []any{1.25}})}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ref.Call(ctx, "echo", []any{tt.in}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !valuesEqual(got, tt.want) {
				t.Errorf("echo(%#v) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

// valuesEqual is reflect.DeepEqual with *big.Int compared by value.
func valuesEqual(a, b any) bool {
	if x, ok := a.(*big.Int); ok {
		y, ok := b.(*big.Int)
		return ok && x.Cmp(y) == 0
	}
	return reflect.DeepEqual(a, b)
}

// TestInteropErrorsAndReferences: remote exceptions arrive typed; Python
// calls back into a Go object we passed; decref works both ways.
func TestInteropErrorsAndReferences(t *testing.T) {
	_, tubID, addr := startPyServer(t)
	c, ref := pyConn(t, tubID, addr)
	ctx := testContext(t)

	_, err := ref.Call(ctx, "fail", []any{"boom"}, nil)
	var re *RemoteError
	if !errors.As(err, &re) || re.Type != "builtins.ValueError" || re.Value != "boom" || !errors.Is(err, &RemoteError{Type: "builtins.Exception"}) {
		t.Errorf("fail: err = %#v, want a builtins.ValueError *RemoteError", err)
	}
	if _, err := c.GetReference(ctx, "nosuchname"); !errors.Is(err, &RemoteError{Type: "builtins.KeyError"}) {
		t.Errorf("unknown swissnum: err = %v, want KeyError", err)
	}

	// Inbound call to an object we passed.
	obj := &echoObject{}
	got, err := ref.Call(ctx, "call_back", []any{obj, []byte("ping")}, nil)
	if err != nil || !reflect.DeepEqual(got, []byte("ping")) {
		t.Fatalf("call_back = %#v, %v", got, err)
	}
	obj.mu.Lock()
	calls := append([]string(nil), obj.calls...)
	obj.mu.Unlock()
	if !reflect.DeepEqual(calls, []string{"echo"}) {
		t.Errorf("Go object saw calls %q, want [echo]", calls)
	}

	// Python drops its reference to our object: its decref reaches us.
	if _, err := ref.Call(ctx, "hold", []any{obj}, nil); err != nil {
		t.Fatal(err)
	}
	if n := exportedCount(c); n != 1 {
		t.Fatalf("%d objects exported while Python holds one", n)
	}
	if _, err := ref.Call(ctx, "release", nil, nil); err != nil {
		t.Fatal(err)
	}
	// The decref is sent by Python's eventual-send queue after release
	// returns; each round trip lets it run.
	for i := 0; exportedCount(c) != 0; i++ {
		if i == 50 {
			t.Fatal("Python's decref never arrived")
		}
		if _, err := ref.Call(ctx, "echo", []any{nil}, nil); err != nil {
			t.Fatal(err)
		}
	}

	// We drop a reference to a Python object: our decref reaches Python.
	base, err := ref.Call(ctx, "exported", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cv, err := ref.Call(ctx, "make_child", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	child := cv.(*RemoteRef)
	if v, err := child.Call(ctx, "ping", nil, nil); err != nil || !reflect.DeepEqual(v, []byte("pong")) {
		t.Fatalf("child.ping = %#v, %v", v, err)
	}
	if n, _ := ref.Call(ctx, "exported", nil, nil); n != base.(int64)+1 {
		t.Fatalf("python exports %v objects with the child, want %v", n, base.(int64)+1)
	}
	if err := child.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := ref.Call(ctx, "exported", nil, nil); n != base {
		t.Errorf("python exports %v objects after our decref, want %v", n, base)
	}
}

// exportedCount is how many of our objects the peer holds references to.
func exportedCount(c *Conn) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.locals)
}

// TestInteropDuplicateConnections replays §3.5's verified sequence against
// the real server (it is master: our identity is chosen with a smaller
// TubID), with one identity and incarnation.
func TestInteropDuplicateConnections(t *testing.T) {
	_, tubID, addr := startPyServer(t)
	var id *tubtls.Identity
	for id = newID(t); id.TubID > tubID; id = newID(t) {
	}
	ctx := testContext(t)
	inc := NewIncarnation()
	dial := func(inc string, last *LastConnection) (*Conn, error) {
		c, _, err := Dial(ctx, DialConfig{Identity: id, Incarnation: inc, TubID: tubID, Targets: []Target{tcpTarget(addr)}, LastConnection: last})
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		return c, err
	}
	last := &LastConnection{}
	a, err := dial(inc, last)
	if err != nil {
		t.Fatalf("A: %v", err)
	}
	if _, err := dial(inc, &LastConnection{}); !errors.Is(err, ErrDuplicateConnection) {
		t.Fatalf("B: err = %v, want ErrDuplicateConnection", err)
	}
	c, err := dial(inc, last)
	if err != nil {
		t.Fatalf("C: %v", err)
	}
	waitClosed(t, a, "A after C")
	if _, err := dial(NewIncarnation(), &LastConnection{}); err != nil {
		t.Fatalf("D: %v", err)
	}
	waitClosed(t, c, "C after D")
}

func waitClosed(t *testing.T, c *Conn, what string) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(testTimeout):
		t.Fatalf("%s: connection still open", what)
	}
}
