package hints

import (
	"errors"
	"net"
	"strconv"
	"strings"
)

// A Kind is a hint type: the text before the first ':' of a hint, after
// Foolscap's legacy "HOST:PORT" form has been rewritten to "tcp:HOST:PORT".
// Any string is a possible Kind; the constants are the ones Tahoe-LAFS
// knows.
type Kind string

// Hint types understood by Tahoe-LAFS.
const (
	KindTCP Kind = "tcp" // tcp:HOST:PORT, and legacy HOST:PORT
	KindTor Kind = "tor" // tor:HOST:PORT, usually a .onion address
	KindI2P Kind = "i2p" // i2p:ADDR or i2p:ADDR:PORT
)

// Errors wrapped by [HintError] and carried in [Decision.Err]. Test for them
// with [errors.Is].
//
// Every error about a hint wraps ErrBadHint, Foolscap's InvalidHintError,
// and its Error text is then Foolscap's connection status for the hint,
// such as "bad hint: unrecognized TCP hint". Foolscap skips such hints and
// uses the others; only a FURL without any usable hint fails.
var (
	// ErrBadHint is wrapped by every hint error.
	ErrBadHint = errors.New("bad hint")

	// ErrUnknownHintType reports a hint type with no handler at all
	// (Foolscap: "no handler registered"), such as "foo:bar:1" or
	// "unix:/x".
	ErrUnknownHintType = errors.New("no handler registered")

	// ErrHintDisabled reports a known hint type whose handler is disabled or
	// unavailable under a [Policy]. Its text is also Foolscap's "no handler
	// registered": that is what Foolscap shows in this case.
	ErrHintDisabled = errors.New("no handler registered")

	// ErrPortRange reports a port number above 65535. Foolscap accepts any
	// number of digits and fails later, at connect time; this package
	// rejects the hint up front.
	ErrPortRange = errors.New("port out of range")
)

// Foolscap's messages for hints its handlers cannot parse.
var (
	errNoColon      = badHint("no colon")
	errUnrecTCP     = badHint("unrecognized TCP hint")
	errUnrecTor     = badHint("unrecognized TCP/Tor hint")
	errUnrecI2P     = badHint("unrecognized I2P hint")
	errUnknownType  = wrapBad(ErrUnknownHintType)
	errPortTooLarge = wrapBad(ErrPortRange)
)

// hintErr is an error whose text is "bad hint: " + msg and which matches
// ErrBadHint and, optionally, a more specific sentinel.
type hintErr struct {
	msg  string
	kind error // nil, or a sentinel such as ErrUnknownHintType
}

func badHint(msg string) error     { return &hintErr{msg: msg} }
func wrapBad(sentinel error) error { return &hintErr{msg: sentinel.Error(), kind: sentinel} }

func (e *hintErr) Error() string { return ErrBadHint.Error() + ": " + e.msg }

func (e *hintErr) Unwrap() []error {
	if e.kind == nil {
		return []error{ErrBadHint}
	}
	return []error{ErrBadHint, e.kind}
}

// A Hint is one connection hint, parsed with the grammar of the handler for
// its type, as Foolscap 21.7 does.
type Hint struct {
	// Raw is the hint as written in the FURL.
	Raw string

	// Kind is the hint type. A legacy "HOST:PORT" hint has Kind tcp and
	// Legacy set.
	Kind Kind

	// Host is the host to dial, with the brackets of an IPv6 literal
	// removed (it may carry a "%zone"). It is also the value Foolscap
	// sends in the HTTP "Host:" header.
	Host string

	// Port is the port to dial. It is 0 when the hint has none (an i2p
	// hint without ":PORT"). An explicit port 0 also parses, as in
	// Foolscap, and then fails to connect.
	Port int

	// Legacy reports that the hint was written in the old "HOST:PORT"
	// form and rewritten to "tcp:HOST:PORT".
	Legacy bool
}

// A HintError records a hint that [ParseHint] could not parse.
type HintError struct {
	Hint string // the hint as written
	Err  error  // wraps ErrBadHint; its text is Foolscap's status for the hint
}

func (e *HintError) Error() string {
	return "hints: parse hint " + quote(e.Hint) + ": " + e.Err.Error()
}

// Unwrap returns e.Err.
func (e *HintError) Unwrap() error { return e.Err }

// ParseHint parses one connection hint the way Foolscap 21.7 and the
// handlers Tahoe-LAFS installs for "tcp", "tor" and "i2p" hints read it.
//
// First a legacy hint matching ^(DOTTED_QUAD|DNS_NAME):(\d+)$ becomes a tcp
// hint; note that this makes "type:123" a tcp hint for host "type". Then
// the Kind is the text before the first ':', and the rest is checked with
// that kind's grammar:
//
//	tcp  tcp:HOST:PORT  HOST is a DNS name ([A-Za-z0-9.-]+, so no '_'), a
//	                    dotted quad, or a bracketed IPv6 address, which may
//	                    end in a dotted quad or a %zone; "[::1]:1234"
//	                    without "tcp:" is not a valid hint
//	tor  tor:HOST:PORT  HOST is a DNS name or dotted quad
//	i2p  i2p:ADDR[:PORT]
//
// Any other kind fails with ErrUnknownHintType: Foolscap skips such hints,
// so callers should skip them too rather than reject the FURL. As with
// Python's "$", one trailing "\n" is ignored.
//
// Differences from Foolscap: digits must be ASCII (Python's \d also
// accepts other Unicode decimal digits), and a port above 65535 fails with
// ErrPortRange instead of at connect time.
//
// On error the Hint still has Raw, and Kind when one could be determined,
// and the error is a *[HintError].
func ParseHint(raw string) (Hint, error) {
	h, conv, err := classify(raw)
	if err != nil {
		return h, &HintError{Hint: raw, Err: err}
	}
	var g grammar
	switch h.Kind {
	case KindTCP:
		g = grammarTCP
	case KindTor:
		g = grammarTor
	case KindI2P:
		g = grammarI2P
	default:
		return h, &HintError{Hint: raw, Err: errUnknownType}
	}
	if err := g.parse(conv, &h); err != nil {
		return Hint{Raw: raw, Kind: h.Kind, Legacy: h.Legacy}, &HintError{Hint: raw, Err: err}
	}
	return h, nil
}

// Addr returns net.JoinHostPort(h.Host, h.Port), the address to dial. IPv6
// hosts get their brackets back.
func (h Hint) Addr() string { return net.JoinHostPort(h.Host, strconv.Itoa(h.Port)) }

// classify applies Foolscap's convert_legacy_hint and splits off the hint
// type. conv is the hint the handler sees: "tcp:HOST:PORT" for a legacy
// hint (port normalised, as Foolscap's "%d" does), raw otherwise.
func classify(raw string) (h Hint, conv string, err error) {
	h.Raw = raw
	if host, port, ok := matchLegacy(raw); ok {
		h.Kind, h.Legacy = KindTCP, true
		return h, "tcp:" + host + ":" + port, nil
	}
	kind, _, ok := strings.Cut(raw, ":")
	if !ok {
		return h, raw, errNoColon
	}
	h.Kind = Kind(kind)
	return h, raw, nil
}

// matchLegacy matches Foolscap's OLD_STYLE_HINT_RE,
// ^(DOTTED_QUAD|DNS_NAME):(\d+)$. The port is returned without leading
// zeros.
func matchLegacy(s string) (host, port string, ok bool) {
	s = pyEnd(s)
	host, port, ok = strings.Cut(s, ":")
	if !ok || !isDNSName(host) || !isDigits(port) {
		return "", "", false
	}
	return host, trimZeros(port), true
}

// A grammar is how one connection handler parses the hints given to it.
// Which grammar applies depends on the handler, not on the hint type: with
// "[connections] tcp = tor", tcp hints are read by the Tor handler.
type grammar int

const (
	grammarTCP grammar = iota // foolscap/connections/tcp.py NEW_STYLE_HINT_RE
	grammarTor                // foolscap/connections/tor.py HINT_RE
	grammarI2P                // foolscap/connections/i2p.py HINT_RE
)

// parse checks s, the hint after legacy conversion, and fills h.Host and
// h.Port.
func (g grammar) parse(s string, h *Hint) error {
	s = pyEnd(s)
	var host, port string
	switch g {
	case grammarTCP:
		// ^tcp:(DOTTED_QUAD|COLON_HEX|DNS_NAME):(\d+)$
		rest, ok := strings.CutPrefix(s, "tcp:")
		if !ok {
			return errUnrecTCP
		}
		i := strings.LastIndexByte(rest, ':')
		if i < 0 {
			return errUnrecTCP
		}
		host, port = rest[:i], rest[i+1:]
		if !isDigits(port) || !(isDNSName(host) || isColonHex(host)) {
			return errUnrecTCP
		}
		host = strings.TrimRight(strings.TrimLeft(host, "["), "]")
	case grammarTor:
		// ^[^:]*:(DOTTED_QUAD|DNS_NAME):(\d+)$
		_, rest, _ := strings.Cut(s, ":")
		var ok bool
		host, port, ok = strings.Cut(rest, ":")
		if !ok || !isDNSName(host) || !isDigits(port) {
			return errUnrecTor
		}
	case grammarI2P:
		// ^i2p:([A-Za-z.0-9\-]+)(:(\d+))?$
		rest, ok := strings.CutPrefix(s, "i2p:")
		if !ok {
			return errUnrecI2P
		}
		host, port, ok = strings.Cut(rest, ":")
		if !isDNSName(host) || ok && !isDigits(port) {
			return errUnrecI2P
		}
	}
	p := 0
	if port != "" {
		n, err := strconv.ParseUint(trimZeros(port), 10, 16)
		if err != nil {
			return errPortTooLarge
		}
		p = int(n)
	}
	h.Host, h.Port = host, p
	return nil
}

// pyEnd returns s without one trailing newline: Python's "$" (without
// re.MULTILINE) matches at the end of the string and just before a final
// "\n".
func pyEnd(s string) string { return strings.TrimSuffix(s, "\n") }

// isDNSName matches Foolscap's DNS_NAME, [A-Za-z.0-9\-]+. It also covers
// DOTTED_QUAD once digits are restricted to ASCII.
func isDNSName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// isColonHex matches Foolscap's COLON_HEX,
// \[[A-Fa-f0-9:]+(?:DOTTED_QUAD|%[a-zA-Z0-9.]+)?\].
func isColonHex(s string) bool {
	inner, ok := strings.CutPrefix(s, "[")
	if !ok {
		return false
	}
	inner, ok = strings.CutSuffix(inner, "]")
	if !ok {
		return false
	}
	if hex, zone, ok := strings.Cut(inner, "%"); ok {
		return isHexColon(hex) && zone != "" && allBytes(zone, func(c byte) bool { return isAlnum(c) || c == '.' })
	}
	if isHexColon(inner) {
		return true
	}
	// A dotted-quad tail: its first group is the 1-3 digits before the
	// first '.', and the hex part must keep at least one character.
	dot := strings.IndexByte(inner, '.')
	if dot < 0 {
		return false
	}
	for k := 1; k <= 3 && k < dot+1; k++ {
		if isHexColon(inner[:dot-k]) && isDottedQuad(inner[dot-k:]) {
			return true
		}
	}
	return false
}

// isDottedQuad matches Foolscap's DOTTED_QUAD, \d{1,3}(\.\d{1,3}){3}.
func isDottedQuad(s string) bool {
	parts := 0
	for s != "" {
		part, rest, more := strings.Cut(s, ".")
		if len(part) < 1 || len(part) > 3 || !isDigits(part) {
			return false
		}
		parts++
		if !more {
			break
		}
		if rest == "" {
			return false
		}
		s = rest
	}
	return parts == 4
}

func isHexColon(s string) bool {
	return s != "" && allBytes(s, func(c byte) bool {
		return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' || c == ':'
	})
}

func isDigits(s string) bool {
	return s != "" && allBytes(s, func(c byte) bool { return '0' <= c && c <= '9' })
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func allBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// trimZeros removes leading zeros from a non-empty digit string, keeping
// at least one digit.
func trimZeros(s string) string {
	t := strings.TrimLeft(s, "0")
	if t == "" {
		return "0"
	}
	return t
}

func quote(s string) string { return strconv.Quote(s) }
