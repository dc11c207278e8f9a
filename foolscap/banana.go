package foolscap

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Banana token type bytes (protocol version 3), as Foolscap 21.7.0 puts them
// on the wire. See docs/foolscap-protocol.md §4.2. The bundled banana.rst is stale:
// LONGINT and LONGNEG are 0x85 and 0x86.
const (
	tokList    byte = 0x80 // obsolete "oldbanana"; receiving it is fatal
	tokInt     byte = 0x81
	tokString  byte = 0x82
	tokNeg     byte = 0x83
	tokFloat   byte = 0x84
	tokLongInt byte = 0x85
	tokLongNeg byte = 0x86
	tokVocab   byte = 0x87
	tokOpen    byte = 0x88
	tokClose   byte = 0x89
	tokAbort   byte = 0x8A
	tokError   byte = 0x8D
	tokPing    byte = 0x8E
	tokPong    byte = 0x8F
)

// Fixed protocol limits (docs/foolscap-protocol.md §4.3).
const (
	// maxHeaderDigits is the most base-128 header digits a token may carry
	// ("token prefix is limited to 64 bytes").
	maxHeaderDigits = 64
	// maxErrorLength is Foolscap's SIZE_LIMIT for an ERROR token body.
	maxErrorLength = 1000
	// maxOpenTypeLength is the longest first index string Foolscap's PB
	// root accepts (len("their-reference")).
	maxOpenTypeLength = 15
	// maxCopyableNameLength is the longest registered copyable class name
	// (len("twisted.python.failure.Failure")).
	maxCopyableNameLength = 30
	// failureClassName is the copyable name of a Twisted Failure.
	failureClassName = "twisted.python.failure.Failure"
)

// vocab1 is Foolscap's initial vocab table 1 (docs/foolscap-protocol.md §4.4).
var vocab1 = []string{
	"none", "boolean", "reference", "dict", "list", "tuple", "set",
	"immutable-set", "unicode", "set-vocab", "add-vocab", "call", "arguments",
	"answer", "error", "my-reference", "your-reference", "their-reference",
	"copyable", "instance", "module", "class", "method", "function", "attrdict",
}

// VocabTable returns the words of Foolscap's initial vocab table index (0 or
// 1) and whether the index is known. Table 0 is empty.
func VocabTable(index int) ([]string, bool) {
	switch index {
	case 0:
		return nil, true
	case 1:
		return vocab1, true
	}
	return nil, false
}

// VocabHash returns the 4-hex-digit hash that negotiation sends with a vocab
// table index: the first 4 hex digits of SHA-1 over the words joined by NUL.
// It is "da39" for table 0 and "bb33" for table 1.
func VocabHash(words []string) string {
	sum := sha1.Sum([]byte(strings.Join(words, "\x00")))
	return hex.EncodeToString(sum[:])[:4]
}

// Sentinel reasons carried by [*BananaError] and [*Violation]. Test with
// errors.Is.
var (
	// ErrHeaderTooLong: a token header had more than 64 base-128 digits.
	ErrHeaderTooLong = errors.New("token prefix is limited to 64 bytes")
	// ErrErrorTooLong: an ERROR token declared a body over 1000 bytes.
	ErrErrorTooLong = errors.New("oversized ERROR token")
	// ErrInvalidTypeByte: an unknown token type byte.
	ErrInvalidTypeByte = errors.New("invalid type byte")
	// ErrOldBanana: the obsolete LIST token (0x80).
	ErrOldBanana = errors.New("oldbanana peer detected")
	// ErrTopLevelNotOpen: a PB connection received a top-level token other
	// than OPEN, PING, PONG or ERROR.
	ErrTopLevelNotOpen = errors.New("top-level must be OPEN")
	// ErrLostSync: a CLOSE did not close the innermost open sequence.
	ErrLostSync = errors.New("lost sync")
	// ErrUnknownVocab: a VOCAB index outside the negotiated table.
	ErrUnknownVocab = errors.New("unknown VOCAB index")
	// ErrTooDeep: sequences nested deeper than Limits.MaxDepth.
	ErrTooDeep = errors.New("sequences nested too deeply")
	// ErrBadSequence: a sequence whose tokens do not fit its type (a
	// boolean without an INT, a dict with a duplicate key, ...).
	ErrBadSequence = errors.New("malformed sequence")
	// ErrPeerError: the peer sent an ERROR token; Detail holds its text.
	ErrPeerError = errors.New("peer sent ERROR")
	// ErrNegotiationText: a negotiation block ("banana-decision-version:
	// ... error: ...") arrived where Banana was expected, i.e. the peer
	// rejected the negotiation after we had started Banana
	// (docs/foolscap-protocol.md §3.6). Detail holds the peer's error text.
	ErrNegotiationText = errors.New("negotiation error block where Banana was expected")

	// ErrStringTooLong: a STRING, LONGINT or LONGNEG longer than
	// Limits.MaxStringLength.
	ErrStringTooLong = errors.New("string token too long")
	// ErrOpenTypeTooLong: an open-type or copyable class name longer than
	// Foolscap allows (15 and 30 bytes).
	ErrOpenTypeTooLong = errors.New("opentype token too long")
	// ErrUnknownOpenType: an OPEN of a type this side does not accept.
	ErrUnknownOpenType = errors.New("unknown OPEN type")
	// ErrTooManyItems: a sequence with more children than Limits.MaxItems.
	ErrTooManyItems = errors.New("too many items in sequence")
	// ErrMessageTooLarge: a top-level message larger than
	// Limits.MaxMessageSize.
	ErrMessageTooLarge = errors.New("message too large")
	// ErrAborted: the sender ABORTed the object.
	ErrAborted = errors.New("ABORT received")
	// ErrUnsolicited: an answer or error for a request that nobody
	// awaits (never sent, already answered, or given up by its caller).
	// Its body is skipped unread.
	ErrUnsolicited = errors.New("unsolicited answer")
	// ErrBadValue: a value of the wrong type or content in an otherwise
	// well-formed message (an unknown CLID, a non-bytes name, bad UTF-8).
	ErrBadValue = errors.New("bad value")
)

// BananaError is a fatal protocol error: the token stream cannot be
// followed any more and the connection is dropped (Foolscap's BananaError).
// Reason is one of the Err* sentinels above; Unwrap returns it.
type BananaError struct {
	Reason error  // sentinel, e.g. ErrHeaderTooLong
	Detail string // human-readable specifics; for ErrPeerError the peer's message
	// Offset is the stream offset (bytes read before the offending token)
	// where the error was noticed, or -1 if unknown.
	Offset int64
	// Err is an optional further cause: for ErrNegotiationText a
	// *RemoteNegotiationError with the peer's message.
	Err error
}

func (e *BananaError) Error() string {
	var b strings.Builder
	b.WriteString("foolscap: banana: ")
	b.WriteString(e.Reason.Error())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Offset >= 0 {
		fmt.Fprintf(&b, " (at byte %d)", e.Offset)
	}
	return b.String()
}

// Unwrap returns e.Reason and, if set, e.Err.
func (e *BananaError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Reason, e.Err}
	}
	return []error{e.Reason}
}

// Violation is a recoverable problem with one top-level message (Foolscap's
// Violation): the rest of that message is discarded, the connection stays
// usable, and an inbound call that caused it is answered with a Failure.
// Reason is one of the Err* sentinels above; Unwrap returns it.
type Violation struct {
	Reason error
	Detail string
}

func (v *Violation) Error() string {
	if v.Detail == "" {
		return "foolscap: violation: " + v.Reason.Error()
	}
	return "foolscap: violation: " + v.Reason.Error() + ": " + v.Detail
}

// Unwrap returns v.Reason.
func (v *Violation) Unwrap() error { return v.Reason }

// pythonText is the text Foolscap would put in the Failure value for v.
func (v *Violation) pythonText() string {
	msg := v.Detail
	if msg == "" {
		msg = v.Reason.Error()
	}
	return "Violation: (" + pyRepr(msg) + ",)"
}

// pyRepr quotes s like Python's repr of a str (close enough for messages).
func pyRepr(s string) string {
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}

// Limits bounds what a [Decoder] accepts from a peer, so that a hostile peer
// cannot make it allocate without bound. The zero value of each field means
// its default. Exceeding MaxDepth is fatal; the other limits are
// [*Violation]s that discard the message without reading its bodies into
// memory.
type Limits struct {
	// MaxStringLength bounds one STRING, LONGINT or LONGNEG body. Default
	// 1 MiB. Tahoe share data travels as STRINGs, so raise it if larger
	// segments are expected.
	MaxStringLength int
	// MaxDepth bounds sequence nesting. Default 64.
	MaxDepth int
	// MaxItems bounds the children of one sequence (a dict counts keys and
	// values). Default 65536.
	MaxItems int
	// MaxMessageSize bounds one top-level message, counted as the wire
	// bytes plus 16 bytes per decoded value. Default 16 MiB.
	MaxMessageSize int64
}

// Default limits.
const (
	DefaultMaxStringLength       = 1 << 20
	DefaultMaxDepth              = 64
	DefaultMaxItems              = 1 << 16
	DefaultMaxMessageSize  int64 = 16 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxStringLength <= 0 {
		l.MaxStringLength = DefaultMaxStringLength
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxItems <= 0 {
		l.MaxItems = DefaultMaxItems
	}
	if l.MaxMessageSize <= 0 {
		l.MaxMessageSize = DefaultMaxMessageSize
	}
	return l
}

// appendHeader appends n as base-128 little-endian digits. Zero is a single
// 0x00 digit, as Python emits for INT, OPEN and CLOSE.
func appendHeader(dst []byte, n uint64) []byte {
	for {
		dst = append(dst, byte(n&0x7f))
		n >>= 7
		if n == 0 {
			return dst
		}
	}
}

// appendToken appends one header+type token without a body.
func appendToken(dst []byte, header uint64, typ byte) []byte {
	return append(appendHeader(dst, header), typ)
}

// appendPingPong appends a PING or PONG; number 0 is the bare type byte.
func appendPingPong(dst []byte, n uint64, typ byte) []byte {
	if n == 0 {
		return append(dst, typ)
	}
	return appendToken(dst, n, typ)
}

// appendErrorToken appends an ERROR token, truncating msg like Foolscap.
func appendErrorToken(dst []byte, msg string) []byte {
	if len(msg) > maxErrorLength {
		msg = msg[:maxErrorLength-10] + "..."
	}
	dst = appendToken(dst, uint64(len(msg)), tokError)
	return append(dst, msg...)
}
