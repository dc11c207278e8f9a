package foolscap

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// fuzzLimits keep each fuzz input's work small.
var fuzzLimits = Limits{MaxStringLength: 1 << 12, MaxDepth: 16, MaxItems: 256, MaxMessageSize: 1 << 16}

// FuzzBananaDecode feeds arbitrary bytes to the generic and PB decoders:
// they must never panic and must stop at the first fatal error.
// Seeds are the captures of docs/foolscap-protocol.md (testdata/fuzz/FuzzBananaDecode).
func FuzzBananaDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, pb := range []bool{false, true} {
			d := NewDecoder(bytes.NewReader(in), DecoderOptions{Vocab: 1, Limits: fuzzLimits})
			d.pb = pb
			for i := 0; ; i++ {
				if i > len(in) {
					t.Fatalf("more objects (%d) than input bytes (%d)", i, len(in))
				}
				_, err := d.Decode()
				if err == nil {
					continue
				}
				var v *Violation
				if errors.As(err, &v) {
					continue
				}
				if d.Offset() > int64(len(in)) {
					t.Fatalf("offset %d past input %d", d.Offset(), len(in))
				}
				break
			}
		}
	})
}

// FuzzBananaRoundTrip decodes arbitrary bytes and, for every object that
// decodes, checks that encoding and decoding it again gives the same value.
func FuzzBananaRoundTrip(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(bytes.NewReader(in), DecoderOptions{Vocab: 1, Limits: fuzzLimits})
		for range 64 {
			v, err := d.Decode()
			if err != nil {
				var viol *Violation
				if errors.As(err, &viol) {
					continue
				}
				return
			}
			if containsRef(v) {
				continue // detached references cannot be re-sent
			}
			for vocab := range 2 {
				out, err := NewEncoder(vocab).Encode(v)
				if err != nil {
					t.Fatalf("re-encode %#v: %v", v, err)
				}
				back, err := NewDecoder(bytes.NewReader(out), DecoderOptions{Vocab: vocab, Limits: fuzzLimits}).Decode()
				if err != nil {
					t.Fatalf("decode of re-encoded %x: %v", out, err)
				}
				if !reflect.DeepEqual(normalize(back), normalize(v)) && !hasNaN(v) {
					t.Fatalf("round trip\n got %#v\nwant %#v", back, v)
				}
			}
		}
	})
}

func containsRef(v any) bool {
	switch x := v.(type) {
	case *RemoteRef:
		return true
	case []any:
		for _, it := range x {
			if containsRef(it) {
				return true
			}
		}
	case Tuple:
		return containsRef([]any(x))
	case Set:
		return containsRef([]any(x))
	case FrozenSet:
		return containsRef([]any(x))
	case Dict:
		for _, it := range x {
			if containsRef(it.Key) || containsRef(it.Value) {
				return true
			}
		}
	}
	return false
}

func hasNaN(v any) bool {
	switch x := v.(type) {
	case float64:
		return x != x
	case []any:
		for _, it := range x {
			if hasNaN(it) {
				return true
			}
		}
	case Tuple:
		return hasNaN([]any(x))
	case Set:
		return hasNaN([]any(x))
	case FrozenSet:
		return hasNaN([]any(x))
	case Dict:
		for _, it := range x {
			if hasNaN(it.Key) || hasNaN(it.Value) {
				return true
			}
		}
	}
	return false
}

// fuzzSeeds returns the real captures used as seeds (also committed under
// testdata/fuzz/).
func fuzzSeeds(t testing.TB) [][]byte {
	caps := []string{
		getVersionAnswer,
		`0088 0b87 0181 0081 1282 "getReferenceByName" 0188 0c87 0081 0482 "name" 2182 "swissnum-storage-0123456789abcdef" 0189 0089`,
		`0088 0d87 0181 0188 0f87 0181 2382 "RIStorageServer.tahoe.allmydata.com" 0582 "pb://x" 0189 0089`,
		`02880b87028101810b826765745f76657273696f6e03880c87008103890289`,
		`0288 0d87 0281 0388 0487 0181 038a 0389 028a 0289`,
		`0988 0e87 0281 0a88 1287 1e82 "twisted.python.failure.Failure" 0482 "type" 1782 "builtins.AttributeError"
			0582 "value" 1082 "no method nosuch" 0982 "traceback" 1682 "Traceback unavailable\n" 0782 "parents"
			0b88 0487 1782 "builtins.AttributeError" 1282 "builtins.Exception" 1682 "builtins.BaseException" 0f82 "builtins.object" 0b89
			0a89 0989`,
		`0088 0487 0188 0487 0781 0881 0189 0288 0287 0181 0289 0089`,
		`0088 0887 068268c3a96c6c6f 0089 0188 0087 0189 0288 0187 0081 0289 00000000 08 83 0985 01 0000000000000000 06 86 010000000000 84 3ff8000000000000 0487`,
		`0288 0b87 0181 0181 0582 "hello" 0388 0c87 0181 0182 "x" 0182 "k" 0181 0389 0289`,
		`3b 8d "BananaError(in <RootUnslicer>): ('top-level must be OPEN',)"`,
		`8e 07 8e 8f 0588 0087 0589`,
	}
	var out [][]byte
	for _, c := range caps {
		out = append(out, wire(t, c))
	}
	return out
}
