package foolscap

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// wire builds bytes from a capture in docs/foolscap-protocol.md notation: hex digits
// (spaces ignored) and "quoted ASCII" (Go escapes allowed).
func wire(t testing.TB, s string) []byte {
	t.Helper()
	var out []byte
	for len(s) > 0 {
		switch c := s[0]; {
		case c == ' ' || c == '\n' || c == '\t':
			s = s[1:]
		case c == '"':
			end := 1
			for end < len(s) && (s[end] != '"' || s[end-1] == '\\') {
				end++
			}
			lit, err := strconv.Unquote(s[:end+1])
			if err != nil {
				t.Fatalf("wire: bad literal %q: %v", s[:end+1], err)
			}
			out = append(out, lit...)
			s = s[end+1:]
		default:
			if len(s) < 2 {
				t.Fatalf("wire: odd hex digit at %q", s)
			}
			b, err := hex.DecodeString(s[:2])
			if err != nil {
				t.Fatalf("wire: bad hex at %q", s)
			}
			out = append(out, b...)
			s = s[2:]
		}
	}
	return out
}

func bigPow(base, exp int64, neg bool) *big.Int {
	x := new(big.Int).Exp(big.NewInt(base), big.NewInt(exp), nil)
	if neg {
		x.Neg(x)
	}
	return x
}

// fakeRefs is a refEncoder/refDecoder for golden tests without a Conn.
type fakeRefs struct{ sent map[Referenceable]int64 }

func (f *fakeRefs) encodeLocal(r Referenceable) (int64, bool, string, string, func(), error) {
	if f.sent == nil {
		f.sent = map[Referenceable]int64{}
	}
	f.sent[r]++
	return 1, f.sent[r] == 1, r.InterfaceName(), "", func() { f.sent[r]-- }, nil
}
func (f *fakeRefs) encodeRemote(r *RemoteRef) (int64, error) { return r.clid, nil }

type stubObj struct{ iname string }

func (s *stubObj) InterfaceName() string { return s.iname }
func (s *stubObj) CallRemote(_ context.Context, method string, _ []any, _ map[string]any) (any, error) {
	return nil, UnknownMethod(s.iname, method)
}

// TestEncodeGolden checks the encoder against the captures of
// docs/foolscap-protocol.md §4.6, §5.2-5.7 and §7.
func TestEncodeGolden(t *testing.T) {
	tests := []struct {
		name  string
		opens uint64 // the capture's first OPEN number
		enc   func(e *Encoder) ([]byte, error)
		want  string
	}{
		{"str héllo §4.6", 0x1d, val("héllo"), `1d88 0887 068268c3a96c6c6f 1d89`},
		{"None §4.6", 0x11, val(nil), `1188 0087 1189`},
		{"False §4.6", 5, val(false), `0588 0187 0081 0589`},
		{"True", 6, val(true), `0688 0187 0181 0689`},
		{"int 5", 0, val(5), `0581`},
		{"int 0", 0, val(uint8(0)), `0081`},
		{"int 123456789", 0, val(int32(123456789)), `151a6f3a81`},
		{"int -5", 0, val(int64(-5)), `0583`},
		{"int -2^31", 0, val(int64(-1 << 31)), `00000000 08 83`},
		{"int 2^31 LONGINT", 0, val(uint32(1 << 31)), `04 85 80000000`},
		{"int 2^64 LONGINT", 0, val(bigPow(2, 64, false)), `09 85 01 0000000000000000`},
		{"int 69105000000000000", 0, val(int64(69105000000000000)), `0785f582a1a1341000`},
		{"int -2^40 LONGNEG", 0, val(int64(-1 << 40)), `06 86 010000000000`},
		{"int min int64", 0, val(int64(-1 << 63)), `08 86 8000000000000000`},
		{"uint64 max", 0, val(uint64(1<<64 - 1)), `08 85 ffffffffffffffff`},
		{"float 1.5", 0, val(1.5), `84 3ff8000000000000`},
		{"bytes vocab word §4.4", 0, val([]byte("list")), `0487`},
		{"bytes", 0, val([]byte("x")), `0182 "x"`},
		{"dict key vocab §4.4", 0, val(Dict{{Key: []byte("call"), Value: 1}}), `0088 0387 0b87 0181 0089`},
		{"str with vocab body §4.4", 0, val("list"), `0088 0887 0487 0089`},
		{"decimal", 0, val(Decimal("1.5")), `0088 07 82 "decimal" 0382 "1.5" 0089`},
		{"getReferenceByName §5.2", 0, func(e *Encoder) ([]byte, error) {
			return e.appendCall(nil, 1, 0, "getReferenceByName", nil, map[string]any{"name": []byte("swissnum-storage-0123456789abcdef")})
		}, `0088 0b87 0181 0081 1282 "getReferenceByName" 0188 0c87 0081 0482 "name" 2182 "swissnum-storage-0123456789abcdef" 0189 0089`},
		{"get_version call §5.3 §7.2", 2, func(e *Encoder) ([]byte, error) {
			return e.appendCall(nil, 2, 1, "get_version", nil, nil)
		}, `02880b87028101810b826765745f76657273696f6e03880c87008103890289`},
		{"fail call §7.1", 4, func(e *Encoder) ([]byte, error) {
			return e.appendCall(nil, 3, 1, "fail", []any{[]byte("boom")}, nil)
		}, `04 88 0b 87 03 81 01 81 04 82 "fail" 05 88 0c 87 01 81 04 82 "boom" 05 89 04 89`},
		{"my-reference first send §5.6", 4, func(e *Encoder) ([]byte, error) {
			e.refs = &fakeRefs{}
			return e.Encode(&stubObj{})
		}, `0488 0f87 0181 0082 0489`},
		{"answer hi from go §5.6", 5, func(e *Encoder) ([]byte, error) {
			return e.appendAnswer(nil, "answer", 1, []byte("hi from go"))
		}, `0588 0d87 0181 0a82 "hi from go" 0589`},
		{"decref answer None §5.6", 0, func(e *Encoder) ([]byte, error) {
			return e.appendAnswer(nil, "answer", 3, nil)
		}, `0088 0d87 0381 0188 0087 0189 0089`},
		{"decref call §5.7", 0x10, func(e *Encoder) ([]byte, error) {
			return e.appendCall(nil, 6, 0, "decref", nil, map[string]any{"count": 1, "clid": 2})
		}, `1088 0b87 0681 0081 0682 "decref" 1188 0c87 0081 0482 "clid" 0281 0582 "count" 0181 1189 1089`},
		// §5.5's Go-sent error with its attributes in Python's order
		// (value, type, traceback, parents), as FailureSlicer sends them.
		{"error Failure §5.5", 9, func(e *Encoder) ([]byte, error) {
			return e.appendAnswer(nil, "error", 2, &RemoteError{Type: "builtins.AttributeError", Value: "no method nosuch"})
		}, `0988 0e87 0281 0a88 1287 1e82 "twisted.python.failure.Failure" 0582 "value" 1082 "no method nosuch"
		    0482 "type" 1782 "builtins.AttributeError" 0982 "traceback" 1682 "Traceback unavailable\n" 0782 "parents"
		    0b88 0487 1782 "builtins.AttributeError" 1282 "builtins.Exception" 1682 "builtins.BaseException" 0f82 "builtins.object" 0b89
		    0a89 0989`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEncoder(1)
			e.opens = tt.opens
			got, err := tt.enc(e)
			if err != nil {
				t.Fatal(err)
			}
			if want := wire(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("encoded\n got %x\nwant %x", got, want)
			}
		})
	}
}

func val(v any) func(e *Encoder) ([]byte, error) {
	return func(e *Encoder) ([]byte, error) { return e.Encode(v) }
}

// getVersionAnswer is the §5.4 capture.
const getVersionAnswer = `0288 0d87 0281 0388 0387 1382 "application-version" 1182 "tahoe-lafs/1.19.0"
	2f82 "http://allmydata.org/tahoe/protocols/storage/v1" 0488 0387
	0f82 "available-space" 151a6f3a81
	1b82 "fills-holes-with-zero-bytes" 0588 0187 0081 0589
	1c82 "maximum-immutable-share-size" 0985010000000000000000
	1a82 "maximum-mutable-share-size" 0785f582a1a1341000
	2082 "tolerates-immutable-read-overrun" 0688 0187 0181 0689
	0489 0389 0289`

var getVersionValue = Dict{
	{[]byte("application-version"), []byte("tahoe-lafs/1.19.0")},
	{[]byte("http://allmydata.org/tahoe/protocols/storage/v1"), Dict{
		{[]byte("available-space"), int64(123456789)},
		{[]byte("fills-holes-with-zero-bytes"), false},
		{[]byte("maximum-immutable-share-size"), bigPow(2, 64, false)},
		{[]byte("maximum-mutable-share-size"), int64(69105000000000000)},
		{[]byte("tolerates-immutable-read-overrun"), true},
	}},
}

// pbDecoder returns a PB-mode decoder over b whose OPEN counter starts at
// objCount (captures taken mid-connection).
func pbDecoder(r io.Reader, objCount int64) *Decoder {
	d := NewDecoder(r, DecoderOptions{Vocab: 1})
	d.pb = true
	d.objCount = objCount
	return d
}

func decodeMessage(t *testing.T, capture string, objCount int64) *message {
	t.Helper()
	// Decode both in one read and one byte at a time (Python sends each
	// token in its own TLS record).
	var msgs [2]*message
	for i, r := range []io.Reader{bytes.NewReader(wire(t, capture)), iotest.OneByteReader(bytes.NewReader(wire(t, capture)))} {
		v, err := pbDecoder(r, objCount).Decode()
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		m, ok := v.(*message)
		if !ok {
			t.Fatalf("decoded %T, want *message", v)
		}
		msgs[i] = m
	}
	if !reflect.DeepEqual(msgs[0], msgs[1]) {
		t.Fatalf("fragmented decode differs: %+v vs %+v", msgs[0], msgs[1])
	}
	return msgs[0]
}

// TestDecodeGolden decodes the captures of docs/foolscap-protocol.md §4-§7.
func TestDecodeGolden(t *testing.T) {
	t.Run("get_version answer §5.4", func(t *testing.T) {
		m := decodeMessage(t, getVersionAnswer, 2)
		if m.kind != "answer" || m.reqID != 2 || m.violation != nil {
			t.Fatalf("got %+v", m)
		}
		if !reflect.DeepEqual(m.value, getVersionValue) {
			t.Errorf("value\n got %#v\nwant %#v", m.value, getVersionValue)
		}
		d := m.value.(Dict)
		v, _ := d.GetString("http://allmydata.org/tahoe/protocols/storage/v1")
		if size, _ := v.(Dict).GetString("maximum-immutable-share-size"); size.(*big.Int).Cmp(bigPow(2, 64, false)) != 0 {
			t.Errorf("maximum-immutable-share-size = %v", size)
		}
	})
	t.Run("getReferenceByName answer my-reference §5.2", func(t *testing.T) {
		m := decodeMessage(t, `0088 0d87 0181 0188 0f87 0181 2382 "RIStorageServer.tahoe.allmydata.com"
			5b82 "pb://nrvkbi4kvmfi3pj6j62kbfoa7qbog4hv@tcp:127.0.0.1:47002/swissnum-storage-0123456789abcdef" 0189 0089`, 0)
		ref, ok := m.value.(*RemoteRef)
		if !ok {
			t.Fatalf("value %T", m.value)
		}
		if ref.CLID() != 1 || ref.InterfaceName() != "RIStorageServer.tahoe.allmydata.com" ||
			ref.URL() != "pb://nrvkbi4kvmfi3pj6j62kbfoa7qbog4hv@tcp:127.0.0.1:47002/swissnum-storage-0123456789abcdef" {
			t.Errorf("ref = %+v", ref)
		}
	})
	t.Run("getReferenceByName call §5.2", func(t *testing.T) {
		m := decodeMessage(t, `0088 0b87 0181 0081 1282 "getReferenceByName" 0188 0c87 0081 0482 "name" 2182 "swissnum-storage-0123456789abcdef" 0189 0089`, 0)
		if m.kind != "call" || m.reqID != 1 || m.clid != 0 || m.method != "getReferenceByName" || len(m.args.args) != 0 ||
			!bytes.Equal(m.args.kwargs["name"].([]byte), []byte("swissnum-storage-0123456789abcdef")) {
			t.Errorf("got %+v %+v", m, m.args)
		}
	})
	t.Run("inbound call §5.6", func(t *testing.T) {
		m := decodeMessage(t, `0288 0b87 0181 0181 0582 "hello" 0388 0c87 0181 0182 "x" 0182 "k" 0181 0389 0289`, 2)
		want := &arguments{args: []any{[]byte("x")}, kwargs: map[string]any{"k": int64(1)}}
		if m.method != "hello" || m.clid != 1 || !reflect.DeepEqual(m.args, want) {
			t.Errorf("got %+v %+v", m, m.args)
		}
	})
	t.Run("Python Failure §5.5 §7.1", func(t *testing.T) {
		tb := strings.Repeat("t", 1278)
		m := decodeMessage(t, `0788 0e87 0381 0888 1287 1e82 "twisted.python.failure.Failure" 0582 "value" 0482 "boom"
			0482 "type" 1382 "builtins.ValueError" 0982 "traceback" 7e09 82 "`+tb+`" 0782 "parents"
			0988 0487 1382 "builtins.ValueError" 1282 "builtins.Exception" 1682 "builtins.BaseException" 0f82 "builtins.object" 0989
			0889 0789`, 7)
		want := &RemoteError{Type: "builtins.ValueError", Value: "boom", Traceback: tb,
			Parents: []string{"builtins.ValueError", "builtins.Exception", "builtins.BaseException", "builtins.object"}}
		if m.kind != "error" || m.reqID != 3 || !reflect.DeepEqual(m.value, want) {
			t.Errorf("got %+v value %+v", m, m.value)
		}
		if !errors.Is(m.value.(error), &RemoteError{Type: "builtins.Exception"}) {
			t.Error("errors.Is does not match a parent class")
		}
	})
	t.Run("Go-sent Failure §5.5 (type first)", func(t *testing.T) {
		m := decodeMessage(t, `0988 0e87 0281 0a88 1287 1e82 "twisted.python.failure.Failure" 0482 "type" 1782 "builtins.AttributeError"
			0582 "value" 1082 "no method nosuch" 0982 "traceback" 1682 "Traceback unavailable\n" 0782 "parents"
			0b88 0487 1782 "builtins.AttributeError" 1282 "builtins.Exception" 1682 "builtins.BaseException" 0f82 "builtins.object" 0b89
			0a89 0989`, 9)
		f := m.value.(*RemoteError)
		if f.Type != "builtins.AttributeError" || f.Value != "no method nosuch" || f.Traceback != "Traceback unavailable\n" || len(f.Parents) != 4 {
			t.Errorf("got %+v", f)
		}
	})
	t.Run("ABORT in answer §4.5", func(t *testing.T) {
		m := decodeMessage(t, `0288 0d87 0281 0388 0487 0181 038a 0389 028a 0289`, 2)
		if m.kind != "answer" || !m.haveReqID || m.reqID != 2 || !errors.Is(m.violation, ErrAborted) {
			t.Errorf("got %+v", m)
		}
	})
	t.Run("decref call §5.7", func(t *testing.T) {
		m := decodeMessage(t, `1088 0b87 0681 0081 0682 "decref" 1188 0c87 0081 0482 "clid" 0281 0582 "count" 0181 1189 1089`, 0x10)
		if m.method != "decref" || m.args.kwargs["clid"] != int64(2) || m.args.kwargs["count"] != int64(1) {
			t.Errorf("got %+v %+v", m, m.args)
		}
	})
}

// TestDecodeValuesGolden decodes the single values of §4.6, including
// VOCAB in data and the shared-reference example.
func TestDecodeValuesGolden(t *testing.T) {
	inner := []any{int64(7), int64(8)}
	tests := []struct {
		name     string
		in       string
		objCount int64
		want     any
	}{
		{"str", `1d88 0887 068268c3a96c6c6f 1d89`, 0x1d, "héllo"},
		{"None", `1188 0087 1189`, 0x11, nil},
		{"False", `0588 0187 0081 0589`, 5, false},
		{"INT zero as no digits", `81`, 0, int64(0)},
		{"INT zero as many digits", `000000 81`, 0, int64(0)},
		{"NEG -2^31", `00 00 00 00 08 83`, 0, int64(-1 << 31)},
		{"LONGINT 2^31", `04 85 80 00 00 00`, 0, int64(1 << 31)},
		{"LONGINT 2^64", `09 85 01 00 00 00 00 00 00 00 00`, 0, bigPow(2, 64, false)},
		{"LONGNEG -2^40", `06 86 01 00 00 00 00 00`, 0, int64(-1 << 40)},
		{"LONGNEG -2^70", `09 86 40 00 00 00 00 00 00 00 00`, 0, bigPow(2, 70, true)},
		{"INT header beyond int64", `0000000000000000000001 81`, 0, bigPow(2, 70, false)},
		{"float", `84 3f f8 00 00 00 00 00 00`, 0, 1.5},
		{"VOCAB data §4.4", `04 87`, 0, []byte("list")},
		{"unicode with VOCAB body §4.4", `0088 0887 0487 0089`, 0, "list"},
		{"dict with VOCAB key", `0088 0387 0b87 0181 0089`, 0, Dict{{[]byte("call"), int64(1)}}},
		{"shared reference §4.6", `1588 0487 1688 0487 0781 0881 1689 1788 0287 1681 1789 1589`, 0x15,
			[]any{inner, inner}},
		{"tuple set frozenset", `0088 0587 0188 0687 0181 0189 0288 0787 0282 "ab" 0289 0089`, 0,
			Tuple{Set{int64(1)}, FrozenSet{[]byte("ab")}}},
		{"decimal", `0088 07 82 "decimal" 0382 "1.5" 0089`, 0, Decimal("1.5")},
		{"PING and PONG inside", `0088 8e 0487 07 8e 0181 8f 0089`, 0, []any{int64(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(iotest.OneByteReader(bytes.NewReader(wire(t, tt.in))), DecoderOptions{Vocab: 1})
			d.objCount = tt.objCount
			got, err := d.Decode()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
			if _, err := d.Decode(); err != io.EOF {
				t.Errorf("after the object: %v, want io.EOF", err)
			}
		})
	}
}

func TestPingCallbacks(t *testing.T) {
	var pings, pongs []uint64
	d := NewDecoder(bytes.NewReader(wire(t, `8e 07 8e 8f 0588 0087 8e 0589 2a 8f`)), DecoderOptions{
		Vocab:  1,
		OnPing: func(n uint64) { pings = append(pings, n) },
		OnPong: func(n uint64) { pongs = append(pongs, n) },
	})
	d.objCount = 5
	if v, err := d.Decode(); err != nil || v != nil {
		t.Fatalf("Decode = %v, %v", v, err)
	}
	if _, err := d.Decode(); err != io.EOF {
		t.Fatalf("second Decode = %v", err)
	}
	if !reflect.DeepEqual(pings, []uint64{0, 7, 0}) || !reflect.DeepEqual(pongs, []uint64{0, 42}) {
		t.Errorf("pings %v pongs %v", pings, pongs)
	}
	if got := appendPingPong(nil, 7, tokPong); !bytes.Equal(got, []byte{7, 0x8f}) {
		t.Errorf("PONG 7 = %x", got)
	}
	if got := appendPingPong(nil, 0, tokPong); !bytes.Equal(got, []byte{0x8f}) {
		t.Errorf("PONG 0 = %x", got)
	}
}

func TestVocabHash(t *testing.T) {
	for idx, want := range map[int]string{0: "da39", 1: "bb33"} {
		words, ok := VocabTable(idx)
		if !ok || VocabHash(words) != want {
			t.Errorf("table %d: hash %s, want %s", idx, VocabHash(words), want)
		}
	}
	if w, _ := VocabTable(1); len(w) != 25 || w[11] != "call" || w[24] != "attrdict" {
		t.Errorf("table 1 = %v", w)
	}
	if _, ok := VocabTable(2); ok {
		t.Error("table 2 should be unknown")
	}
}

func TestEncodeErrors(t *testing.T) {
	cyclic := []any{nil}
	cyclic[0] = cyclic
	for _, v := range []any{map[string]any{"a": 1}, struct{}{}, cyclic, (*big.Int)(nil), &stubObj{}, &RemoteRef{clid: 1}, complex(1, 2)} {
		e := NewEncoder(1)
		e.opens = 3
		out, err := e.Encode([]any{int64(1), v})
		var ee *EncodeError
		if !errors.As(err, &ee) || len(out) != 0 || e.opens != 3 {
			t.Errorf("Encode(%T) = %x, %v (opens %d); want *EncodeError, nothing consumed", v, out, err, e.opens)
		}
	}
}

// TestEncodeRollback checks that a failed message undoes reference counts.
func TestEncodeRollback(t *testing.T) {
	f := &fakeRefs{}
	obj := &stubObj{}
	e := NewEncoder(1)
	e.refs = f
	if _, err := e.Encode([]any{obj, struct{}{}}); err == nil {
		t.Fatal("want an error")
	}
	if f.sent[obj] != 0 {
		t.Errorf("refcount after failed encode = %d, want 0", f.sent[obj])
	}
}
