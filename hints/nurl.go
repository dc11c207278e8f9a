package hints

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf8"
)

// ErrNURLSyntax reports a string that is not a NURL of the grammar
// [ParseNURL] accepts.
var ErrNURLSyntax = errors.New("not a storage NURL")

// A NURL locates a Tahoe-LAFS HTTPS storage server:
// "pb://HASH@HOST:PORT/SWISSNUM#v=1", or "pb+tor://..." for one reached
// through Tor. HASH pins the server's certificate; SWISSNUM is the secret
// the client presents in every request.
//
// The zero NURL is not valid; obtain one with [ParseNURL].
type NURL struct {
	// Tor is true for the "pb+tor" scheme: the server must be reached
	// through Tor.
	Tor bool
	// SPKIHash is the unpadded base64url SHA-256 of the server
	// certificate's DER SubjectPublicKeyInfo: 43 characters.
	SPKIHash string
	// Hint is the host and port, as the hint "tcp:HOST:PORT" (or
	// "tor:HOST:PORT" when Tor is set) would give them, so that a
	// [Policy] decides how to dial a NURL as it decides for a FURL hint.
	Hint Hint
	// Swissnum is the storage object's secret name.
	Swissnum string
}

// A NURLError records a NURL that [ParseNURL] rejected and why. Its Error
// method does not print the swissnum.
type NURLError struct {
	NURL string // the input, unredacted
	Msg  string
}

func (e *NURLError) Error() string {
	return "hints: parse NURL " + quote(redactFURL(e.NURL)) + ": " + ErrNURLSyntax.Error() + ": " + e.Msg
}

// Redacted returns the input with its swissnum, if any, replaced, for
// logs and status.
func (e *NURLError) Redacted() string { return redactFURL(e.NURL) }

// Unwrap returns ErrNURLSyntax.
func (e *NURLError) Unwrap() error { return ErrNURLSyntax }

// ParseNURL parses a storage NURL, strictly: scheme "pb" or "pb+tor";
// a HASH of exactly 43 base64url characters that decode to 32 bytes; one
// HOST:PORT (no "tcp:" prefix; a DNS name, dotted quad or bracketed IPv6
// address, and for "pb+tor" a DNS name or dotted quad); a swissnum of 1 to
// 128 lowercase base32 characters; and the fragment exactly "v=1".
func ParseNURL(s string) (NURL, error) {
	fail := func(msg string) (NURL, error) { return NURL{}, &NURLError{NURL: s, Msg: msg} }
	if !utf8.ValidString(s) {
		return fail("not valid UTF-8")
	}
	var n NURL
	rest, ok := strings.CutPrefix(s, "pb://")
	if !ok {
		if rest, ok = strings.CutPrefix(s, "pb+tor://"); !ok {
			return fail(`scheme is not "pb" or "pb+tor"`)
		}
		n.Tor = true
	}
	rest, frag, ok := strings.Cut(rest, "#")
	if !ok || frag != "v=1" {
		return fail(`fragment is not "v=1"`)
	}
	hash, rest, ok := strings.Cut(rest, "@")
	if !ok {
		return fail("no '@'")
	}
	if len(hash) != 43 {
		return fail("certificate hash is not 43 characters")
	}
	if b, err := base64.RawURLEncoding.Strict().DecodeString(hash); err != nil || len(b) != sha256.Size {
		return fail("certificate hash is not unpadded base64url of 32 bytes")
	}
	n.SPKIHash = hash
	hostport, swiss, ok := strings.Cut(rest, "/")
	if !ok {
		return fail("no '/' before the swissnum")
	}
	if swiss == "" || len(swiss) > 128 || !allBytes(swiss, func(c byte) bool { return 'a' <= c && c <= 'z' || '2' <= c && c <= '7' }) {
		return fail("swissnum is not 1 to 128 lowercase base32 characters")
	}
	n.Swissnum = swiss
	if strings.Contains(hostport, ",") || strings.HasPrefix(hostport, "tcp:") || strings.HasPrefix(hostport, "tor:") {
		return fail("not exactly one HOST:PORT")
	}
	kind := "tcp:"
	if n.Tor {
		kind = "tor:"
	}
	h, err := ParseHint(kind + hostport)
	if err != nil || h.Legacy {
		return fail("bad HOST:PORT")
	}
	n.Hint = h
	return n, nil
}

// String returns the NURL in its canonical form; for any n returned by
// [ParseNURL], ParseNURL(n.String()) returns n again. The result contains
// the secret swissnum; use [NURL.Redacted] for logs.
func (n NURL) String() string { return n.format(n.Swissnum) }

// Redacted returns the NURL with the swissnum replaced by "REDACTED".
func (n NURL) Redacted() string { return n.format(redacted) }

func (n NURL) format(swiss string) string {
	scheme := "pb://"
	if n.Tor {
		scheme = "pb+tor://"
	}
	hp := strings.TrimPrefix(strings.TrimPrefix(n.Hint.Raw, "tcp:"), "tor:")
	return scheme + n.SPKIHash + "@" + hp + "/" + swiss + "#v=1"
}

// Addr returns the address to dial, HOST:PORT.
func (n NURL) Addr() string { return n.Hint.Addr() }

// SPKIHash returns the NURL hash of a certificate: unpadded base64url of
// the SHA-256 of its DER SubjectPublicKeyInfo.
func SPKIHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// MatchesCert reports, in constant time, whether cert is the one n pins.
func (n NURL) MatchesCert(cert *x509.Certificate) bool {
	return subtle.ConstantTimeCompare([]byte(SPKIHash(cert)), []byte(n.SPKIHash)) == 1
}

// FormatNURL returns the NURL of a server with the certificate cert,
// reachable at hint ("tcp:HOST:PORT" or "tor:HOST:PORT"), under swissnum.
func FormatNURL(cert *x509.Certificate, hint, swissnum string) (NURL, error) {
	h, err := ParseHint(hint)
	if err != nil {
		return NURL{}, err
	}
	scheme := "pb://"
	if h.Kind == KindTor {
		scheme = "pb+tor://"
	} else if h.Kind != KindTCP {
		return NURL{}, &NURLError{NURL: hint, Msg: "only tcp: and tor: hints have NURLs"}
	}
	hp := strings.TrimPrefix(strings.TrimPrefix(h.Raw, "tcp:"), "tor:")
	return ParseNURL(scheme + SPKIHash(cert) + "@" + hp + "/" + swissnum + "#v=1")
}
