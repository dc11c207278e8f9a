package foolscap

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"fmt"
	"maps"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// Value mapping between Python (as Foolscap serializes it) and Go.
//
//	Python              Go (decoded)               Go (accepted by the encoder)
//	bytes               []byte                     []byte
//	str                 string                     string
//	int                 int64, or *big.Int if it   any Go integer type, *big.Int
//	                    does not fit in int64
//	float               float64                    float64, float32
//	None                nil                        nil
//	bool                bool                       bool
//	list                []any                      []any
//	tuple               Tuple                      Tuple
//	dict                Dict                       Dict
//	set                 Set                        Set
//	frozenset           FrozenSet                  FrozenSet
//	decimal.Decimal     Decimal                    Decimal
//	Failure (copyable)  *RemoteError               *RemoteError
//	RemoteReference     *RemoteRef (my-reference)  Referenceable (sent as my-reference)
//	our own object      the Referenceable          *RemoteRef back to its owner
//	  sent back to us     (your-reference)           (your-reference)
//
// A Go map is not encoded directly, because a Python dict's keys may be
// bytes, str, ints or tuples and Go's map iteration order is random; build a
// [Dict] with [BytesDict] (bytes keys, Tahoe's usual choice) or [StrDict]
// (str keys) instead. Like Foolscap's sender (OrderedDictSlicer), the
// encoder sends a Dict's items sorted by key, so its bytes equal Python's;
// the decoder keeps the received order.
//
// Shared structure: a Python sender replaces a second occurrence of the same
// list, tuple, dict or set inside one message with a "reference" sequence;
// the decoder resolves it to the same Go value, and charges the reference
// what the value cost against [Limits].MaxMessageSize, as if it had been
// sent again (a program walking the value walks it again). The Go encoder
// never sends references: a value that appears twice is sent twice. Cycles
// cannot be decoded ([ErrBadValue]).

// Tuple is a Python tuple.
type Tuple []any

// Set is a Python set. Item order on the wire is arbitrary; the decoder keeps
// the received order and drops duplicates.
type Set []any

// FrozenSet is a Python frozenset (wire name "immutable-set").
type FrozenSet []any

// Decimal is a Python decimal.Decimal, kept as its string form (str(d)).
type Decimal string

// DictItem is one key/value pair of a [Dict].
type DictItem struct {
	Key   any
	Value any
}

// Dict is a Python dict as an ordered list of items, because its keys may be
// of types that cannot be Go map keys ([]byte, Tuple). Keys are unique.
type Dict []DictItem

// Get returns the value for the key equal to key (compared as Python would:
// []byte with []byte, string with string, integers numerically, ...).
func (d Dict) Get(key any) (any, bool) {
	k, ok := hashKey(key)
	if !ok {
		return nil, false
	}
	for _, it := range d {
		if ik, ok := hashKey(it.Key); ok && ik == k {
			return it.Value, true
		}
	}
	return nil, false
}

// GetString returns the value for the key that equals name either as bytes
// or as a str. Tahoe uses bytes keys; this saves callers from caring.
func (d Dict) GetString(name string) (any, bool) {
	for _, it := range d {
		switch k := it.Key.(type) {
		case []byte:
			if string(k) == name {
				return it.Value, true
			}
		case string:
			if k == name {
				return it.Value, true
			}
		}
	}
	return nil, false
}

// BytesDict returns m as a Dict with []byte keys, sorted by key.
func BytesDict(m map[string]any) Dict {
	d := make(Dict, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		d = append(d, DictItem{Key: []byte(k), Value: m[k]})
	}
	return d
}

// StrDict returns m as a Dict with string (Python str) keys, sorted by key.
func StrDict(m map[string]any) Dict {
	d := make(Dict, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		d = append(d, DictItem{Key: k, Value: m[k]})
	}
	return d
}

// RemoteError is a Failure received from (or sent to) the peer: Foolscap's
// copyable "twisted.python.failure.Failure" with its four attributes. It is
// the error returned by [RemoteRef.Call] when the remote method failed, and a
// [Referenceable] may return one to control exactly what the peer sees.
type RemoteError struct {
	// Type is the fully qualified exception class, e.g. "builtins.ValueError".
	Type string
	// Value is str(exception).
	Value string
	// Traceback is the remote traceback text, or "Traceback unavailable\n".
	Traceback string
	// Parents is the class hierarchy, most derived first.
	Parents []string
}

func (e *RemoteError) Error() string {
	return "foolscap: remote error: " + e.Type + ": " + e.Value
}

// Is reports whether e's class hierarchy includes the class named by
// target's Type, so errors.Is(err, &RemoteError{Type: "builtins.KeyError"})
// works like Failure.check.
func (e *RemoteError) Is(target error) bool {
	t, ok := target.(*RemoteError)
	if !ok || t.Type == "" {
		return false
	}
	if t.Type == e.Type {
		return true
	}
	return slices.Contains(e.Parents, t.Type)
}

// Check reports whether e's type or one of its parents is one of types.
func (e *RemoteError) Check(types ...string) bool {
	for _, t := range types {
		if e.Type == t || slices.Contains(e.Parents, t) {
			return true
		}
	}
	return false
}

// standardParents is the parents list Python computes for an exception
// class deriving directly from Exception.
func standardParents(typ string) []string {
	return []string{typ, "builtins.Exception", "builtins.BaseException", "builtins.object"}
}

// hashKey returns the key that identifies a hashable decoded value by
// value, for dict/set duplicate detection and Dict.Get: two values have the
// same key exactly when Python would find them equal (bytes with bytes, str
// with str, integers, floats and booleans numerically, tuples and
// frozensets by their members). Unhashable values (lists, dicts, sets)
// report false. See [keyHasher] for the cost.
func hashKey(v any) (string, bool) {
	var h keyHasher
	return h.key(v)
}

// keyHasher computes hashKey keys in time linear in the size of the value
// as sent, whatever its shape. A key is the value's canonical encoding when
// that is at most maxInlineKey bytes, else "h" and the SHA-256 of that
// encoding (no canonical encoding starts with "h"); so every key is short. A
// tuple's or frozenset's encoding is made of its members' keys, and each
// member's key is computed once per keyHasher, remembered by the identity
// of its backing array: a tuple that refers twice to the tuple before (a
// shared reference, whose expansion doubles at every level) or frozensets
// nested 60 deep cost each member once, not once per path to it. Integers
// are encoded in binary, never through a decimal string (which costs more
// than linear time for a large *big.Int).
type keyHasher struct {
	memo map[sliceID]string
	work int64 // bytes of canonical encodings made
}

// sliceID identifies a decoded Tuple or FrozenSet: the address of its first
// element and its length.
type sliceID struct {
	first *any
	n     int
}

// maxInlineKey is the longest canonical encoding used as a key as is.
const maxInlineKey = 64

// reset forgets what h remembered, so that the values can be collected.
func (h *keyHasher) reset() { h.memo = nil }

func (h *keyHasher) key(v any) (string, bool) {
	var id sliceID
	switch x := v.(type) {
	case Tuple:
		if len(x) > 0 {
			id = sliceID{&x[0], len(x)}
		}
	case FrozenSet:
		if len(x) > 0 {
			id = sliceID{&x[0], len(x)}
		}
	}
	if id.first != nil {
		if k, ok := h.memo[id]; ok {
			return k, true
		}
	}
	var b []byte
	b, ok := h.encode(b, v)
	if !ok {
		return "", false
	}
	h.work += int64(len(b))
	k := digestKey(b)
	if id.first != nil {
		if h.memo == nil {
			h.memo = make(map[sliceID]string)
		}
		h.memo[id] = k
	}
	return k, true
}

// digestKey returns b as a key: itself if short, else its digest.
func digestKey(b []byte) string {
	if len(b) <= maxInlineKey {
		return string(b)
	}
	sum := sha256.Sum256(b)
	return "h" + string(sum[:])
}

// appendLen appends a length prefix: the decimal length and ':'.
func appendLen(b []byte, n int) []byte {
	return append(strconv.AppendInt(b, int64(n), 10), ':')
}

// encode appends v's canonical encoding.
func (h *keyHasher) encode(b []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return append(b, 'N'), true
	case bool:
		// Python: True == 1 and False == 0 as dict keys.
		if x {
			return append(b, "i1;"...), true
		}
		return append(b, "i0;"...), true
	case []byte:
		return append(appendLen(append(b, 'b'), len(x)), x...), true
	case string:
		return append(appendLen(append(b, 's'), len(x)), x...), true
	case float64:
		if x == math.Trunc(x) && !math.IsInf(x, 0) {
			if x >= -(1<<63) && x < 1<<63 {
				return appendIntKey(b, int64(x)), true
			}
			bi, _ := big.NewFloat(x).Int(nil)
			return appendBigKey(b, bi), true
		}
		return append(strconv.AppendFloat(append(b, 'f'), x, 'g', -1, 64), ';'), true
	case *big.Int:
		if x == nil {
			return b, false
		}
		return appendBigKey(b, x), true
	case Decimal:
		return append(appendLen(append(b, 'd'), len(x)), x...), true
	case Tuple:
		b = append(b, "t("...)
		for _, it := range x {
			k, ok := h.key(it)
			if !ok {
				return b, false
			}
			b = append(appendLen(b, len(k)), k...)
		}
		return append(b, ')'), true
	case FrozenSet:
		keys := make([]string, 0, len(x))
		for _, it := range x {
			k, ok := h.key(it)
			if !ok {
				return b, false
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		keys = slices.Compact(keys)
		b = append(b, "F("...)
		for _, k := range keys {
			b = append(appendLen(b, len(k)), k...)
		}
		return append(b, ')'), true
	case *RemoteRef:
		return fmt.Appendf(append(b, 'r'), "%p", x), true
	}
	if i, ok := toInt64(v); ok {
		return appendIntKey(b, i), true
	}
	if bi, ok := toBig(v); ok {
		return appendBigKey(b, bi), true
	}
	return b, false
}

func appendIntKey(b []byte, i int64) []byte {
	return append(strconv.AppendInt(append(b, 'i'), i, 10), ';')
}

// appendBigKey encodes an integer as appendIntKey does if it fits in int64,
// else as its sign and big-endian magnitude.
func appendBigKey(b []byte, x *big.Int) []byte {
	if x.IsInt64() {
		return appendIntKey(b, x.Int64())
	}
	b = append(b, 'I')
	if x.Sign() < 0 {
		b = append(b, '-')
	}
	mag := x.Bytes()
	return append(appendLen(b, len(mag)), mag...)
}

// toInt64 converts any Go signed or fitting unsigned integer to int64.
func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint:
		if uint64(x) <= 1<<63-1 {
			return int64(x), true
		}
	case uint64:
		if x <= 1<<63-1 {
			return int64(x), true
		}
	case uintptr:
		if uint64(x) <= 1<<63-1 {
			return int64(x), true
		}
	}
	return 0, false
}

// toBig converts unsigned values beyond int64 and *big.Int to *big.Int.
func toBig(v any) (*big.Int, bool) {
	switch x := v.(type) {
	case *big.Int:
		if x == nil {
			return nil, false
		}
		return x, true
	case uint:
		return new(big.Int).SetUint64(uint64(x)), true
	case uint64:
		return new(big.Int).SetUint64(x), true
	case uintptr:
		return new(big.Int).SetUint64(uint64(x)), true
	}
	return nil, false
}

// compareKeys orders dict keys the way Python's sorted() does for keys of
// comparable types (bytes with bytes, str with str, numbers with numbers,
// tuples element-wise). Python cannot sort keys of mixed types at all; for
// those the order is by type name, then by encoding, which is at least
// deterministic.
func compareKeys(a, b any) int {
	if c, ok := pyCompare(a, b); ok {
		return c
	}
	ka, kb := keyKind(a), keyKind(b)
	if ka != kb {
		return cmp.Compare(ka, kb)
	}
	ea, _ := NewEncoder(0).Encode(a)
	eb, _ := NewEncoder(0).Encode(b)
	return bytes.Compare(ea, eb)
}

// pyCompare compares a and b as Python's < would, if it can.
func pyCompare(a, b any) (int, bool) {
	if na, ok := pyNumber(a); ok {
		if nb, ok := pyNumber(b); ok {
			return na.Cmp(nb), true
		}
		return 0, false
	}
	switch x := a.(type) {
	case []byte:
		if y, ok := b.([]byte); ok {
			return bytes.Compare(x, y), true
		}
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), true
		}
	case Tuple:
		y, ok := b.(Tuple)
		if !ok {
			return 0, false
		}
		for i := 0; i < len(x) && i < len(y); i++ {
			c, ok := pyCompare(x[i], y[i])
			if !ok {
				return 0, false
			}
			if c != 0 {
				return c, true
			}
		}
		return cmp.Compare(len(x), len(y)), true
	}
	return 0, false
}

// pyNumber returns a numeric key (bool, integer or float) as a big.Float.
func pyNumber(v any) (*big.Float, bool) {
	switch x := v.(type) {
	case bool:
		if x {
			return big.NewFloat(1), true
		}
		return big.NewFloat(0), true
	case float64:
		if x != x {
			return nil, false
		}
		return big.NewFloat(x), true
	case float32:
		return big.NewFloat(float64(x)), true
	}
	if i, ok := toInt64(v); ok {
		return new(big.Float).SetInt64(i), true
	}
	if bi, ok := toBig(v); ok {
		return new(big.Float).SetInt(bi), true
	}
	return nil, false
}

// sortedItems returns d's items in the order Python's sender uses.
func sortedItems(d Dict) Dict {
	if slices.IsSortedFunc(d, func(a, b DictItem) int { return compareKeys(a.Key, b.Key) }) {
		return d
	}
	s := slices.Clone(d)
	slices.SortStableFunc(s, func(a, b DictItem) int { return compareKeys(a.Key, b.Key) })
	return s
}

func keyKind(v any) string {
	switch v.(type) {
	case []byte:
		return "bytes"
	case string:
		return "str"
	}
	return fmt.Sprintf("%T", v)
}
