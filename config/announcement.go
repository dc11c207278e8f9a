package config

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Announcement field names Tahoe-LAFS storage servers publish.
const (
	FieldServiceName     = "service-name"
	FieldNickname        = "nickname"
	FieldSeqnum          = "seqnum"
	FieldNonce           = "nonce"
	FieldMyVersion       = "my-version"
	FieldFURL            = "anonymous-storage-FURL"
	FieldPermutationSeed = "permutation-seed-base32"
)

// An Announcement is a Tahoe-LAFS announcement dictionary (the "ann" of a
// cache or servers.yaml entry, or the JSON message of a signed
// announcement). It is immutable: the common fields are copied into the
// exported struct fields and the whole dictionary is available through
// [Announcement.Fields] and [Announcement.Field], which return copies.
//
// Values are normalized to JSON's data model: string, int64 (integers,
// including integral floats such as 8.0, which Python considers equal to
// 8), float64 (other numbers), bool, nil, []any and map[string]any. So an
// announcement read from YAML and one decoded from JSON compare equal with
// [Announcement.Equal] when they hold the same data.
type Announcement struct {
	ServiceName string // "service-name"; "storage" for storage servers
	Nickname    string // "nickname", "" if absent
	Seqnum      int64  // "seqnum", valid if HasSeqnum
	HasSeqnum   bool
	Nonce       string // "nonce"
	MyVersion   string // "my-version"
	// FURL is "anonymous-storage-FURL" as written ("" if absent).
	FURL string
	// PermutationSeedBase32 is "permutation-seed-base32" ("" if absent).
	PermutationSeedBase32 string

	fields map[string]any
}

// fieldError is a problem with one announcement field; callers that know
// line numbers attach them.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.field + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// Field names the field the error is about, e.g. "anonymous-storage-NURLs[1]".
func (e *fieldError) Field() string { return e.field }

// NewAnnouncement builds an Announcement from a dictionary. Values must be
// JSON-like (strings, numbers of any Go integer or float type, bools, nil,
// slices and maps with string keys); the known fields must have the types
// Tahoe gives them (strings, and an integer seqnum).
func NewAnnouncement(fields map[string]any) (Announcement, error) {
	n, err := normalize(fields, 0)
	if err != nil {
		return Announcement{}, err
	}
	return newAnnouncement(n.(map[string]any))
}

// newAnnouncement takes ownership of an already normalized map.
func newAnnouncement(m map[string]any) (Announcement, error) {
	a := Announcement{fields: m}
	strs := []struct {
		key string
		dst *string
	}{
		{FieldServiceName, &a.ServiceName}, {FieldNickname, &a.Nickname}, {FieldNonce, &a.Nonce},
		{FieldMyVersion, &a.MyVersion}, {FieldFURL, &a.FURL}, {FieldPermutationSeed, &a.PermutationSeedBase32},
	}
	for _, f := range strs {
		v, ok := m[f.key]
		if !ok {
			continue
		}
		s, isStr := v.(string)
		if !isStr {
			return Announcement{}, &fieldError{f.key, classErr(ErrType, "must be a string, not "+typeName(v))}
		}
		*f.dst = s
	}
	if v, ok := m[FieldSeqnum]; ok {
		n, isInt := v.(int64)
		if !isInt {
			return Announcement{}, &fieldError{FieldSeqnum, classErr(ErrType, "must be an integer, not "+typeName(v))}
		}
		a.Seqnum, a.HasSeqnum = n, true
	}
	return a, nil
}

// Fields returns a deep copy of the announcement dictionary.
func (a Announcement) Fields() map[string]any {
	c, _ := normalize(a.fields, 0) // normalize of a normalized value copies it
	if c == nil {
		return map[string]any{}
	}
	return c.(map[string]any)
}

// Field returns a deep copy of one field's value.
func (a Announcement) Field(name string) (any, bool) {
	v, ok := a.fields[name]
	if !ok {
		return nil, false
	}
	c, _ := normalize(v, 0)
	return c, true
}

// Keys returns the field names in sorted order.
func (a Announcement) Keys() []string { return slices.Sorted(maps.Keys(a.fields)) }

// Equal reports whether a and b hold the same dictionary. It is the
// comparison Tahoe's broker uses ("old.get_announcement() == ann").
func (a Announcement) Equal(b Announcement) bool { return reflect.DeepEqual(a.fields, b.fields) }

// MarshalJSON encodes the dictionary with sorted keys.
func (a Announcement) MarshalJSON() ([]byte, error) {
	if a.fields == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(a.fields)
}

// maxNesting bounds the depth of announcement values, so hostile input
// cannot exhaust the stack.
const maxNesting = 100

// normalize converts v to JSON's data model, copying it.
func normalize(v any, depth int) (any, error) {
	if depth > maxNesting {
		return nil, classErr(ErrInvalidValue, "nested more than "+itoa(maxNesting)+" levels deep")
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		if !utf8.ValidString(x) {
			return nil, classErr(ErrInvalidValue, "string is not valid UTF-8")
		}
		return x, nil
	case bool:
		return x, nil
	case int:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int64:
		return x, nil
	case uint:
		return uintToInt(uint64(x))
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint64:
		return uintToInt(x)
	case float32:
		return normFloat(float64(x))
	case float64:
		return normFloat(x)
	case json.Number:
		return numberFromJSON(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return normalize(out, depth)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if !utf8.ValidString(k) {
				return nil, classErr(ErrInvalidValue, "key is not valid UTF-8")
			}
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = e
		}
		return normalize(out, depth)
	}
	return nil, classErr(ErrType, fmt.Sprintf("unsupported value of type %T", v))
}

func uintToInt(u uint64) (any, error) {
	if u > math.MaxInt64 {
		return nil, classErr(ErrInvalidValue, "integer out of range")
	}
	return int64(u), nil
}

func normFloat(f float64) (any, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, classErr(ErrInvalidValue, "NaN and infinite numbers are not allowed")
	}
	// Python compares 8 == 8.0, so an integral float is the same value as
	// the integer; normalizing it keeps YAML (which writes 8.0 as 8) and
	// JSON round trips equal.
	if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
		return int64(f), nil
	}
	return f, nil
}

// numberFromJSON maps a JSON number to int64 when it is written as an
// integer (as Python's json module does for int) and float64 otherwise.
func numberFromJSON(n json.Number) (any, error) {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, classErr(ErrInvalidValue, "integer out of range: "+s)
		}
		return i, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, classErr(ErrInvalidValue, "number out of range: "+s)
	}
	return normFloat(f)
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64:
		return "an integer"
	case float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

// base32Enc is Tahoe's base32: RFC 4648 alphabet, lower case, no padding.
var base32Enc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// decodeBase32 decodes Tahoe base32, rejecting upper case and non-canonical
// encodings (unused trailing bits set), as allmydata.util.base32.a2b does.
func decodeBase32(s string) ([]byte, error) {
	b, err := base32Enc.DecodeString(s)
	if err != nil || base32Enc.EncodeToString(b) != s {
		return nil, classErr(ErrInvalidValue, "not lower-case unpadded base32: "+quote(s))
	}
	return b, nil
}

// keyPrefix is the version prefix of server keys and signatures.
const keyPrefix = "v0-"

// FormatServerKey returns the Tahoe server id of an Ed25519 public key:
// "v0-" followed by its 52-character base32 encoding.
func FormatServerKey(pub ed25519.PublicKey) string {
	return keyPrefix + base32Enc.EncodeToString(pub)
}

// ParseServerKey parses a Tahoe server id ("v0-" + lower-case unpadded
// base32 of a 32-byte Ed25519 public key).
func ParseServerKey(s string) (ed25519.PublicKey, error) {
	rest, ok := strings.CutPrefix(s, keyPrefix)
	if !ok {
		return nil, classErr(ErrUnknownKeyType, "server key "+quote(s)+" does not start with \"v0-\"")
	}
	b, err := decodeBase32(rest)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, classErr(ErrInvalidValue, "server key "+quote(s)+" is not v0- followed by 52 base32 characters")
	}
	return ed25519.PublicKey(b), nil
}

// A Signed is an announcement in the signed form Tahoe's introducer
// protocol carries (the ann_t triple): Msg is the exact UTF-8 JSON that
// was signed, Sig is "v0-" + base32 of the Ed25519 signature, and Key is
// the signer's server id ("v0-" + base32 of the public key).
type Signed struct {
	Msg []byte
	Sig string
	Key string
}

// Sign signs an announcement dictionary with priv, as a Tahoe storage
// server does when it publishes (sign_to_foolscap).
func Sign(priv ed25519.PrivateKey, fields map[string]any) (Signed, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return Signed{}, errors.New("config: Sign: bad Ed25519 private key length")
	}
	ann, err := NewAnnouncement(fields)
	if err != nil {
		return Signed{}, fmt.Errorf("config: Sign: %w", err)
	}
	msg, err := ann.MarshalJSON()
	if err != nil {
		return Signed{}, fmt.Errorf("config: Sign: %w", err)
	}
	return Signed{
		Msg: msg,
		Sig: keyPrefix + base32Enc.EncodeToString(ed25519.Sign(priv, msg)),
		Key: FormatServerKey(priv.Public().(ed25519.PublicKey)),
	}, nil
}

// Verify checks s and returns the announcement it carries; it is
// VerifyAnnouncement(s.Msg, s.Sig, s.Key).
func (s Signed) Verify() (Announcement, error) { return VerifyAnnouncement(s.Msg, s.Sig, s.Key) }

// VerifyAnnouncement checks a wire announcement (msg, sig, key) as Tahoe's
// IntroducerClient does (introducer/common.py unsign_from_foolscap): a
// missing sig or key, or one without the "v0-" prefix, is
// ErrUnknownKeyType; the Ed25519 signature over msg must verify with the
// key carried in the triple (the key is the server's self-certifying id);
// msg must be UTF-8 JSON of a dictionary. The server id is key itself.
//
// Errors are plain (not *FileError) and wrap ErrUnknownKeyType,
// ErrBadSignature, ErrInvalidValue or ErrType.
func VerifyAnnouncement(msg []byte, sig, key string) (Announcement, error) {
	if sig == "" || key == "" {
		return Announcement{}, classErr(ErrUnknownKeyType, "only signed announcements recognized")
	}
	sigB32, ok := strings.CutPrefix(sig, keyPrefix)
	if !ok {
		return Announcement{}, classErr(ErrUnknownKeyType, "only v0- signatures recognized")
	}
	if !strings.HasPrefix(key, keyPrefix) {
		return Announcement{}, classErr(ErrUnknownKeyType, "only v0- keys recognized")
	}
	pub, err := ParseServerKey(key)
	if err != nil {
		return Announcement{}, err
	}
	sigBytes, err := decodeBase32(sigB32)
	if err != nil || len(sigBytes) != ed25519.SignatureSize {
		return Announcement{}, classErr(ErrBadSignature, "signature is not v0- followed by base32 of 64 bytes")
	}
	if !ed25519.Verify(pub, msg, sigBytes) {
		return Announcement{}, classErr(ErrBadSignature, "Ed25519 signature does not verify for key "+key)
	}
	return parseAnnouncementJSON(msg)
}

// parseAnnouncementJSON decodes msg, which must be a JSON object.
func parseAnnouncementJSON(msg []byte) (Announcement, error) {
	if !utf8.Valid(msg) {
		return Announcement{}, classErr(ErrInvalidValue, "announcement message is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return Announcement{}, wrapClass(ErrInvalidValue, "announcement message is not JSON", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Announcement{}, classErr(ErrInvalidValue, "announcement message has data after the JSON value")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return Announcement{}, classErr(ErrType, "announcement message must be a JSON object, not "+typeName(v))
	}
	n, err := normalize(m, 0)
	if err != nil {
		return Announcement{}, err
	}
	a, err := newAnnouncement(n.(map[string]any))
	if err != nil {
		return Announcement{}, err
	}
	return a, nil
}
