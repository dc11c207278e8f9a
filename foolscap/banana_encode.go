package foolscap

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"slices"
)

// maxEncodeDepth stops the encoder on self-referencing values.
const maxEncodeDepth = 512

// EncodeError reports a value the encoder cannot serialize.
type EncodeError struct {
	Value any    // the offending value
	Msg   string // why
}

func (e *EncodeError) Error() string {
	return fmt.Sprintf("foolscap: cannot serialize %T: %s", e.Value, e.Msg)
}

// refEncoder lets an encoder send references; the [Conn] implements it.
type refEncoder interface {
	// encodeLocal registers one more send of r and returns its clid, its
	// interface name and URL if this is the first send since the refcount
	// was 0, and an undo func that reverts the registration.
	encodeLocal(r Referenceable) (clid int64, first bool, iname, url string, undo func(), err error)
	// encodeRemote returns the clid of a reference the peer owns.
	encodeRemote(r *RemoteRef) (clid int64, err error)
}

// Encoder serializes values as Banana tokens. It numbers OPEN tokens for a
// whole connection direction, so one Encoder must produce every top-level
// object sent on a connection, in order. Each Encode call produces one
// complete top-level object; on error nothing is consumed (the OPEN counter
// is restored). An Encoder is not safe for concurrent use.
//
// Like Foolscap, the encoder sends every byte string that equals a word of
// the vocab table (opentypes and data alike) as a VOCAB token, so its output
// is byte-identical to Python's. It never sends set-vocab, add-vocab or
// reference.
type Encoder struct {
	opens uint64            // OPENs emitted so far on this connection direction
	vocab map[string]uint64 // word -> VOCAB index; nil for table 0
	refs  refEncoder
	undo  []func()
	depth int
}

// NewEncoder returns an Encoder for the negotiated initial vocab table
// index (0 or 1; others act as 0) whose first OPEN is number 0, as at the
// start of a connection's Banana phase. It cannot encode references.
func NewEncoder(vocab int) *Encoder {
	e := &Encoder{}
	e.setVocab(vocab)
	return e
}

func (e *Encoder) setVocab(index int) {
	words, _ := VocabTable(index)
	if len(words) == 0 {
		e.vocab = nil
		return
	}
	e.vocab = make(map[string]uint64, len(words))
	for i, w := range words {
		e.vocab[w] = uint64(i)
	}
}

// Encode returns the tokens of v as one top-level object. See the value
// mapping in this package's documentation.
func (e *Encoder) Encode(v any) ([]byte, error) { return e.Append(nil, v) }

// Append is like Encode but appends to dst.
func (e *Encoder) Append(dst []byte, v any) ([]byte, error) {
	return e.top(dst, func(dst []byte) ([]byte, error) { return e.value(dst, v) })
}

// top runs f as one top-level object, rolling back state on failure.
func (e *Encoder) top(dst []byte, f func([]byte) ([]byte, error)) ([]byte, error) {
	start, opens := len(dst), e.opens
	e.undo = e.undo[:0]
	e.depth = 0
	out, err := f(dst)
	if err != nil {
		e.opens = opens
		for i := len(e.undo) - 1; i >= 0; i-- {
			e.undo[i]()
		}
		e.undo = e.undo[:0]
		return dst[:start], err
	}
	e.undo = e.undo[:0]
	return out, nil
}

func (e *Encoder) open(dst []byte, opentype string) ([]byte, uint64) {
	n := e.opens
	e.opens++
	dst = appendToken(dst, n, tokOpen)
	dst = appendString(e, dst, opentype)
	return dst, n
}

// appendString appends s as a VOCAB token if it is a vocab word, else as a
// STRING.
func appendString[S ~string | ~[]byte](e *Encoder, dst []byte, s S) []byte {
	if e.vocab != nil && len(s) <= 15 {
		if i, ok := e.vocab[string(s)]; ok {
			return appendToken(dst, i, tokVocab)
		}
	}
	dst = appendToken(dst, uint64(len(s)), tokString)
	return append(dst, s...)
}

func (e *Encoder) value(dst []byte, v any) ([]byte, error) {
	e.depth++
	defer func() { e.depth-- }()
	if e.depth > maxEncodeDepth {
		return dst, &EncodeError{Value: v, Msg: "nested too deeply (cyclic value?)"}
	}
	switch x := v.(type) {
	case nil:
		dst, n := e.open(dst, "none")
		return appendToken(dst, n, tokClose), nil
	case bool:
		dst, n := e.open(dst, "boolean")
		b := uint64(0)
		if x {
			b = 1
		}
		dst = appendToken(dst, b, tokInt)
		return appendToken(dst, n, tokClose), nil
	case []byte:
		return appendString(e, dst, x), nil
	case string:
		dst, n := e.open(dst, "unicode")
		dst = appendString(e, dst, x)
		return appendToken(dst, n, tokClose), nil
	case float64:
		return appendFloat(dst, x), nil
	case float32:
		return appendFloat(dst, float64(x)), nil
	case *big.Int:
		if x == nil {
			return dst, &EncodeError{Value: v, Msg: "nil *big.Int"}
		}
		return appendBigInt(dst, x), nil
	case []any:
		return e.seq(dst, "list", x)
	case Tuple:
		return e.seq(dst, "tuple", x)
	case Set:
		return e.seq(dst, "set", x)
	case FrozenSet:
		return e.seq(dst, "immutable-set", x)
	case Dict:
		dst, n := e.open(dst, "dict")
		var err error
		for _, it := range sortedItems(x) {
			if dst, err = e.value(dst, it.Key); err != nil {
				return dst, err
			}
			if dst, err = e.value(dst, it.Value); err != nil {
				return dst, err
			}
		}
		return appendToken(dst, n, tokClose), nil
	case Decimal:
		dst, n := e.open(dst, "decimal")
		dst = appendString(e, dst, x)
		return appendToken(dst, n, tokClose), nil
	case *RemoteError:
		if x == nil {
			return dst, &EncodeError{Value: v, Msg: "nil *RemoteError"}
		}
		return e.failure(dst, x)
	case *RemoteRef:
		if x == nil {
			return dst, &EncodeError{Value: v, Msg: "nil *RemoteRef"}
		}
		if e.refs == nil {
			return dst, &EncodeError{Value: v, Msg: "references can only be sent on a Conn"}
		}
		clid, err := e.refs.encodeRemote(x)
		if err != nil {
			return dst, err
		}
		dst, n := e.open(dst, "your-reference")
		dst = appendInt64(dst, clid)
		return appendToken(dst, n, tokClose), nil
	case Referenceable:
		if e.refs == nil {
			return dst, &EncodeError{Value: v, Msg: "references can only be sent on a Conn"}
		}
		clid, first, iname, url, undo, err := e.refs.encodeLocal(x)
		if err != nil {
			return dst, err
		}
		e.undo = append(e.undo, undo)
		dst, n := e.open(dst, "my-reference")
		dst = appendInt64(dst, clid)
		if first {
			dst = appendString(e, dst, iname)
			if url != "" {
				dst = appendString(e, dst, url)
			}
		}
		return appendToken(dst, n, tokClose), nil
	}
	if i, ok := toInt64(v); ok {
		return appendInt64(dst, i), nil
	}
	if b, ok := toBig(v); ok {
		return appendBigInt(dst, b), nil
	}
	return dst, &EncodeError{Value: v, Msg: "unsupported type"}
}

func (e *Encoder) seq(dst []byte, opentype string, items []any) ([]byte, error) {
	dst, n := e.open(dst, opentype)
	var err error
	for _, it := range items {
		if dst, err = e.value(dst, it); err != nil {
			return dst, err
		}
	}
	return appendToken(dst, n, tokClose), nil
}

// failure encodes a Failure copyable with attributes in Python's order.
func (e *Encoder) failure(dst []byte, f *RemoteError) ([]byte, error) {
	w := f.onWire()
	dst, n := e.open(dst, "copyable")
	dst = appendString(e, dst, failureClassName)
	dst = appendString(e, dst, "value")
	dst = appendString(e, dst, w.Value)
	dst = appendString(e, dst, "type")
	dst = appendString(e, dst, w.Type)
	dst = appendString(e, dst, "traceback")
	dst = appendString(e, dst, w.Traceback)
	dst = appendString(e, dst, "parents")
	dst, pn := e.open(dst, "list")
	for _, p := range w.Parents {
		dst = appendString(e, dst, p)
	}
	dst = appendToken(dst, pn, tokClose)
	return appendToken(dst, n, tokClose), nil
}

// onWire returns f as the encoder sends it. Every attribute is present,
// because Python's CopiedFailure reads all four: an empty traceback becomes
// "Traceback unavailable\n" and empty parents the standard hierarchy of
// the type. Each is truncated as Foolscap's FailureSlicer truncates it.
func (f *RemoteError) onWire() RemoteError {
	w := RemoteError{Value: truncText(f.Value, 1000), Type: truncText(f.Type, 200), Traceback: f.Traceback}
	if w.Traceback == "" {
		w.Traceback = "Traceback unavailable\n"
	}
	if len(w.Traceback) > 1900 {
		w.Traceback = w.Traceback[:700] + "\n\n-- TRACEBACK ELIDED --\n\n" + w.Traceback[len(w.Traceback)-1200:]
	}
	parents := f.Parents
	if len(parents) == 0 {
		parents = standardParents(f.Type)
	}
	w.Parents = make([]string, len(parents))
	for i, p := range parents {
		w.Parents[i] = truncText(p, 200)
	}
	return w
}

func truncText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// appendInt64 encodes an integer as INT, NEG, LONGINT or LONGNEG exactly as
// Foolscap chooses between them (the 2^31 boundaries).
func appendInt64(dst []byte, i int64) []byte {
	switch {
	case i >= 0 && i < 1<<31:
		return appendToken(dst, uint64(i), tokInt)
	case i < 0 && i >= -(1<<31):
		return appendToken(dst, uint64(-i), tokNeg)
	case i > 0:
		return appendMagnitude(dst, uint64(i), tokLongInt)
	default:
		return appendMagnitude(dst, uint64(-(i+1))+1, tokLongNeg)
	}
}

func appendMagnitude(dst []byte, m uint64, typ byte) []byte {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], m)
	b := buf[:]
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	dst = appendToken(dst, uint64(len(b)), typ)
	return append(dst, b...)
}

func appendBigInt(dst []byte, x *big.Int) []byte {
	if x.IsInt64() {
		return appendInt64(dst, x.Int64())
	}
	mag := new(big.Int).Abs(x).Bytes()
	typ := tokLongInt
	if x.Sign() < 0 {
		typ = tokLongNeg
	}
	dst = appendToken(dst, uint64(len(mag)), typ)
	return append(dst, mag...)
}

func appendFloat(dst []byte, f float64) []byte {
	dst = append(dst, tokFloat)
	return binary.BigEndian.AppendUint64(dst, math.Float64bits(f))
}

// appendCall encodes a PB call message (docs/foolscap-protocol.md §5.3). Keyword
// names are sorted, as Python's ArgumentSlicer does.
func (e *Encoder) appendCall(dst []byte, reqID, clid int64, method string, args []any, kwargs map[string]any) ([]byte, error) {
	return e.top(dst, func(dst []byte) ([]byte, error) {
		dst, n := e.open(dst, "call")
		dst = appendInt64(dst, reqID)
		dst = appendInt64(dst, clid)
		dst = appendString(e, dst, method)
		dst, an := e.open(dst, "arguments")
		dst = appendInt64(dst, int64(len(args)))
		var err error
		for _, a := range args {
			if dst, err = e.value(dst, a); err != nil {
				return dst, err
			}
		}
		keys := make([]string, 0, len(kwargs))
		for k := range kwargs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			dst = appendString(e, dst, k)
			if dst, err = e.value(dst, kwargs[k]); err != nil {
				return dst, err
			}
		}
		dst = appendToken(dst, an, tokClose)
		return appendToken(dst, n, tokClose), nil
	})
}

// appendAnswer encodes a PB answer (or, with opentype "error", an error)
// message carrying v.
func (e *Encoder) appendAnswer(dst []byte, opentype string, reqID int64, v any) ([]byte, error) {
	return e.top(dst, func(dst []byte) ([]byte, error) {
		dst, n := e.open(dst, opentype)
		dst = appendInt64(dst, reqID)
		dst, err := e.value(dst, v)
		if err != nil {
			return dst, err
		}
		return appendToken(dst, n, tokClose), nil
	})
}
