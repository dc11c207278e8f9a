package foolscap

import (
	"bytes"
	"errors"
	"io"
	"math"
	"math/big"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// TestHostileInput feeds malformed streams; each must fail with its own
// error, promptly, without hanging or reading past what it needs.
func TestHostileInput(t *testing.T) {
	deep := strings.Repeat("0088 0487 ", 65)
	tests := []struct {
		name   string
		in     []byte
		pb     bool
		lim    Limits
		reason error
		fatal  bool // *BananaError rather than *Violation
	}{
		{name: "header over 64 digits", in: append(bytes.Repeat([]byte{1}, 65), 0x81), reason: ErrHeaderTooLong, fatal: true},
		{name: "oversized ERROR", in: wire(t, `69 07 8d "x"`), reason: ErrErrorTooLong, fatal: true},
		{name: "peer ERROR", in: wire(t, `3b 8d "BananaError(in <RootUnslicer>): ('top-level must be OPEN',)"`), reason: ErrPeerError, fatal: true},
		{name: "old LIST token", in: wire(t, `01 80`), reason: ErrOldBanana, fatal: true},
		{name: "invalid type byte", in: wire(t, `01 90`), reason: ErrInvalidTypeByte, fatal: true},
		{name: "type byte 0x8b", in: wire(t, `8b`), reason: ErrInvalidTypeByte, fatal: true},
		{name: "lost sync CLOSE", in: wire(t, `0088 0487 0589`), reason: ErrLostSync, fatal: true},
		{name: "CLOSE at top level", in: wire(t, `0089`), reason: ErrLostSync, fatal: true},
		{name: "top-level non-OPEN on PB", in: wire(t, `0581`), pb: true, reason: ErrTopLevelNotOpen, fatal: true},
		{name: "OPEN followed by OPEN", in: wire(t, `0088 0188`), reason: ErrBadSequence, fatal: true},
		{name: "unknown VOCAB", in: wire(t, `1987`), reason: ErrUnknownVocab, fatal: true},
		{name: "deep nesting", in: wire(t, deep), reason: ErrTooDeep, fatal: true},
		{name: "huge declared STRING", in: wire(t, `7f7f7f7f7f 82 "abc"`), reason: ErrMessageTooLarge, fatal: true},
		{name: "negotiation block", in: []byte("banana-decision-version: 1\r\nerror: Duplicate connection\r\n\r\n"), pb: true, reason: ErrNegotiationText, fatal: true},
		{name: "STRING over MaxStringLength", in: wire(t, `0088 0487 0a82 "0123456789" 0089`), lim: Limits{MaxStringLength: 9}, reason: ErrStringTooLong},
		{name: "opentype over 15 bytes", in: wire(t, `0088 1082 "0123456789abcdef" 0089`), reason: ErrOpenTypeTooLong},
		{name: "copyable name over 30 bytes", in: wire(t, `0088 1287 1f82 "0123456789012345678901234567890" 0089`), reason: ErrOpenTypeTooLong},
		{name: "unknown opentype", in: wire(t, `0088 0382 "foo" 0089`), reason: ErrUnknownOpenType},
		{name: "set-vocab at top of PB", in: wire(t, `0088 0987 0089`), pb: true, reason: ErrUnknownOpenType},
		{name: "too many items", in: wire(t, `0088 0487 0181 0181 0181 0089`), lim: Limits{MaxItems: 2}, reason: ErrTooManyItems},
		{name: "message too large", in: wire(t, `0088 0487 0a82 "0123456789" 0a82 "0123456789" 0a82 "0123456789" 0a82 "0123456789" 0089`), lim: Limits{MaxMessageSize: 90}, reason: ErrMessageTooLarge},
		{name: "duplicate dict key", in: wire(t, `0088 0387 0182 "a" 0181 0182 "a" 0281 0089`), reason: ErrBadSequence},
		{name: "unhashable dict key", in: wire(t, `0088 0387 0188 0487 0189 0181 0089`), reason: ErrBadValue},
		{name: "bad boolean", in: wire(t, `0088 0187 0281 0089`), reason: ErrBadSequence},
		{name: "bad UTF-8", in: wire(t, `0088 0887 0182 ff 0089`), reason: ErrBadValue},
		{name: "dangling reference", in: wire(t, `0088 0487 0188 0287 0581 0189 0089`), reason: ErrBadValue},
		{name: "cyclic reference", in: wire(t, `0088 0487 0188 0287 0081 0189 0089`), reason: ErrBadValue},
		{name: "gift", in: wire(t, `0088 1187 0181 0089`), reason: ErrUnknownOpenType},
		{name: "ABORT", in: wire(t, `0088 0487 0181 008a 0089`), reason: ErrAborted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A following valid object shows that a Violation leaves the
			// decoder in sync.
			next := `4088 0487 0981 4089`
			if tt.pb {
				next = `4088 0d87 0981 0581 4089`
			}
			in := append(append([]byte(nil), tt.in...), wire(t, next)...)
			d := NewDecoder(bytes.NewReader(in), DecoderOptions{Vocab: 1, Limits: tt.lim})
			d.pb = tt.pb
			_, err := d.Decode()
			var be *BananaError
			var viol *Violation
			if !errors.Is(err, tt.reason) {
				t.Fatalf("err = %v, want %v", err, tt.reason)
			}
			if tt.fatal {
				if !errors.As(err, &be) {
					t.Fatalf("err = %T %v, want *BananaError", err, err)
				}
				if _, err2 := d.Decode(); err2 != err {
					t.Errorf("fatal error is not sticky: %v", err2)
				}
				return
			}
			if !errors.As(err, &viol) {
				t.Fatalf("err = %T %v, want *Violation", err, err)
			}
			if v, err := d.Decode(); err != nil || v == nil {
				t.Errorf("after the violation: %v, %v", v, err)
			}
		})
	}
}

// TestNegotiationTextError checks the §3.6 case maps to the negotiation
// error types.
func TestNegotiationTextError(t *testing.T) {
	d := pbDecoder(strings.NewReader("banana-decision-version: 1\r\nerror: Duplicate connection\r\n\r\n"), 0)
	_, err := d.Decode()
	if !errors.Is(err, ErrNegotiationText) || !errors.Is(err, ErrDuplicateConnection) {
		t.Fatalf("err = %v", err)
	}
	var rne *RemoteNegotiationError
	if !errors.As(err, &rne) || rne.Msg != "Duplicate connection" {
		t.Errorf("RemoteNegotiationError = %+v", rne)
	}
}

// TestPBMessageViolation checks that a violation inside a PB message keeps
// the request ID and leaves the stream usable.
func TestPBMessageViolation(t *testing.T) {
	in := wire(t, `0088 0b87 0781 0181 0182 "m" 0188 0c87 0081 0288 0382 "foo" 0381 0289 0189 0089
		0388 0d87 0881 0081 0389`)
	d := pbDecoder(bytes.NewReader(in), 0)
	v, err := d.Decode()
	m, _ := v.(*message)
	if err != nil || m == nil || !m.haveReqID || m.reqID != 7 || !errors.Is(m.violation, ErrUnknownOpenType) {
		t.Fatalf("got %+v, %v", v, err)
	}
	v, err = d.Decode()
	if m, _ := v.(*message); err != nil || m == nil || m.kind != "answer" || m.reqID != 8 || m.value != int64(0) {
		t.Fatalf("next message %+v, %v", v, err)
	}
}

// TestHugeDeclaredStringNoAllocation checks that a STRING declaring just
// under the limit, followed by only a few bytes, does not allocate its
// declared length.
func TestHugeDeclaredStringNoAllocation(t *testing.T) {
	lim := Limits{MaxStringLength: 64 << 20, MaxMessageSize: 128 << 20}
	in := append(appendToken(nil, 60<<20, tokString), "only a few bytes"...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const runs = 20
	for range runs {
		_, err := NewDecoder(bytes.NewReader(in), DecoderOptions{Limits: lim}).Decode()
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
		}
	}
	runtime.ReadMemStats(&after)
	if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 64<<10 {
		t.Errorf("allocated %d bytes per decode of a 60 MiB declaration, want < 64 KiB", perRun)
	}
	allocs := testing.AllocsPerRun(10, func() {
		NewDecoder(bytes.NewReader(in), DecoderOptions{Limits: lim}).Decode()
	})
	if allocs > 20 {
		t.Errorf("%v allocations per run", allocs)
	}
}

// TestTruncatedStreams checks that every prefix of a valid message ends
// with io.ErrUnexpectedEOF (or io.EOF at the boundary), never a hang.
func TestTruncatedStreams(t *testing.T) {
	full := wire(t, getVersionAnswer)
	for i := 1; i < len(full); i++ {
		_, err := pbDecoder(bytes.NewReader(full[:i]), 2).Decode()
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("prefix %d: err = %v", i, err)
		}
	}
	if _, err := pbDecoder(bytes.NewReader(nil), 0).Decode(); err != io.EOF {
		t.Errorf("empty stream: %v", err)
	}
}

// randValue generates a random value in decoded (canonical) form.
func randValue(r *rand.Rand, depth int) any {
	n := 14
	if depth > 3 {
		n = 8 // leaves only
	}
	switch r.IntN(n) {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2:
		return r.Int64() >> r.IntN(64)
	case 3:
		return -(r.Int64() >> r.IntN(64))
	case 4:
		x := new(big.Int).Lsh(big.NewInt(r.Int64()|1), uint(64+r.IntN(200)))
		if r.IntN(2) == 0 {
			x.Neg(x)
		}
		return x
	case 5:
		b := make([]byte, r.IntN(20))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		if r.IntN(4) == 0 {
			w, _ := VocabTable(1)
			return []byte(w[r.IntN(len(w))])
		}
		return b
	case 6:
		runes := []rune{'a', 'é', '世', '\U0001F600', 0}
		var s strings.Builder
		for range r.IntN(10) {
			s.WriteRune(runes[r.IntN(len(runes))])
		}
		return s.String()
	case 7:
		if r.IntN(3) == 0 {
			return Decimal("3.14")
		}
		return math.Float64frombits(r.Uint64() &^ (0x7ff << 52)) // finite
	case 8, 9:
		l := make([]any, r.IntN(5))
		for i := range l {
			l[i] = randValue(r, depth+1)
		}
		if r.IntN(2) == 0 {
			return Tuple(l)
		}
		return l
	case 10, 11:
		var d Dict
		seen := map[string]bool{}
		for range r.IntN(5) {
			k := randKey(r)
			hk, _ := hashKey(k)
			if seen[hk] {
				continue
			}
			seen[hk] = true
			d = append(d, DictItem{k, randValue(r, depth+1)})
		}
		if d == nil {
			d = Dict{}
		}
		return d
	case 12:
		var s []any
		seen := map[string]bool{}
		for range r.IntN(4) {
			k := randKey(r)
			hk, _ := hashKey(k)
			if !seen[hk] {
				seen[hk] = true
				s = append(s, k)
			}
		}
		if r.IntN(2) == 0 {
			return Set(s)
		}
		return FrozenSet(s)
	default:
		return &RemoteError{Type: "builtins.ValueError", Value: "v", Traceback: "tb",
			Parents: []string{"builtins.ValueError", "builtins.object"}}
	}
}

func randKey(r *rand.Rand) any {
	switch r.IntN(4) {
	case 0:
		return []byte{byte('a' + r.IntN(5))}
	case 1:
		return string(rune('a' + r.IntN(5)))
	case 2:
		return int64(r.IntN(1000)) + 1000
	default:
		return Tuple{int64(r.IntN(3)) + 2000, []byte("t")}
	}
}

// normalize maps decoded empty containers to the generator's forms.
func normalize(v any) any {
	switch x := v.(type) {
	case Tuple:
		if len(x) == 0 {
			return Tuple(nil)
		}
		for i := range x {
			x[i] = normalize(x[i])
		}
	case []any:
		for i := range x {
			x[i] = normalize(x[i])
		}
	case Set:
		if len(x) == 0 {
			return Set(nil)
		}
	case FrozenSet:
		if len(x) == 0 {
			return FrozenSet(nil)
		}
	case Dict:
		x = sortedItems(x)
		for i := range x {
			x[i].Value = normalize(x[i].Value)
		}
		return x
	case []byte:
		if len(x) == 0 {
			return []byte{}
		}
	case *RemoteError:
		w := x.onWire() // what any Failure becomes once encoded
		return &w
	}
	return v
}

// TestRoundTripRandom encodes random values and decodes them back, whole
// and one byte at a time, across a stream of several objects.
func TestRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for vocab := range 2 {
		e := NewEncoder(vocab)
		var stream []byte
		var values []any
		for range 500 {
			v := randValue(r, 0)
			var err error
			if stream, err = e.Append(stream, v); err != nil {
				t.Fatalf("encode %#v: %v", v, err)
			}
			values = append(values, normalize(v))
		}
		for _, rd := range []io.Reader{bytes.NewReader(stream), iotest.OneByteReader(bytes.NewReader(stream)), iotest.HalfReader(bytes.NewReader(stream))} {
			d := NewDecoder(rd, DecoderOptions{Vocab: vocab})
			for i, want := range values {
				got, err := d.Decode()
				if err != nil {
					t.Fatalf("vocab %d value %d: %v", vocab, i, err)
				}
				if got = normalize(got); !reflect.DeepEqual(got, want) {
					t.Fatalf("vocab %d value %d:\n got %#v\nwant %#v", vocab, i, got, want)
				}
			}
			if _, err := d.Decode(); err != io.EOF {
				t.Fatalf("after the stream: %v", err)
			}
		}
	}
}
