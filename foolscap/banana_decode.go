package foolscap

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"strings"
	"sync/atomic"
	"unicode/utf8"
)

// refDecoder resolves reference sequences; the [Conn] implements it.
type refDecoder interface {
	// decodeMyRef returns the RemoteRef for a my-reference the peer sent.
	decodeMyRef(clid int64, iname, url string) (any, error)
	// decodeYourRef returns our own object for a your-reference.
	decodeYourRef(clid int64) (any, error)
}

// DecoderOptions configures a [Decoder].
type DecoderOptions struct {
	// Vocab is the negotiated initial vocab table index, 0 or 1.
	Vocab int
	// Limits bounds what is accepted; zero fields mean defaults.
	Limits Limits
	// OnPing is called for each PING token with its number; nil ignores.
	OnPing func(n uint64)
	// OnPong is called for each PONG token; nil ignores.
	OnPong func(n uint64)
}

// Decoder reads Banana objects from a byte stream. Reads may be fragmented
// arbitrarily (Python Foolscap sends each token in its own TLS record);
// bodies are read as they arrive and never allocated from a declared length
// alone. PING and PONG tokens may appear anywhere and are reported through
// the callbacks. A Decoder is not safe for concurrent use.
type Decoder struct {
	r      *bufio.Reader
	lim    Limits
	vocab  []string
	pb     bool // PB root: top-level must be OPEN call/answer/error
	refs   refDecoder
	onPing func(uint64)
	onPong func(uint64)

	offset   int64                // bytes consumed
	objCount int64                // OPENs received (reference numbers resolve against it)
	opens    []int64              // open-ids of the sequences currently open, innermost last
	inMsg    bool                 // inside a top-level sequence
	msgCost  int64                // wire bytes + per-value overhead of the current message
	objects  map[int64]decodedObj // containers of the current message, by reference number
	hasher   keyHasher            // dict keys and set members of the current message
	hashed   atomic.Int64         // bytes of key encodings hashed, for tests
	// failureOnly: the sequence being opened is an error message's value,
	// which must be a Failure copyable.
	failureOnly bool
	fatal       error // sticky fatal error

	// wantAnswer, if set, reports whether an answer or error for reqID
	// is awaited; the body of one that is not is skipped unread.
	wantAnswer func(reqID int64) bool

	digits [maxHeaderDigits + 1]byte
}

// decodedObj is a container a reference may refer to.
type decodedObj struct {
	v    any
	cost int64 // what it cost against MaxMessageSize, shared references expanded
	done bool  // false while it is being decoded (a reference to it is a cycle)
}

// NewDecoder returns a Decoder reading generic Banana objects from r: any
// token or sequence may appear at the top level, PB message types may not.
// References (my-reference, your-reference) decode to a detached
// *RemoteRef and a Violation respectively.
func NewDecoder(r io.Reader, opts DecoderOptions) *Decoder {
	d := &Decoder{
		lim:    opts.Limits.withDefaults(),
		onPing: opts.OnPing,
		onPong: opts.OnPong,
	}
	if br, ok := r.(*bufio.Reader); ok {
		d.r = br
	} else {
		d.r = bufio.NewReaderSize(r, 4096)
	}
	d.vocab, _ = VocabTable(opts.Vocab)
	return d
}

// Offset returns the number of bytes consumed so far.
func (d *Decoder) Offset() int64 { return d.offset }

// Decode returns the next top-level object. A [*Violation] means that
// object was discarded and decoding may continue; io.EOF means the stream
// ended cleanly between objects; any other error ([*BananaError],
// io.ErrUnexpectedEOF, read errors) is permanent.
func (d *Decoder) Decode() (any, error) {
	if d.fatal != nil {
		return nil, d.fatal
	}
	v, err := d.top()
	d.hashed.Add(d.hasher.work)
	d.hasher.work = 0
	if err != nil && !isViolation(err) {
		d.fatal = err
	}
	return v, err
}

func isViolation(err error) bool {
	var v *Violation
	return errors.As(err, &v)
}

func (d *Decoder) bananaErr(reason error, detail string) error {
	return &BananaError{Reason: reason, Detail: detail, Offset: d.offset}
}

func (d *Decoder) violation(reason error, format string, args ...any) error {
	return &Violation{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// token is one header+type pair; bodies are read separately.
type token struct {
	typ    byte
	header uint64 // valid when !big
	big    bool   // header does not fit in 63 bits
	digits []byte // raw header digits (aliases d.digits)
}

func (d *Decoder) readByte() (byte, error) {
	b, err := d.r.ReadByte()
	if err != nil {
		return 0, err
	}
	d.offset++
	d.msgCost++
	return b, nil
}

// rawToken reads one header and type byte, handling PING, PONG and ERROR
// itself. At a token boundary outside any message, a clean EOF is io.EOF.
func (d *Decoder) rawToken() (token, error) {
	for {
		start := d.offset
		n := 0
		var b byte
		var err error
		for {
			b, err = d.readByte()
			if err != nil {
				if err == io.EOF {
					if start == 0 && n > 0 {
						if e := d.negotiationText(d.digits[:n]); e != nil {
							return token{}, e
						}
					}
					if n == 0 && !d.inMsg {
						return token{}, io.EOF
					}
					return token{}, io.ErrUnexpectedEOF
				}
				return token{}, err
			}
			if b >= 0x80 {
				break
			}
			if n == maxHeaderDigits {
				d.digits[n] = b
				if start == 0 {
					if e := d.negotiationText(d.digits[:n+1]); e != nil {
						return token{}, e
					}
				}
				return token{}, d.bananaErr(ErrHeaderTooLong, fmt.Sprintf("got %q", d.digits[:min(n+1, 16)]))
			}
			d.digits[n] = b
			n++
			if start == 0 && n == len(negotiationMarker) {
				if e := d.negotiationText(d.digits[:n]); e != nil {
					return token{}, e
				}
			}
		}
		t := token{typ: b, digits: d.digits[:n]}
		for i := n - 1; i >= 0; i-- {
			if t.header > (math.MaxInt64 >> 7) {
				t.big = true
				break
			}
			t.header = t.header<<7 | uint64(d.digits[i])
		}
		if t.big {
			t.header = math.MaxInt64
		}
		switch t.typ {
		case tokPing:
			if d.onPing != nil && !t.big {
				d.onPing(t.header)
			}
			continue
		case tokPong:
			if d.onPong != nil && !t.big {
				d.onPong(t.header)
			}
			continue
		case tokError:
			if t.header > maxErrorLength {
				return t, d.bananaErr(ErrErrorTooLong, fmt.Sprintf("%d > %d bytes", t.header, maxErrorLength))
			}
			body, err := d.readBody(int(t.header))
			if err != nil {
				return t, err
			}
			return t, &BananaError{Reason: ErrPeerError, Detail: string(body), Offset: -1}
		case tokList:
			return t, d.bananaErr(ErrOldBanana, "LIST token 0x80")
		}
		if t.typ > tokPong || t.typ == 0x8B || t.typ == 0x8C {
			return t, d.bananaErr(ErrInvalidTypeByte, fmt.Sprintf("0x%x", t.typ))
		}
		return t, nil
	}
}

// negotiationMarker starts a negotiation decision block.
const negotiationMarker = "banana-decision-version:"

// negotiationText recognises a negotiation block where Banana was expected
// (docs/foolscap-protocol.md §3.6) and returns the error to report, or nil.
func (d *Decoder) negotiationText(prefix []byte) error {
	if !bytes.HasPrefix(prefix, []byte(negotiationMarker)) {
		return nil
	}
	block := append([]byte(nil), prefix...)
	for len(block) < 4096 && !bytes.Contains(block, []byte("\r\n\r\n")) {
		b, err := d.readByte()
		if err != nil {
			break
		}
		block = append(block, b)
	}
	detail := "no error text"
	for _, line := range strings.Split(string(block), "\r\n") {
		if msg, ok := strings.CutPrefix(line, "error:"); ok {
			detail = strings.TrimSpace(msg)
		}
	}
	return &BananaError{Reason: ErrNegotiationText, Detail: detail, Offset: 0,
		Err: &RemoteNegotiationError{Msg: detail}}
}

// readBody reads n body bytes, growing the buffer as bytes arrive so that a
// declared length alone never allocates.
func (d *Decoder) readBody(n int) ([]byte, error) {
	const chunk = 4096
	buf := make([]byte, 0, min(n, chunk))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(n-len(buf), cap(buf)))
		}
		m, err := io.ReadFull(d.r, buf[len(buf):min(n, cap(buf))])
		buf = buf[:len(buf)+m]
		d.offset += int64(m)
		d.msgCost += int64(m)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// skipBody discards n body bytes without keeping them.
func (d *Decoder) skipBody(n uint64) error {
	for n > 0 {
		m, err := d.r.Discard(int(min(n, 1<<20)))
		d.offset += int64(m)
		n -= uint64(m)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// hasBody reports whether tokens of type typ carry a header-sized body.
func hasBody(typ byte) bool {
	return typ == tokString || typ == tokLongInt || typ == tokLongNeg
}

// top reads one top-level object.
func (d *Decoder) top() (any, error) {
	// Reuse the table across messages unless a large one would make
	// clearing it cost more than a small message is worth.
	if len(d.objects) > 1024 {
		d.objects = nil
	} else {
		clear(d.objects)
	}
	d.hasher.reset()
	d.inMsg = false
	t, err := d.rawToken()
	if err != nil {
		return nil, err
	}
	d.inMsg = true
	d.msgCost = 0
	defer func() { d.inMsg = false }()
	if t.typ != tokOpen {
		if d.pb {
			return nil, d.bananaErr(ErrTopLevelNotOpen, fmt.Sprintf("got token 0x%x", t.typ))
		}
		if t.typ == tokClose || t.typ == tokAbort {
			return nil, d.bananaErr(ErrLostSync, fmt.Sprintf("token 0x%x outside any sequence", t.typ))
		}
		v, err := d.atom(t, d.lim.MaxStringLength)
		if err != nil && isViolation(err) && hasBody(t.typ) {
			// The body was skipped by atom; the object is gone.
			return nil, err
		}
		return v, err
	}
	v, err := d.sequence(t, true)
	if err != nil && isViolation(err) {
		if serr := d.skipRest(); serr != nil {
			return nil, serr
		}
		if m, ok := v.(*message); ok {
			m.violation = err
			return m, nil
		}
	}
	return v, err
}

// skipRest discards tokens until every open sequence is closed.
func (d *Decoder) skipRest() error {
	for len(d.opens) > 0 {
		t, err := d.rawToken()
		if err != nil {
			return err
		}
		switch t.typ {
		case tokOpen:
			if err := d.pushOpen(t); err != nil {
				return err
			}
		case tokClose:
			if err := d.popClose(t); err != nil {
				return err
			}
		case tokString, tokLongInt, tokLongNeg:
			if t.big || int64(t.header) > d.lim.MaxMessageSize {
				return d.bananaErr(ErrMessageTooLarge, fmt.Sprintf("token declares %d body bytes", t.header))
			}
			if err := d.skipBody(t.header); err != nil {
				return err
			}
		case tokFloat:
			if err := d.skipBody(8); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Decoder) pushOpen(t token) error {
	if len(d.opens) >= d.lim.MaxDepth {
		return d.bananaErr(ErrTooDeep, fmt.Sprintf("more than %d", d.lim.MaxDepth))
	}
	d.objCount++
	d.opens = append(d.opens, int64(t.header))
	return nil
}

func (d *Decoder) popClose(t token) error {
	if len(d.opens) == 0 {
		return d.bananaErr(ErrLostSync, fmt.Sprintf("got CLOSE(%d) outside any sequence", t.header))
	}
	want := d.opens[len(d.opens)-1]
	if t.big || int64(t.header) != want {
		return d.bananaErr(ErrLostSync, fmt.Sprintf("got CLOSE(%d) but expecting %d", t.header, want))
	}
	d.opens = d.opens[:len(d.opens)-1]
	return nil
}

// charge accounts one decoded value against MaxMessageSize.
func (d *Decoder) charge() error {
	d.msgCost += 16
	if d.msgCost > d.lim.MaxMessageSize {
		return d.violation(ErrMessageTooLarge, "more than %d bytes", d.lim.MaxMessageSize)
	}
	return nil
}

// atom decodes a non-sequence token (reading or skipping its body).
func (d *Decoder) atom(t token, maxLen int) (any, error) {
	switch t.typ {
	case tokInt, tokNeg:
		var v any
		if t.big {
			x := new(big.Int)
			for i := len(t.digits) - 1; i >= 0; i-- {
				x.Lsh(x, 7)
				x.Or(x, big.NewInt(int64(t.digits[i])))
			}
			if t.typ == tokNeg {
				x.Neg(x)
			}
			v = normBig(x)
		} else if t.typ == tokInt {
			v = int64(t.header)
		} else {
			v = -int64(t.header)
		}
		return v, d.charge()
	case tokString, tokLongInt, tokLongNeg:
		if t.big || t.header > uint64(maxLen) {
			reason := ErrStringTooLong
			if maxLen < d.lim.MaxStringLength && maxLen <= maxCopyableNameLength {
				reason = ErrOpenTypeTooLong
			}
			if t.big || int64(t.header) > d.lim.MaxMessageSize {
				return nil, d.bananaErr(ErrMessageTooLarge, fmt.Sprintf("token declares %d body bytes", t.header))
			}
			if err := d.skipBody(t.header); err != nil {
				return nil, err
			}
			return nil, d.violation(reason, "%d > %d bytes", t.header, maxLen)
		}
		if err := d.charge(); err != nil {
			if serr := d.skipBody(t.header); serr != nil {
				return nil, serr
			}
			return nil, err
		}
		body, err := d.readBody(int(t.header))
		if err != nil {
			return nil, err
		}
		if d.msgCost > d.lim.MaxMessageSize {
			return nil, d.violation(ErrMessageTooLarge, "more than %d bytes", d.lim.MaxMessageSize)
		}
		if t.typ == tokString {
			return body, nil
		}
		x := new(big.Int).SetBytes(body)
		if t.typ == tokLongNeg {
			x.Neg(x)
		}
		return normBig(x), nil
	case tokVocab:
		if t.big || t.header >= uint64(len(d.vocab)) {
			return nil, d.bananaErr(ErrUnknownVocab, fmt.Sprintf("index %d, table has %d words", t.header, len(d.vocab)))
		}
		return []byte(d.vocab[t.header]), d.charge()
	case tokFloat:
		body, err := d.readBody(8)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(binary.BigEndian.Uint64(body)), d.charge()
	}
	return nil, d.bananaErr(ErrInvalidTypeByte, fmt.Sprintf("0x%x", t.typ))
}

// normBig returns x as int64 if it fits.
func normBig(x *big.Int) any {
	if x.IsInt64() {
		return x.Int64()
	}
	return x
}

// closeMark is returned by child at the CLOSE of the current sequence.
type closeMark struct{}

// child reads the next child of the innermost open sequence: a value, or
// closeMark{} at its CLOSE. maxLen bounds a STRING child.
func (d *Decoder) child(maxLen int) (any, error) {
	t, err := d.rawToken()
	if err != nil {
		return nil, err
	}
	switch t.typ {
	case tokClose:
		if err := d.popClose(t); err != nil {
			return nil, err
		}
		return closeMark{}, nil
	case tokAbort:
		return nil, d.violation(ErrAborted, "ABORT(%d)", t.header)
	case tokOpen:
		return d.sequence(t, false)
	}
	return d.atom(t, maxLen)
}

// children reads the rest of a sequence's children up to its CLOSE.
func (d *Decoder) children(kind string) ([]any, error) {
	var items []any
	for {
		v, err := d.child(d.lim.MaxStringLength)
		if err != nil {
			return nil, err
		}
		if _, ok := v.(closeMark); ok {
			return items, nil
		}
		if len(items) >= d.lim.MaxItems {
			return nil, d.violation(ErrTooManyItems, "%s has more than %d items", kind, d.lim.MaxItems)
		}
		items = append(items, v)
	}
}

// exactly reads a sequence body of exactly n children.
func (d *Decoder) exactly(kind string, n int) ([]any, error) {
	items, err := d.children(kind)
	if err != nil {
		return nil, err
	}
	if len(items) != n {
		return nil, d.violation(ErrBadSequence, "%s takes %d items, got %d", kind, n, len(items))
	}
	return items, nil
}

// sequence decodes from an OPEN token to its CLOSE.
func (d *Decoder) sequence(open token, topLevel bool) (any, error) {
	if err := d.pushOpen(open); err != nil {
		return nil, err
	}
	objID := d.objCount - 1
	// Index phase: the opentype string.
	t, err := d.rawToken()
	if err != nil {
		return nil, err
	}
	var opentype string
	switch t.typ {
	case tokString:
		v, err := d.atom(t, maxOpenTypeLength)
		if err != nil {
			return nil, err
		}
		opentype = string(v.([]byte))
	case tokVocab:
		v, err := d.atom(t, 0)
		if err != nil {
			return nil, err
		}
		opentype = string(v.([]byte))
	case tokOpen:
		return nil, d.bananaErr(ErrBadSequence, "OPEN token followed by OPEN")
	case tokClose:
		if err := d.popClose(t); err != nil {
			return nil, err
		}
		return nil, d.violation(ErrBadSequence, "sequence without an opentype")
	default:
		if hasBody(t.typ) {
			if t.big || int64(t.header) > d.lim.MaxMessageSize {
				return nil, d.bananaErr(ErrMessageTooLarge, fmt.Sprintf("token declares %d body bytes", t.header))
			}
			if err := d.skipBody(t.header); err != nil {
				return nil, err
			}
		} else if t.typ == tokFloat {
			if err := d.skipBody(8); err != nil {
				return nil, err
			}
		}
		return nil, d.violation(ErrBadSequence, "index token 0x%02x not STRING or VOCAB", t.typ)
	}
	if d.failureOnly {
		d.failureOnly = false
		if opentype != "copyable" {
			return nil, d.violation(ErrBadValue, "an error's value must be a Failure, not %q", opentype)
		}
	}
	if topLevel && d.pb {
		switch opentype {
		case "call", "answer", "error":
			return d.message(opentype)
		}
		return nil, d.violation(ErrUnknownOpenType, "unknown top-level OPEN type %q", opentype)
	}
	switch opentype {
	case "none":
		_, err := d.exactly(opentype, 0)
		return nil, err
	case "boolean":
		items, err := d.exactly(opentype, 1)
		if err != nil {
			return nil, err
		}
		switch items[0] {
		case int64(0):
			return false, nil
		case int64(1):
			return true, nil
		}
		return nil, d.violation(ErrBadSequence, "boolean takes INT 0 or 1, got %s", describe(items[0], 80))
	case "unicode":
		items, err := d.exactly(opentype, 1)
		if err != nil {
			return nil, err
		}
		b, ok := items[0].([]byte)
		if !ok || !utf8.Valid(b) {
			return nil, d.violation(ErrBadValue, "unicode takes a UTF-8 STRING")
		}
		return string(b), nil
	case "decimal":
		items, err := d.exactly(opentype, 1)
		if err != nil {
			return nil, err
		}
		b, ok := items[0].([]byte)
		if !ok {
			return nil, d.violation(ErrBadValue, "decimal takes a STRING")
		}
		return Decimal(b), nil
	case "list", "tuple", "set", "immutable-set", "dict":
		return d.container(opentype, objID)
	case "reference":
		items, err := d.exactly(opentype, 1)
		if err != nil {
			return nil, err
		}
		n, ok := items[0].(int64)
		if !ok {
			return nil, d.violation(ErrBadValue, "reference takes an INT")
		}
		o, ok := d.objects[n]
		if ok && !o.done {
			return nil, d.violation(ErrBadValue, "reference %d to an unfinished sequence (cycles are not supported)", n)
		}
		if !ok {
			return nil, d.violation(ErrBadValue, "reference %d to an unknown object", n)
		}
		// A reference costs what it refers to, as if the object were sent
		// again: a program that walks the value walks it again.
		d.msgCost += o.cost
		if d.msgCost > d.lim.MaxMessageSize {
			return nil, d.violation(ErrMessageTooLarge, "more than %d bytes with shared references expanded", d.lim.MaxMessageSize)
		}
		return o.v, nil
	case "copyable":
		return d.copyable()
	case "my-reference":
		return d.myReference()
	case "your-reference":
		items, err := d.exactly(opentype, 1)
		if err != nil {
			return nil, err
		}
		clid, ok := items[0].(int64)
		if !ok {
			return nil, d.violation(ErrBadValue, "your-reference ID must be an INT")
		}
		if d.refs == nil {
			return nil, d.violation(ErrBadValue, "unknown clid '%d'", clid)
		}
		return d.refs.decodeYourRef(clid)
	case "arguments":
		if !d.pb {
			break
		}
		return d.arguments()
	case "their-reference":
		return nil, d.violation(ErrUnknownOpenType, "gifts are prohibited in this Tub")
	}
	return nil, d.violation(ErrUnknownOpenType, "unknown OPEN type %q", opentype)
}

func (d *Decoder) container(kind string, objID int64) (any, error) {
	if d.objects == nil {
		d.objects = make(map[int64]decodedObj)
	}
	d.objects[objID] = decodedObj{}
	start := d.msgCost
	items, err := d.children(kind)
	if err != nil {
		return nil, err
	}
	// The container itself: a slice header, and an interface (two words)
	// per item, or a DictItem (four) per key/value pair.
	d.msgCost += 24 + 16*int64(len(items))
	if d.msgCost > d.lim.MaxMessageSize {
		return nil, d.violation(ErrMessageTooLarge, "more than %d bytes", d.lim.MaxMessageSize)
	}
	var v any
	switch kind {
	case "list":
		if items == nil {
			items = []any{}
		}
		v = items
	case "tuple":
		v = Tuple(items)
	case "set", "immutable-set":
		seen := make(map[string]bool, len(items))
		out := items[:0]
		for _, it := range items {
			k, ok := d.hasher.key(it)
			if !ok {
				return nil, d.violation(ErrBadValue, "unhashable %T in %s", it, kind)
			}
			if !seen[k] {
				seen[k] = true
				out = append(out, it)
			}
		}
		if kind == "set" {
			v = Set(out)
		} else {
			v = FrozenSet(out)
		}
	case "dict":
		if len(items)%2 != 0 {
			return nil, d.violation(ErrBadSequence, "dict with a key but no value")
		}
		dict := make(Dict, 0, len(items)/2)
		seen := make(map[string]bool, len(items)/2)
		for i := 0; i < len(items); i += 2 {
			k, ok := d.hasher.key(items[i])
			if !ok {
				return nil, d.violation(ErrBadValue, "unhashable key %T", items[i])
			}
			if seen[k] {
				return nil, d.violation(ErrBadSequence, "duplicate key %s", describe(items[i], 80))
			}
			seen[k] = true
			dict = append(dict, DictItem{Key: items[i], Value: items[i+1]})
		}
		v = dict
	}
	d.objects[objID] = decodedObj{v: v, cost: d.msgCost - start, done: true}
	return v, nil
}

// Foolscap's FailureConstraint, which every received Failure must meet:
// the longest type, value, traceback and parent class name, in bytes.
const (
	maxFailureType      = 200
	maxFailureValue     = 1000
	maxFailureTraceback = 2000
	maxFailureParent    = 200
)

// copyable decodes a pass-by-copy object; only Failure is registered. Its
// attributes must be text within Foolscap's FailureConstraint; longer ones
// are refused as Foolscap refuses them, unread.
func (d *Decoder) copyable() (any, error) {
	name, err := d.child(maxCopyableNameLength)
	if err != nil {
		return nil, err
	}
	nb, ok := name.([]byte)
	if !ok {
		return nil, d.violation(ErrBadSequence, "copyable without a class name")
	}
	if string(nb) != failureClassName {
		return nil, d.violation(ErrUnknownOpenType, "unknown RemoteCopy name '%s'", nb)
	}
	f := &RemoteError{}
	for {
		k, err := d.child(maxOpenTypeLength)
		if err != nil {
			return nil, err
		}
		if _, ok := k.(closeMark); ok {
			return f, nil
		}
		kb, ok := k.([]byte)
		if !ok {
			return nil, d.violation(ErrBadValue, "copyable attribute name must be a STRING")
		}
		limit := maxFailureParent
		var dst *string
		switch string(kb) {
		case "type":
			limit, dst = maxFailureType, &f.Type
		case "value":
			limit, dst = maxFailureValue, &f.Value
		case "traceback":
			limit, dst = maxFailureTraceback, &f.Traceback
		case "parents":
		default:
			return nil, d.violation(ErrBadValue, "unknown Failure attribute %q", kb)
		}
		v, err := d.child(limit)
		if err != nil {
			return nil, err
		}
		if _, ok := v.(closeMark); ok {
			return nil, d.violation(ErrBadSequence, "copyable attribute without a value")
		}
		if dst != nil {
			if *dst, ok = failureText(v, limit); !ok {
				return nil, d.violation(ErrBadValue, "Failure %s must be a string of at most %d bytes", kb, limit)
			}
			continue
		}
		l, ok := v.([]any)
		if !ok {
			return nil, d.violation(ErrBadValue, "Failure parents must be a list")
		}
		f.Parents = make([]string, len(l))
		for i, p := range l {
			if f.Parents[i], ok = failureText(p, maxFailureParent); !ok {
				return nil, d.violation(ErrBadValue, "Failure parents must be strings of at most %d bytes", maxFailureParent)
			}
		}
	}
}

// failureText returns a Failure attribute (bytes, or a str) as a Go string
// if it is at most limit bytes long.
func failureText(v any, limit int) (string, bool) {
	var s string
	switch x := v.(type) {
	case []byte:
		s = string(x)
	case string:
		s = x
	default:
		return "", false
	}
	return s, len(s) <= limit
}

func (d *Decoder) myReference() (any, error) {
	items, err := d.children("my-reference")
	if err != nil {
		return nil, err
	}
	if len(items) < 1 || len(items) > 3 {
		return nil, d.violation(ErrBadSequence, "my-reference takes 1 to 3 items, got %d", len(items))
	}
	clid, ok := items[0].(int64)
	if !ok {
		return nil, d.violation(ErrBadValue, "reference ID must be an INT or NEG")
	}
	var iname, url string
	for i, dst := range []*string{&iname, &url} {
		if len(items) > i+1 {
			b, ok := items[i+1].([]byte)
			if !ok {
				return nil, d.violation(ErrBadValue, "my-reference parameters must be STRINGs")
			}
			*dst = string(b)
		}
	}
	if d.refs == nil {
		return &RemoteRef{clid: clid, iname: iname, url: url}, nil
	}
	return d.refs.decodeMyRef(clid, iname, url)
}

// errorValue reads the value of an error message, which must be a Failure
// (Foolscap's ErrorUnslicer accepts nothing else): any other token is
// refused before its body is read, and so is any OPEN but a copyable.
func (d *Decoder) errorValue(m *message) error {
	t, err := d.rawToken()
	if err != nil {
		return err
	}
	switch t.typ {
	case tokOpen:
		d.failureOnly = true
		v, err := d.sequence(t, false)
		d.failureOnly = false
		if err != nil {
			return err
		}
		m.value = v
	case tokClose:
		if err := d.popClose(t); err != nil {
			return err
		}
		return d.violation(ErrBadSequence, "error takes one value, got 0")
	case tokAbort:
		return d.violation(ErrAborted, "ABORT(%d)", t.header)
	default:
		if hasBody(t.typ) {
			if t.big || int64(t.header) > d.lim.MaxMessageSize {
				return d.bananaErr(ErrMessageTooLarge, fmt.Sprintf("token declares %d body bytes", t.header))
			}
			if err := d.skipBody(t.header); err != nil {
				return err
			}
		} else if t.typ == tokFloat {
			if err := d.skipBody(8); err != nil {
				return err
			}
		}
		return d.violation(ErrBadValue, "an error's value must be a Failure, got token 0x%02x", t.typ)
	}
	v, err := d.child(d.lim.MaxStringLength)
	if err != nil {
		return err
	}
	if _, ok := v.(closeMark); !ok {
		return d.violation(ErrBadSequence, "error takes one value, got more")
	}
	return nil
}

// arguments is a decoded "arguments" sequence.
type arguments struct {
	args   []any
	kwargs map[string]any
}

func (d *Decoder) arguments() (any, error) {
	items, err := d.children("arguments")
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, d.violation(ErrBadSequence, "'arguments' sequence ended too early")
	}
	n, ok := items[0].(int64)
	if !ok || n < 0 || n > int64(len(items)-1) {
		return nil, d.violation(ErrBadSequence, "bad positional argument count %s", describe(items[0], 80))
	}
	a := &arguments{args: items[1 : 1+n], kwargs: map[string]any{}}
	rest := items[1+n:]
	if len(rest)%2 != 0 {
		return nil, d.violation(ErrBadSequence, "keyword argument without a value")
	}
	for i := 0; i < len(rest); i += 2 {
		k, ok := rest[i].([]byte)
		if !ok {
			return nil, d.violation(ErrBadValue, "kwarg name must be a STRING")
		}
		if _, dup := a.kwargs[string(k)]; dup {
			return nil, d.violation(ErrBadValue, "duplicate keyword argument %q", k)
		}
		a.kwargs[string(k)] = rest[i+1]
	}
	return a, nil
}

// message is a decoded PB top-level sequence.
type message struct {
	kind       string // "call", "answer" or "error"
	reqID      int64
	haveReqID  bool
	clid       int64
	method     string
	haveMethod bool // clid and method were read
	args       *arguments
	value      any   // answer value or error Failure
	violation  error // non-nil: the rest of the message was discarded
}

// message decodes the body of a top-level call, answer or error. On a
// Violation it returns the partial message (with the reqID if read) along
// with the error, and top discards the rest.
func (d *Decoder) message(kind string) (any, error) {
	m := &message{kind: kind}
	v, err := d.child(d.lim.MaxStringLength)
	if err != nil {
		return m, err
	}
	reqID, ok := v.(int64)
	if !ok || reqID < 0 {
		return m, d.violation(ErrBadValue, "request ID must be an INT")
	}
	m.reqID, m.haveReqID = reqID, true
	if kind != "call" && d.wantAnswer != nil && !d.wantAnswer(reqID) {
		return m, d.violation(ErrUnsolicited, "%s for request %d, which nobody awaits", kind, reqID)
	}
	if kind == "error" {
		return m, d.errorValue(m)
	}
	if kind == "call" {
		if v, err = d.child(d.lim.MaxStringLength); err != nil {
			return m, err
		}
		if m.clid, ok = v.(int64); !ok {
			return m, d.violation(ErrBadValue, "object ID must be an INT/NEG")
		}
		if v, err = d.child(d.lim.MaxStringLength); err != nil {
			return m, err
		}
		name, ok := v.([]byte)
		if !ok {
			return m, d.violation(ErrBadValue, "method name must be a STRING")
		}
		m.method, m.haveMethod = string(name), true
		if v, err = d.child(d.lim.MaxStringLength); err != nil {
			return m, err
		}
		if m.args, ok = v.(*arguments); !ok {
			return m, d.violation(ErrBadSequence, "arguments must be an 'arguments' sequence")
		}
		if v, err = d.child(d.lim.MaxStringLength); err != nil {
			return m, err
		}
		if _, ok := v.(closeMark); !ok {
			return m, d.violation(ErrBadSequence, "too many objects given to CallUnslicer")
		}
		return m, nil
	}
	items, err := d.children(kind)
	if err != nil {
		return m, err
	}
	if len(items) != 1 {
		return m, d.violation(ErrBadSequence, "%s takes one value, got %d", kind, len(items))
	}
	m.value = items[0]
	return m, nil
}
