package storage

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
)

// An Index is a storage index: the 16 bytes naming one file's shares on a
// server.
type Index [16]byte

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// String returns the index as Tahoe writes it: 26 characters of lowercase
// unpadded base32.
func (si Index) String() string { return b32.EncodeToString(si[:]) }

// ParseIndex parses the 26-character lowercase base32 form of a storage
// index. Upper case is refused, as Tahoe's HTTPS server refuses it.
func ParseIndex(s string) (Index, error) {
	var si Index
	if len(s) != 26 || strings.ToLower(s) != s {
		return si, fmt.Errorf("storage: storage index %q: want 26 lowercase base32 characters", s)
	}
	b, err := b32.DecodeString(s)
	if err != nil || len(b) != len(si) {
		return si, fmt.Errorf("storage: storage index %q: not base32", s)
	}
	copy(si[:], b)
	return si, nil
}

// A ShareNum is a share number. Tahoe's erasure coding makes at most 256
// shares of a file, so every share number fits in a byte.
type ShareNum uint8

// MaxShares is the most share numbers one call may name (Tahoe's
// MAX_BUCKETS).
const MaxShares = 256

// A Secret is one of the 32-byte secrets Tahoe derives per file and server:
// a lease renewal or cancel secret, or a mutable slot's write enabler.
type Secret [32]byte

// LeaseSecrets are the renewal and cancel secrets sent with
// AllocateBuckets and AddLease. Servers since Tahoe 1.11 ignore them but
// still require them to be present and 32 bytes long.
type LeaseSecrets struct {
	Renew, Cancel Secret
}

// WriteSecrets are the secrets of a mutable write: the slot's write enabler
// and the lease secrets.
type WriteSecrets struct {
	WriteEnabler Secret
	LeaseSecrets
}

// RandomSecret returns 32 random bytes.
func RandomSecret() Secret {
	var s Secret
	rand.Read(s[:])
	return s
}

// ShareKind says which kind of share an advisory is about.
type ShareKind string

// The two share kinds.
const (
	Immutable ShareKind = "immutable"
	Mutable   ShareKind = "mutable"
)

// Size limits of one call. A caller with more to move makes several calls.
const (
	// MaxChunk is the most bytes one Foolscap write or read carries:
	// Foolscap's default limit on one string. Larger Writes and Reads are
	// split into calls of this size.
	MaxChunk = 1 << 20

	// MaxWriteLength is the most bytes one BucketWriter.Write accepts.
	MaxWriteLength = 16 << 20

	// MaxReadLength is the most bytes one BucketReader.Read, and one
	// element of a read vector, may ask for.
	MaxReadLength = 16 << 20

	// MaxVectors is the most read vectors, and the most test vectors per
	// share, one mutable call may carry (Tahoe's limit of 30).
	MaxVectors = 30

	// MaxReasonLength is the longest corruption advisory reason
	// (Tahoe's HTTPS schema allows 1 to 32765 characters).
	MaxReasonLength = 32765
)

// Version is what a storage server says about itself (get_version).
type Version struct {
	// MaxImmutableShareSize is the largest immutable share the server
	// accepts now (Tahoe: free space minus the reserve).
	MaxImmutableShareSize uint64
	// MaxMutableShareSize is the largest mutable share.
	MaxMutableShareSize uint64
	// AvailableSpace is the free space the server reports.
	AvailableSpace uint64
	// ApplicationVersion is the server software, e.g. "tahoe-lafs/1.20.0".
	ApplicationVersion string

	// The capability flags every Tahoe server since 1.9 has. Foolscap
	// carries them; HTTPS storage omits them and the client sets them all,
	// as Tahoe's own client does.
	ToleratesImmutableReadOverrun           bool
	DeleteMutableSharesWithZeroLengthWritev bool
	FillsHolesWithZeroBytes                 bool
	PreventsReadPastEndOfShareData          bool
}

// Allocation is the answer to AllocateBuckets.
type Allocation struct {
	// AlreadyHave lists the requested shares the server holds complete.
	AlreadyHave []ShareNum
	// Writers has one writer for each share the server agreed to accept.
	// A share another upload is still writing is in neither.
	Writers map[ShareNum]BucketWriter
}

// ReadVector is one (offset, size) read of a mutable share.
type ReadVector struct {
	Offset, Size uint64
}

// TestVector passes if the share's bytes at [Offset, Offset+Size) equal
// Specimen (a read past the end is cut short; a missing share reads as
// empty, so {0, 1, nil} tests that a share does not exist).
type TestVector struct {
	Offset, Size uint64
	Specimen     []byte
}

// WriteVector writes Data at Offset, filling any hole with zero bytes.
type WriteVector struct {
	Offset uint64
	Data   []byte
}

// TestWrite is what SlotTestvAndReadvAndWritev does to one share: if every
// test of every share passes, the writes are applied and, if NewLength is
// set and shorter than the result, the share is cut to it (0 deletes it).
type TestWrite struct {
	Tests     []TestVector
	Writes    []WriteVector
	NewLength *uint64
}

// Errors wrapped by the errors of this package. Test with errors.Is.
var (
	// ErrTooLarge reports a request or answer over one of the caps.
	ErrTooLarge = errors.New("over the size limit")
	// ErrIncomplete reports a Close before every allocated byte was
	// written.
	ErrIncomplete = errors.New("share incomplete: not every allocated byte was written")
	// ErrBadArgument reports an argument the call refuses before sending
	// anything.
	ErrBadArgument = errors.New("bad argument")
)

// ServerError means the server answered and refused the request: a Foolscap
// Failure or an HTTP error status.
type ServerError struct {
	Op       string // the call, e.g. "allocate_buckets"
	Protocol string // "foolscap" or "https"
	Status   int    // the HTTP status; 0 over Foolscap
	Type     string // the remote exception type, over Foolscap
	Msg      string // what the server said, cut to a bounded length
}

func (e *ServerError) Error() string {
	var detail string
	switch {
	case e.Status != 0:
		detail = fmt.Sprintf("HTTP %d", e.Status)
	case e.Type != "":
		detail = e.Type
	}
	if e.Msg != "" {
		if detail != "" {
			detail += ": "
		}
		detail += e.Msg
	}
	return fmt.Sprintf("storage: %s over %s: server refused: %s", e.Op, e.Protocol, detail)
}

// ProtocolError means the server's answer broke the protocol: a wrong
// shape, type or content type, or a size over a cap (wrapping
// [ErrTooLarge]).
type ProtocolError struct {
	Op       string
	Protocol string
	Err      error
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("storage: %s over %s: bad answer: %v", e.Op, e.Protocol, e.Err)
}

func (e *ProtocolError) Unwrap() error { return e.Err }

// ConnError means the request or its answer was lost: the connection
// failed, timed out, or ctx ended.
type ConnError struct {
	Op       string
	Protocol string
	Err      error
}

func (e *ConnError) Error() string {
	return fmt.Sprintf("storage: %s over %s: connection failed: %v", e.Op, e.Protocol, e.Err)
}

func (e *ConnError) Unwrap() error { return e.Err }

// ArgError reports an argument refused locally, before anything was sent.
func ArgError(op, format string, args ...any) error {
	return fmt.Errorf("storage: %s: %w: %s", op, ErrBadArgument, fmt.Sprintf(format, args...))
}

// Refused reports whether err says the server answered and refused.
func Refused(err error) bool {
	var se *ServerError
	return errors.As(err, &se)
}

// CheckShareNums refuses an empty, oversized or repeating list of shares.
func CheckShareNums(op string, shares []ShareNum) error {
	if len(shares) > MaxShares {
		return ArgError(op, "%d share numbers, more than %d", len(shares), MaxShares)
	}
	var seen [MaxShares]bool
	for _, n := range shares {
		if seen[n] {
			return ArgError(op, "share %d named twice", n)
		}
		seen[n] = true
	}
	return nil
}

// CheckReadVectors refuses too many or oversized read vectors.
func CheckReadVectors(op string, readv []ReadVector) error {
	if len(readv) > MaxVectors {
		return ArgError(op, "%d read vectors, more than %d", len(readv), MaxVectors)
	}
	for _, r := range readv {
		if r.Size > MaxReadLength {
			return ArgError(op, "read of %d bytes, more than %d", r.Size, MaxReadLength)
		}
		if r.Offset > 1<<62 {
			return ArgError(op, "offset %d out of range", r.Offset)
		}
	}
	return nil
}

// CheckTestWrites refuses too many test vectors and offsets out of range.
func CheckTestWrites(op string, tw map[ShareNum]TestWrite) error {
	for n, t := range tw {
		if len(t.Tests) > MaxVectors {
			return ArgError(op, "share %d: %d test vectors, more than %d", n, len(t.Tests), MaxVectors)
		}
		for _, w := range t.Writes {
			if w.Offset > 1<<62 {
				return ArgError(op, "share %d: offset %d out of range", n, w.Offset)
			}
		}
	}
	return nil
}
