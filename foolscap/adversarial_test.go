package foolscap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"runtime"
	"strings"
	"testing"
)

// This file drives the real client (Dial, Conn, RemoteRef.Call) against a
// scripted hostile server over loopback, one family of inputs per way a
// small message used to cost far more than its size, each at growing sizes.
// Each run measures what the client allocates (runtime.MemStats, bytes and
// objects, across every goroutine) and the hashing work the decoder does
// (bytes of canonical key encodings), and asserts both stay under a
// constant per byte received, plus a fixed allowance for the call itself.

// Bounds per byte received, and the fixed allowance for one call (its
// encoding, the TLS records, the channel and goroutine handoffs).
const (
	maxAllocPerByte   = 64
	maxObjectsPerByte = 2
	maxHashPerByte    = 8
	callAllowance     = 256 << 10
	callObjects       = 2000
)

// bw writes Banana by hand, the way a hostile server would: no encoder
// checks, reference numbers counted across messages as the receiver counts
// them.
type bw struct {
	buf   []byte
	opens uint64
}

func (b *bw) open(typ string) uint64 {
	n := b.opens
	b.opens++
	b.buf = appendToken(b.buf, n, tokOpen)
	b.str(typ)
	return n
}
func (b *bw) close(n uint64) { b.buf = appendToken(b.buf, n, tokClose) }
func (b *bw) str(s string) {
	b.buf = appendToken(b.buf, uint64(len(s)), tokString)
	b.buf = append(b.buf, s...)
}
func (b *bw) int(i uint64) { b.buf = appendToken(b.buf, i, tokInt) }
func (b *bw) longint(mag []byte) {
	b.buf = appendToken(b.buf, uint64(len(mag)), tokLongInt)
	b.buf = append(b.buf, mag...)
}

// ref writes a reference to object n and returns its own open number.
func (b *bw) ref(n uint64) {
	o := b.open("reference")
	b.int(n)
	b.close(o)
}

func (b *bw) answer(kind string, reqID uint64, value func()) {
	o := b.open(kind)
	b.int(reqID)
	value()
	b.close(o)
}

// hostileFamily is one way to make a message cost more than its size.
type hostileFamily struct {
	name  string
	sizes []int
	// script writes what the server sends for size n; the client's call
	// is request 1.
	script func(b *bw, n int)
	// check looks at the call's outcome.
	check func(t *testing.T, n int, v any, err error)
}

func hostileFamilies() []hostileFamily {
	wantViolation := func(reason error) func(*testing.T, int, any, error) {
		return func(t *testing.T, n int, v any, err error) {
			t.Helper()
			if !errors.Is(err, reason) {
				t.Fatalf("size %d: call = %v, %v; want %v", n, describe(v, 80), err, reason)
			}
			if len(err.Error()) > 2*maxFailureValue {
				t.Fatalf("size %d: error text of %d bytes", n, len(err.Error()))
			}
		}
	}
	return []hostileFamily{{
		// Tuple i holds two references to tuple i-1; a frozenset holds the
		// last one, so decoding hashes it by value: 2^n leaves.
		name:  "shared_references",
		sizes: []int{8, 16, 24, 48},
		script: func(b *bw, n int) {
			b.answer("answer", 1, func() {
				l := b.open("list")
				prev := b.open("tuple")
				b.str("x")
				b.close(prev)
				for range n {
					t := b.open("tuple")
					b.ref(prev)
					b.ref(prev)
					b.close(t)
					prev = t
				}
				s := b.open("immutable-set")
				b.ref(prev)
				b.close(s)
				b.close(l)
			})
		},
		check: func(t *testing.T, n int, v any, err error) {
			// Expanded, tuple i costs about 2^i × 250 bytes: beyond 16
			// levels the message is over its 16 MiB budget.
			if n == 16 && errors.Is(err, ErrMessageTooLarge) {
				return
			}
			if n <= 16 {
				if err != nil {
					t.Fatalf("size %d: %v", n, err)
				}
				return
			}
			wantViolation(ErrMessageTooLarge)(t, n, v, err)
		},
	}, {
		// A LONGINT as a set member, hashed by value.
		name:  "longint_member",
		sizes: []int{16 << 10, 128 << 10, 1 << 20},
		script: func(b *bw, n int) {
			b.answer("answer", 1, func() {
				s := b.open("immutable-set")
				mag := bytes.Repeat([]byte{0xa5}, n)
				b.longint(mag)
				b.close(s)
			})
		},
		check: func(t *testing.T, n int, v any, err error) {
			fs, ok := v.(FrozenSet)
			if err != nil || !ok || len(fs) != 1 || fs[0].(*big.Int).BitLen() != 8*n {
				t.Fatalf("size %d: %T %v", n, v, err)
			}
		},
	}, {
		// Frozensets nested n deep, each with a 1 KiB member of its own.
		name:  "nested_frozensets",
		sizes: []int{8, 16, 32, 60},
		script: func(b *bw, n int) {
			b.answer("answer", 1, func() {
				var opens []uint64
				for i := range n {
					opens = append(opens, b.open("immutable-set"))
					b.str(fmt.Sprintf("%04d", i) + strings.Repeat("m", 1020))
				}
				for i := len(opens) - 1; i >= 0; i-- {
					b.close(opens[i])
				}
			})
		},
		check: func(t *testing.T, n int, v any, err error) {
			if err != nil {
				t.Fatalf("size %d: %v", n, err)
			}
		},
	}, {
		// An answer nobody asked for, then the real one.
		name:  "unsolicited_answer",
		sizes: []int{64 << 10, 1 << 20, 8 << 20},
		script: func(b *bw, n int) {
			b.answer("answer", 1000, func() {
				l := b.open("list")
				for range n / 1024 {
					b.str(strings.Repeat("u", 1020))
				}
				b.close(l)
			})
			b.answer("answer", 1, func() { b.str("ok") })
		},
		check: func(t *testing.T, n int, v any, err error) {
			if s, ok := v.([]byte); err != nil || !ok || string(s) != "ok" {
				t.Fatalf("size %d: %v, %v; want the real answer", n, v, err)
			}
		},
	}, {
		// An error whose value is not a Failure but a list of strings.
		name:  "error_not_a_failure",
		sizes: []int{64 << 10, 1 << 20, 15 << 20},
		script: func(b *bw, n int) {
			b.answer("error", 1, func() {
				l := b.open("list")
				for range n / 1024 {
					b.str(strings.Repeat("e", 1020))
				}
				b.close(l)
			})
		},
		check: wantViolation(ErrBadValue),
	}, {
		// A Failure whose value is far over Foolscap's 1000 bytes.
		name:  "oversized_failure",
		sizes: []int{4 << 10, 64 << 10, 1 << 20},
		script: func(b *bw, n int) {
			b.answer("error", 1, func() {
				c := b.open("copyable")
				b.str(failureClassName)
				b.str("type")
				b.str("builtins.ValueError")
				b.str("value")
				b.str(strings.Repeat("\x1b[2J", n/4))
				b.close(c)
			})
		},
		check: wantViolation(ErrStringTooLong),
	}, {
		// Empty lists: no atom at all, so only the containers are charged.
		name:  "empty_containers",
		sizes: []int{16 << 10, 256 << 10, 2 << 20},
		script: func(b *bw, n int) {
			b.answer("answer", 1, func() {
				l := b.open("list")
				for range n / 8 {
					b.close(b.open("list"))
				}
				b.close(l)
			})
		},
		check: func(t *testing.T, n int, v any, err error) {
			if err != nil && !errors.Is(err, ErrMessageTooLarge) && !errors.Is(err, ErrTooManyItems) {
				t.Fatalf("size %d: %v", n, err)
			}
		},
	}, {
		// Many distinct remote references in one answer.
		name:  "remote_references",
		sizes: []int{1 << 10, 4 << 10, 16 << 10},
		script: func(b *bw, n int) {
			b.answer("answer", 1, func() {
				l := b.open("list")
				for i := range n {
					r := b.open("my-reference")
					b.int(uint64(i + 1))
					b.close(r)
				}
				b.close(l)
			})
		},
		check: func(t *testing.T, n int, v any, err error) {
			if n <= DefaultMaxRemoteRefs {
				if l, ok := v.([]any); err != nil || !ok || len(l) != n {
					t.Fatalf("size %d: %v", n, err)
				}
				return
			}
			wantViolation(ErrTooManyItems)(t, n, v, err)
		},
	}}
}

// hostileServer negotiates for real (a Go Listener) and then, instead of
// the PB layer, reads the client's first call and writes script.
func hostileServer(t *testing.T, script []byte) (*Listener, *Tub) {
	t.Helper()
	_, serverID := idPair(t, false)
	tub := NewTub(serverID)
	l, err := Listen(testContext(t), "tcp", "127.0.0.1:0", ListenConfig{})
	if err != nil {
		t.Fatal(err)
	}
	l.handoff = func(nc net.Conn, cc ConnConfig) {
		// The client's call is pending once its first byte arrives.
		if _, err := io.ReadFull(nc, make([]byte, 1)); err != nil {
			return
		}
		go io.Copy(io.Discard, nc)
		if _, err := nc.Write(script); err != nil {
			return
		}
		<-l.ctx.Done()
	}
	l.AddTub(tub)
	t.Cleanup(func() { l.Close() })
	return l, tub
}

// cost is what one run cost the client.
type cost struct {
	in      int    // bytes the server sent
	alloc   uint64 // bytes allocated
	objects uint64 // objects allocated
	hash    int64  // bytes of canonical key encodings hashed
}

func runHostile(t *testing.T, f hostileFamily, n int) cost {
	var b bw
	f.script(&b, n)
	l, tub := hostileServer(t, b.buf)
	clientID, _ := idPair(t, false)
	ctx := testContext(t)
	c, _, err := Dial(ctx, DialConfig{
		Identity: clientID, TubID: tub.TubID(), Targets: []Target{tcpTarget(l.Addr().String())},
		ConnConfig: ConnConfig{KeepaliveTimeout: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hashBefore := c.dec.hashed.Load()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v, err := c.call(ctx, 0, "get_version", nil, nil)
	runtime.ReadMemStats(&after)
	f.check(t, n, v, err)
	runtime.KeepAlive(v)
	return cost{in: len(b.buf), alloc: after.TotalAlloc - before.TotalAlloc,
		objects: after.Mallocs - before.Mallocs, hash: c.dec.hashed.Load() - hashBefore}
}

// TestHostileServerCostsWhatItSends runs every family at growing sizes.
func TestHostileServerCostsWhatItSends(t *testing.T) {
	for _, f := range hostileFamilies() {
		t.Run(f.name, func(t *testing.T) {
			for _, n := range f.sizes {
				c := runHostile(t, f, n)
				t.Logf("size %8d: %9d bytes in, %10d bytes allocated (%.2f/byte), %7d objects, %9d bytes hashed",
					n, c.in, c.alloc, float64(c.alloc)/float64(c.in), c.objects, c.hash)
				if c.alloc > maxAllocPerByte*uint64(c.in)+callAllowance {
					t.Errorf("size %d: %d bytes allocated for %d received (limit %d/byte + %d)", n, c.alloc, c.in, maxAllocPerByte, callAllowance)
				}
				if c.objects > maxObjectsPerByte*uint64(c.in)+callObjects {
					t.Errorf("size %d: %d objects allocated for %d bytes received", n, c.objects, c.in)
				}
				if c.hash > maxHashPerByte*int64(c.in)+1024 {
					t.Errorf("size %d: %d bytes hashed for %d received", n, c.hash, c.in)
				}
			}
		})
	}
}

// TestDroppedRemoteRefsAreReleased: references the program drops leave the
// table and are decref'd on the peer, so a long-lived connection that is
// sent new references all the time holds only those still in use.
func TestDroppedRemoteRefsAreReleased(t *testing.T) {
	server, client := net.Pipe()
	var made int
	maker := &testObj{iname: "RIMaker", methods: map[string]func(context.Context, []any, map[string]any) (any, error){
		"make": func(context.Context, []any, map[string]any) (any, error) {
			made++
			return &testObj{iname: "RIThing"}, nil
		},
	}}
	s := NewConn(server, ConnConfig{KeepaliveTimeout: -1, Lookup: func(name []byte) (Referenceable, bool) { return maker, true }})
	defer s.Close()
	c := NewConn(client, ConnConfig{KeepaliveTimeout: -1, MaxRemoteRefs: 8})
	defer c.Close()
	ctx := testContext(t)
	ref, err := c.GetReference(ctx, "maker")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		v, err := ref.Call(ctx, "make", nil, nil)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if _, ok := v.(*RemoteRef); !ok {
			t.Fatalf("call %d: %T", i, v)
		}
		// v is dropped here; collect it so the table has room.
		v = nil
		waitTableBelow(t, c, s, 2)
	}
	runtime.KeepAlive(ref)
}

// waitTableBelow collects garbage until the client holds fewer than n
// remote references and the server holds fewer than n local ones, i.e. the
// decrefs arrived. It yields to the cleanup and control goroutines between
// rounds and gives up after many rounds, never waiting on the clock.
func waitTableBelow(t *testing.T, c, s *Conn, n int) {
	t.Helper()
	for range 100000 {
		runtime.GC()
		c.mu.Lock()
		cn := len(c.remotes)
		c.mu.Unlock()
		s.mu.Lock()
		sn := len(s.localIDs)
		s.mu.Unlock()
		if cn < n && sn < n {
			return
		}
		runtime.Gosched()
	}
	t.Fatalf("references not released")
}

// FuzzDecodeCost checks, on every input, the bound the hostile families
// check at chosen sizes: decoding a stream (generic and PB, with the
// default Limits), hashing its keys and describing each value it yields
// allocate at most a constant per input byte plus a fixed allowance, and
// hash at most a constant per byte. Seeds are the families' scripts at
// small sizes and the wire captures.
func FuzzDecodeCost(f *testing.F) {
	for _, fam := range hostileFamilies() {
		var b bw
		fam.script(&b, min(fam.sizes[0], 64))
		f.Add(b.buf)
	}
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, pb := range []bool{false, true} {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			d := NewDecoder(bytes.NewReader(in), DecoderOptions{Vocab: 1})
			d.pb = pb
			for {
				v, err := d.Decode()
				if err != nil && !isViolation(err) {
					break
				}
				if len(describe(v, 256)) > 256+len("…") {
					t.Fatalf("describe exceeded its cap")
				}
			}
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			if limit := maxAllocPerByte*uint64(len(in)) + 64<<10; alloc > limit {
				t.Fatalf("pb=%v: %d bytes allocated for %d bytes of input (limit %d)", pb, alloc, len(in), limit)
			}
			if objs := after.Mallocs - before.Mallocs; objs > maxObjectsPerByte*uint64(len(in))+callObjects {
				t.Fatalf("pb=%v: %d objects allocated for %d bytes of input", pb, objs, len(in))
			}
			if h := d.hashed.Load(); h > maxHashPerByte*int64(len(in))+1024 {
				t.Fatalf("pb=%v: %d bytes hashed for %d bytes of input", pb, h, len(in))
			}
		}
	})
}
