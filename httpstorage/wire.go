package httpstorage

import (
	"fmt"
	"slices"

	"github.com/fxamacker/cbor/v2"

	"github.com/tubfarm/tubfarm/storage"
)

// Caps on what a server's answer may cost, as Tahoe's client has them.
const (
	// DefaultMaxCBOR bounds a CBOR answer body (Tahoe: 30 MiB).
	DefaultMaxCBOR = 30 << 20
	// MaxErrorBody is how much of an error answer is read (Tahoe: 10,000
	// bytes); the rest is discarded with the connection.
	MaxErrorBody = 10000
	// MaxNesting bounds CBOR nesting. Tahoe's deepest message (a
	// read-test-write answer) nests 3 levels.
	MaxNesting = 16
)

// setTag is the CBOR tag of a set (RFC 9090's "finite set"), which Tahoe
// puts around every array that is a set.
const setTag = 258

// decOptions are the caps every answer is decoded under: bounded nesting,
// array and map sizes, no duplicate map keys, no indefinite lengths.
var decOptions = cbor.DecOptions{
	MaxNestedLevels:  MaxNesting,
	MaxArrayElements: 1 << 16,
	MaxMapPairs:      1 << 16,
	DupMapKey:        cbor.DupMapKeyEnforcedAPF,
	IndefLength:      cbor.IndefLengthForbidden,
	// The version answer's keys are byte strings; every other message
	// uses text keys.
	FieldNameByteString: cbor.FieldNameByteStringAllowed,
}

// decMode decodes answers under decOptions.
var decMode = mustDec(decOptions)

// versionMode also lets a byte string decode into a Go string: the
// version answer's keys are byte strings.
var versionMode = mustDec(func() cbor.DecOptions {
	o := decOptions
	o.ByteStringToString = cbor.ByteStringToStringAllowed
	return o
}())

// encMode writes definite lengths with keys in struct order, as cbor2
// writes insertion order.
var encMode = mustEnc(cbor.EncOptions{})

func mustDec(o cbor.DecOptions) cbor.DecMode {
	m, err := o.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

func mustEnc(o cbor.EncOptions) cbor.EncMode {
	m, err := o.EncMode()
	if err != nil {
		panic(err)
	}
	return m
}

// ShareSet is a set of share numbers: CBOR tag 258 around an array.
type ShareSet []storage.ShareNum

// MarshalCBOR writes the set as tag 258 around a sorted array.
func (s ShareSet) MarshalCBOR() ([]byte, error) {
	a := make([]uint64, len(s))
	for i, n := range slices.Sorted(slices.Values(s)) {
		a[i] = uint64(n)
	}
	return encMode.Marshal(cbor.Tag{Number: setTag, Content: a})
}

// UnmarshalCBOR requires tag 258 and share numbers below 256.
func (s *ShareSet) UnmarshalCBOR(b []byte) error {
	var t cbor.RawTag
	if err := decMode.Unmarshal(b, &t); err != nil {
		return err
	}
	if t.Number != setTag {
		return fmt.Errorf("a set must carry tag %d, not %d", setTag, t.Number)
	}
	var a []uint64
	if err := decMode.Unmarshal(t.Content, &a); err != nil {
		return err
	}
	if len(a) > storage.MaxShares {
		return fmt.Errorf("%d share numbers: %w", len(a), storage.ErrTooLarge)
	}
	out := make(ShareSet, 0, len(a))
	for _, n := range a {
		if n >= storage.MaxShares {
			return fmt.Errorf("share number %d out of range", n)
		}
		out = append(out, storage.ShareNum(n))
	}
	slices.Sort(out)
	*s = slices.Compact(out)
	return nil
}

// VersionKey is the byte-string key of the storage part of a version
// answer.
var versionKey = []byte(storage.VersionKey)

// VersionV1 is the storage part of a version answer.
type VersionV1 struct {
	MaxImmutable   uint64 `cbor:"maximum-immutable-share-size"`
	MaxMutable     uint64 `cbor:"maximum-mutable-share-size"`
	AvailableSpace uint64 `cbor:"available-space"`
}

// DecodeVersion decodes a version answer and restores the four flags that
// HTTPS storage leaves out, as Tahoe's client does.
func DecodeVersion(b []byte) (storage.Version, error) {
	var top map[string]cbor.RawMessage
	if err := versionMode.Unmarshal(b, &top); err != nil {
		return storage.Version{}, err
	}
	raw, ok := top[string(versionKey)]
	if !ok {
		return storage.Version{}, fmt.Errorf("no %q", storage.VersionKey)
	}
	var v1 VersionV1
	if err := versionMode.Unmarshal(raw, &v1); err != nil {
		return storage.Version{}, err
	}
	var app []byte
	if a, ok := top["application-version"]; ok {
		if err := decMode.Unmarshal(a, &app); err != nil {
			return storage.Version{}, fmt.Errorf("application-version: %w", err)
		}
	}
	if len(app) > 200 {
		app = app[:200]
	}
	return storage.Version{
		MaxImmutableShareSize:                   v1.MaxImmutable,
		MaxMutableShareSize:                     v1.MaxMutable,
		AvailableSpace:                          v1.AvailableSpace,
		ApplicationVersion:                      string(app),
		ToleratesImmutableReadOverrun:           true,
		DeleteMutableSharesWithZeroLengthWritev: true,
		FillsHolesWithZeroBytes:                 true,
		PreventsReadPastEndOfShareData:          true,
	}, nil
}

// EncodeVersion writes a version answer as Tahoe's server does, with
// byte-string keys.
func EncodeVersion(v storage.Version) ([]byte, error) {
	// Keys in Tahoe's order: the protocol map first, then the version.
	type kv struct {
		k []byte
		v any
	}
	v1 := []kv{
		{[]byte("maximum-immutable-share-size"), v.MaxImmutableShareSize},
		{[]byte("maximum-mutable-share-size"), v.MaxMutableShareSize},
		{[]byte("available-space"), v.AvailableSpace},
	}
	enc := func(items []kv) ([]byte, error) {
		out := []byte{0xa0 | byte(len(items))}
		for _, it := range items {
			k, err := encMode.Marshal(it.k)
			if err != nil {
				return nil, err
			}
			val, err := encMode.Marshal(it.v)
			if err != nil {
				return nil, err
			}
			out = append(append(out, k...), val...)
		}
		return out, nil
	}
	m, err := enc(v1)
	if err != nil {
		return nil, err
	}
	return enc([]kv{{versionKey, cbor.RawMessage(m)}, {[]byte("application-version"), []byte(v.ApplicationVersion)}})
}

// AllocateRequest is the body of POST /immutable/SI.
type AllocateRequest struct {
	ShareNumbers  ShareSet `cbor:"share-numbers"`
	AllocatedSize uint64   `cbor:"allocated-size"`
}

// AllocateResponse answers it.
type AllocateResponse struct {
	AlreadyHave ShareSet `cbor:"already-have"`
	Allocated   ShareSet `cbor:"allocated"`
}

// Range is a byte range [Begin, End) still to be uploaded.
type Range struct {
	Begin uint64 `cbor:"begin"`
	End   uint64 `cbor:"end"`
}

// UploadProgress answers a PATCH.
type UploadProgress struct {
	Required []Range `cbor:"required"`
}

// CorruptRequest is the body of a corruption advisory.
type CorruptRequest struct {
	Reason string `cbor:"reason"`
}

// RTWTest is one test vector of a read-test-write.
type RTWTest struct {
	Offset   uint64 `cbor:"offset"`
	Size     uint64 `cbor:"size"`
	Specimen []byte `cbor:"specimen"`
}

// RTWWrite is one write vector.
type RTWWrite struct {
	Offset uint64 `cbor:"offset"`
	Data   []byte `cbor:"data"`
}

// RTWShare is what a read-test-write does to one share.
type RTWShare struct {
	Test      []RTWTest  `cbor:"test"`
	Write     []RTWWrite `cbor:"write"`
	NewLength *uint64    `cbor:"new-length"`
}

// RTWRead is one read vector.
type RTWRead struct {
	Offset uint64 `cbor:"offset"`
	Size   uint64 `cbor:"size"`
}

// RTWRequest is the body of POST /mutable/SI/read-test-write.
type RTWRequest struct {
	TestWriteVectors map[uint64]RTWShare `cbor:"test-write-vectors"`
	ReadVector       []RTWRead           `cbor:"read-vector"`
}

// RTWResponse answers it.
type RTWResponse struct {
	Success bool                `cbor:"success"`
	Data    map[uint64][][]byte `cbor:"data"`
}

// Unmarshal decodes b into v under the caps of this package.
func Unmarshal(b []byte, v any) error { return decMode.Unmarshal(b, v) }

// Marshal encodes v as Tahoe would.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }
