package foolscap

import (
	"bytes"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm/internal/pyfoolscap"
)

// pyCodecScript serializes CASES with Foolscap's own Banana (StorageBanana
// with vocab table 1 and a byte-capturing transport) and prints
// "enc NAME HEX"; then for each NAME=HEX argument (bytes from the Go
// encoder) unserializes them and prints "dec NAME ok" if Python got a value
// equal to CASES[NAME], with the same types all the way down.
const pyCodecScript = `
import sys, decimal
from foolscap import storage, vocab
from foolscap.storage import StorageBanana
from foolscap.call import CopiedFailure
from twisted.python import reflect

class Root(storage.StorageRootUnslicer):
    # The storage root only knows the short opentypes; accept the Failure
    # class name (30 bytes) as Foolscap's PB root does.
    def __init__(self, protocol):
        storage.StorageRootUnslicer.__init__(self, protocol)
        self.maxIndexLength = 30

def banana():
    b = StorageBanana()
    b.slicerClass = storage.StorageRootSlicer
    b.unslicerClass = Root
    b.populateVocabTable(vocab.vocab_v1)
    return b

def ser(obj):
    out = []
    storage.serialize(obj, banana=banana()).addBoth(out.append)
    if not isinstance(out[0], bytes):
        raise RuntimeError(repr(out[0]))
    return out[0]

def unser(data):
    out = []
    storage.unserialize(data, banana=banana()).addBoth(out.append)
    return out[0] if out else "<Deferred did not fire>"

def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(k in b and same(v, b[k]) for k, v in a.items())
    return a == b

shared = [7, 8]
CASES = {
    "bytes": b"hello",
    "bytes_empty": b"",
    "bytes_vocab": b"list",
    "str": "h\u00e9llo \u4e16\U0001F600",
    "str_empty": "",
    "str_vocab": "call",
    "none": None,
    "true": True,
    "false": False,
    "int_0": 0,
    "int_5": 5,
    "int_2_31_m1": 2**31 - 1,
    "int_2_31": 2**31,
    "int_neg5": -5,
    "int_neg_2_31": -2**31,
    "int_neg_2_31_m1": -2**31 - 1,
    "int_2_63_m1": 2**63 - 1,
    "int_2_64": 2**64,
    "int_neg_2_40": -2**40,
    "int_neg_2_64": -2**64,
    "float": 1.5,
    "float_neg": -0.1,
    "float_big": 1e300,
    "list": [1, b"a", [None, "x"]],
    "list_empty": [],
    "tuple": (1, "x", (b"y",)),
    "tuple_empty": (),
    "dict": {b"b": 1, b"a": [2], b"dict": None},
    "dict_str": {"k": "v", "j": 2},
    "dict_mixed": {(1, 2): b"x", 3: True, "s": 1.5},
    "set": {7},
    "frozenset": frozenset([b"z"]),
    "decimal": decimal.Decimal("1.5"),
    "get_version": {b"application-version": b"tahoe-lafs/1.19.0",
        b"http://allmydata.org/tahoe/protocols/storage/v1": {
            b"available-space": 123456789, b"fills-holes-with-zero-bytes": False,
            b"maximum-immutable-share-size": 2**64, b"maximum-mutable-share-size": 69105000000000000,
            b"tolerates-immutable-read-overrun": True}},
}
for name in sorted(CASES):
    if name == "dict_mixed":
        continue  # Python cannot sort keys of mixed types, so cannot send it
    print("enc", name, ser(CASES[name]).hex())
for arg in sys.argv[1:]:
    name, hx = arg.split("=", 1)
    if name == "failure":
        # Sent inside a list: a bare Failure cannot pass through the
        # Deferred that StorageBanana fires with the result.
        got = unser(bytes.fromhex(hx))[0]
        ok = (isinstance(got, CopiedFailure) and reflect.qual(got.type) == "builtins.ValueError" and got.value == "boom"
              and got.parents == ["builtins.ValueError", "builtins.Exception"] and got.traceback == "tb\n")
        print("dec", name, "ok" if ok else "bad " + repr((reflect.qual(got.type), got.value, got.parents, got.traceback)).replace(" ", "_"))
        continue
    got = unser(bytes.fromhex(hx))
    print("dec", name, "ok" if same(got, CASES[name]) else "bad " + repr(got))
print("done")
`

// pyCases are the Go values equal to the script's CASES.
func pyCases() map[string]any {
	shared := func(s string) *big.Int { x, _ := new(big.Int).SetString(s, 10); return x }
	return map[string]any{
		"bytes":           []byte("hello"),
		"bytes_empty":     []byte{},
		"bytes_vocab":     []byte("list"),
		"str":             "h\u00e9llo \u4e16\U0001F600",
		"str_empty":       "",
		"str_vocab":       "call",
		"none":            nil,
		"true":            true,
		"false":           false,
		"int_0":           int64(0),
		"int_5":           int64(5),
		"int_2_31_m1":     int64(1<<31 - 1),
		"int_2_31":        int64(1 << 31),
		"int_neg5":        int64(-5),
		"int_neg_2_31":    int64(-1 << 31),
		"int_neg_2_31_m1": int64(-1<<31 - 1),
		"int_2_63_m1":     int64(1<<63 - 1),
		"int_2_64":        shared("18446744073709551616"),
		"int_neg_2_40":    int64(-1 << 40),
		"int_neg_2_64":    shared("-18446744073709551616"),
		"float":           1.5,
		"float_neg":       -0.1,
		"float_big":       1e300,
		"list":            []any{int64(1), []byte("a"), []any{nil, "x"}},
		"list_empty":      []any{},
		"tuple":           Tuple{int64(1), "x", Tuple{[]byte("y")}},
		"tuple_empty":     Tuple(nil),
		"dict":            Dict{{[]byte("b"), int64(1)}, {[]byte("a"), []any{int64(2)}}, {[]byte("dict"), nil}},
		"dict_str":        Dict{{"k", "v"}, {"j", int64(2)}},
		"dict_mixed":      Dict{{Tuple{int64(1), int64(2)}, []byte("x")}, {int64(3), true}, {"s", 1.5}},
		"set":             Set{int64(7)},
		"frozenset":       FrozenSet{[]byte("z")},
		"decimal":         Decimal("1.5"),
		"get_version":     getVersionValue,
	}
}

// TestBananaMatchesPython checks the codec against Python Foolscap's own
// Banana, both ways, for every value kind of docs/foolscap-protocol.md §4.6:
// Python's bytes must equal the Go encoder's bytes exactly and decode to
// the same Go value, and Python must decode the Go encoder's bytes to the
// original Python value (compared with types).
func TestBananaMatchesPython(t *testing.T) {
	cases := pyCases()
	var args []string
	for name, v := range cases {
		b, err := NewEncoder(1).Encode(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		args = append(args, name+"="+hex.EncodeToString(b))
	}
	failure, err := NewEncoder(1).Encode([]any{&RemoteError{Type: "builtins.ValueError", Value: "boom", Traceback: "tb\n",
		Parents: []string{"builtins.ValueError", "builtins.Exception"}}})
	if err != nil {
		t.Fatal(err)
	}
	args = append(args, "failure="+hex.EncodeToString(failure))

	p := pyfoolscap.Start(t, pyCodecScript, args...)
	seenEnc, seenDec := map[string]bool{}, map[string]bool{}
	for {
		line := p.Line(t, time.Minute)
		if line == "done" {
			break
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			t.Fatalf("unexpected line %q", line)
		}
		switch name := f[1]; f[0] {
		case "enc":
			seenEnc[name] = true
			pyBytes, err := hex.DecodeString(f[2])
			if err != nil {
				t.Fatal(err)
			}
			goBytes, _ := NewEncoder(1).Encode(cases[name])
			if !bytes.Equal(pyBytes, goBytes) {
				t.Errorf("%s: Python %x, Go %x", name, pyBytes, goBytes)
			}
			got, err := NewDecoder(bytes.NewReader(pyBytes), DecoderOptions{Vocab: 1}).Decode()
			if err != nil {
				t.Errorf("%s: decoding Python's %x: %v", name, pyBytes, err)
				continue
			}
			if !equalValues(normalize(got), normalize(cases[name])) {
				t.Errorf("%s: decoded Python's bytes as %#v, want %#v", name, got, cases[name])
			}
		case "dec":
			seenDec[name] = true
			if f[2] != "ok" {
				t.Errorf("%s: Python decoded Go's bytes wrongly: %s", name, strings.Join(f[2:], " "))
			}
		}
	}
	if len(seenEnc) != len(cases)-1 || len(seenDec) != len(cases)+1 {
		t.Errorf("Python reported %d encodings and %d decodings, want %d and %d", len(seenEnc), len(seenDec), len(cases)-1, len(cases)+1)
	}
}

// equalValues compares decoded values, ignoring Dict item order.
func equalValues(a, b any) bool {
	da, ok1 := a.(Dict)
	db, ok2 := b.(Dict)
	if ok1 && ok2 {
		if len(da) != len(db) {
			return false
		}
		for _, it := range da {
			v, ok := db.Get(it.Key)
			if !ok || !equalValues(it.Value, v) {
				return false
			}
		}
		return true
	}
	ea, _ := NewEncoder(0).Encode(a)
	eb, _ := NewEncoder(0).Encode(b)
	return bytes.Equal(ea, eb)
}
