package hints

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Errors wrapped by [FURLError]. Test for them with [errors.Is].
var (
	// ErrFURLSyntax reports a string that does not have the shape
	// "pb://TUBID@HINTS/NAME" (Foolscap: "unknown FURL prefix"). This
	// includes other schemes such as the historic "pbu://" and an empty
	// NAME.
	ErrFURLSyntax = errors.New("unknown FURL prefix")

	// ErrBadTubID reports a TubID whose first 32 characters are not all in
	// the RFC 4648 base32 alphabet.
	ErrBadTubID = errors.New("not a valid tubid")

	// ErrEmptyHint reports an empty element in the hint list, as in
	// "pb://TUBID@a,,b/NAME" (Foolscap: "no connection hint may be empty").
	ErrEmptyHint = errors.New("no connection hint may be empty")

	// ErrNotUTF8 reports a FURL that is not valid UTF-8. Foolscap handles
	// FURLs as Python text, so such a FURL cannot reach it.
	ErrNotUTF8 = errors.New("not valid UTF-8")
)

// TubIDLen is the number of TubID characters Foolscap pays attention to.
// Anything after them, up to the '@', is ignored ("left for future
// extensions").
const TubIDLen = 32

const furlScheme = "pb://"

// A FURL is a parsed Foolscap FURL, "pb://TUBID@HINT,HINT.../NAME".
//
// The zero FURL is not valid; obtain one with [ParseFURL].
type FURL struct {
	// TubID identifies the server Tub: at most the first [TubIDLen]
	// characters of the FURL's tubid field, exactly as written. Foolscap
	// checks the alphabet case-insensitively but later compares the TubID
	// byte for byte with the lowercase digest of the server certificate,
	// so ParseFURL keeps the case as written rather than folding it: an
	// upper-case TubID parses, as it does in Foolscap, and then fails to
	// match any server, as it does in Foolscap.
	TubID string

	// Hints are the connection hints in FURL order, as written. It is
	// empty, not nil, for "pb://TUBID@/NAME"; such a FURL parses but has
	// nothing to dial (Foolscap's NoLocationHintsError). Use [ParseHint]
	// or [Policy.Decide] to interpret one.
	Hints []string

	// Name is the object name (the "swissnum"), a secret capability. It
	// is non-empty and may contain '/'.
	Name string
}

// A FURLError records a FURL that [ParseFURL] rejected and why.
//
// Its Error method does not print the FURL's NAME, which is a secret
// capability; the FURL field holds the input unchanged.
type FURLError struct {
	FURL string // the input, unredacted
	Err  error  // one of ErrFURLSyntax, ErrBadTubID, ErrEmptyHint, ErrNotUTF8, possibly wrapped
}

func (e *FURLError) Error() string {
	return "hints: parse FURL " + quote(redactFURL(e.FURL)) + ": " + e.Err.Error()
}

// Unwrap returns e.Err.
func (e *FURLError) Unwrap() error { return e.Err }

// ParseFURL parses s the way Foolscap 21.7's decode_furl does:
//
//   - s must match pb://([^@]+)@([^/]*)/(.+)$, where, as with Python's
//     "$", a single trailing "\n" is ignored and NAME cannot otherwise
//     contain a newline. NAME may contain '/'.
//   - Only the first [TubIDLen] characters of the tubid are kept; they must
//     be in the base32 alphabet a-z2-7, checked case-insensitively. A
//     shorter tubid passes the check.
//   - The hints are split on ','. An empty hint list ("pb://T@/N") is
//     valid and yields an empty Hints; an empty element ("a,,b") is an
//     error. Hints are not interpreted here.
//
// Two deliberate differences from Foolscap, which only reject strings
// Foolscap would accept but could never use: Foolscap searches for the
// pattern anywhere in the string, so it accepts text before "pb://"
// ("xpb://..."); ParseFURL requires s to start with "pb://". And s must be
// valid UTF-8 and the kept tubid ASCII (Foolscap's lower-casing would let
// U+212A KELVIN SIGN through as 'k').
//
// Errors are of type *[FURLError].
func ParseFURL(s string) (FURL, error) {
	fail := func(err error) (FURL, error) { return FURL{}, &FURLError{FURL: s, Err: err} }
	if !utf8.ValidString(s) {
		return fail(ErrNotUTF8)
	}
	rest, ok := strings.CutPrefix(s, furlScheme)
	if !ok {
		return fail(ErrFURLSyntax)
	}
	// Python's "$" also matches just before a final newline.
	rest = strings.TrimSuffix(rest, "\n")
	at := strings.IndexByte(rest, '@')
	if at <= 0 { // [^@]+ needs at least one character
		return fail(ErrFURLSyntax)
	}
	tubField, rest := rest[:at], rest[at+1:]
	slash := strings.IndexByte(rest, '/')
	if slash < 0 {
		return fail(ErrFURLSyntax)
	}
	hintField, name := rest[:slash], rest[slash+1:]
	if name == "" || strings.IndexByte(name, '\n') >= 0 { // (.+)$
		return fail(ErrFURLSyntax)
	}

	tubID := tubField
	if len(tubID) > TubIDLen {
		tubID = tubID[:TubIDLen]
	}
	if !isBase32(tubID) {
		return fail(&tubIDError{tubID: tubID})
	}

	hints := []string{}
	if hintField != "" {
		hints = strings.Split(hintField, ",")
		for _, h := range hints {
			if h == "" {
				return fail(ErrEmptyHint)
			}
		}
	}
	return FURL{TubID: tubID, Hints: hints, Name: name}, nil
}

// String returns f in Foolscap's encode_furl form,
// "pb://" + TubID + "@" + strings.Join(Hints, ",") + "/" + Name. For any f
// returned by [ParseFURL], ParseFURL(f.String()) returns f again.
//
// The result contains the secret Name; use [FURL.Redacted] for logs.
func (f FURL) String() string {
	var b strings.Builder
	n := len(furlScheme) + len(f.TubID) + 2 + len(f.Name)
	for _, h := range f.Hints {
		n += len(h) + 1
	}
	b.Grow(n)
	b.WriteString(furlScheme)
	b.WriteString(f.TubID)
	b.WriteByte('@')
	for i, h := range f.Hints {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(h)
	}
	b.WriteByte('/')
	b.WriteString(f.Name)
	return b.String()
}

// Redacted returns f.String() with the Name replaced by "REDACTED", for
// logs and status pages. It shows the TubID and hints, which are not
// secret.
func (f FURL) Redacted() string {
	g := f
	if g.Name != "" {
		g.Name = redacted
	}
	return g.String()
}

// Equal reports whether f and g have the same TubID, hints (in order) and
// Name.
func (f FURL) Equal(g FURL) bool {
	if f.TubID != g.TubID || f.Name != g.Name || len(f.Hints) != len(g.Hints) {
		return false
	}
	for i := range f.Hints {
		if f.Hints[i] != g.Hints[i] {
			return false
		}
	}
	return true
}

const redacted = "REDACTED"

// redactFURL hides everything after the first '/' that follows the first
// '@' after the scheme: where ParseFURL would look for the NAME.
func redactFURL(s string) string {
	start := 0
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + 3
	}
	at := strings.IndexByte(s[start:], '@')
	if at < 0 {
		return s
	}
	at += start
	slash := strings.IndexByte(s[at:], '/')
	if slash < 0 || at+slash+1 == len(s) {
		return s
	}
	return s[:at+slash+1] + redacted
}

// tubIDError names the offending tubid, like Foolscap's
// "'%s' is not a valid tubid".
type tubIDError struct{ tubID string }

func (e *tubIDError) Error() string { return quote(e.tubID) + " is not a valid tubid" }
func (e *tubIDError) Unwrap() error { return ErrBadTubID }

// isBase32 reports whether s consists of RFC 4648 base32 characters in
// either case, like Foolscap's base32.is_base32 restricted to ASCII.
func isBase32(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '2' <= c && c <= '7':
		default:
			return false
		}
	}
	return true
}
