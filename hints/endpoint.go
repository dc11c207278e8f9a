package hints

import (
	"errors"
	"net"
	"strconv"
	"strings"
)

// ErrUnsupportedEndpoint is wrapped by an [EndpointError] for an endpoint
// type other than tcp, such as "unix:/var/run/tor/socks".
var ErrUnsupportedEndpoint = errors.New("unsupported endpoint type")

// An EndpointError reports a tahoe.cfg endpoint string that
// [ParseEndpoint] cannot use.
type EndpointError struct {
	Field string // the tahoe.cfg key, such as "[tor] socks.port", or ""
	Value string // the endpoint string as written
	Err   error  // what is wrong; may wrap ErrUnsupportedEndpoint
}

func (e *EndpointError) Error() string {
	s := "hints: "
	if e.Field != "" {
		s += e.Field + " "
	}
	return s + quote(e.Value) + ": " + e.Err.Error()
}

// Unwrap returns e.Err.
func (e *EndpointError) Unwrap() error { return e.Err }

// ParseEndpoint turns the client endpoint string of a tahoe.cfg key such
// as "[tor] socks.port" or "[i2p] sam.port" into a "host:port" address to
// dial. field names the key in error messages and may be "".
//
// Accepted forms are Twisted's "tcp:HOST:PORT", its keyword form
// "tcp:host=HOST:port=PORT", and a bare "HOST:PORT" (IPv6 as "[::1]:PORT").
// In the tcp: forms a ':' inside HOST is escaped as "\:", as Twisted
// writes it, or HOST is bracketed. Any other endpoint type, such as
// "unix:PATH" or "tls:...", fails with an *[EndpointError] wrapping
// ErrUnsupportedEndpoint that names the value; Tahoe-LAFS documents only
// tcp: as working for socks.port (ticket #2813).
//
// A host name is kept as written: whoever dials the address resolves it,
// locally. Use an IP literal to keep the node from resolving anything.
func ParseEndpoint(field, s string) (string, error) {
	fail := func(msg string) (string, error) {
		return "", &EndpointError{Field: field, Value: s, Err: errors.New(msg)}
	}
	v := strings.TrimSpace(s)
	if v == "" {
		return fail("empty endpoint (want tcp:HOST:PORT)")
	}
	typ, rest, hasType := splitUnescaped(v)
	if !hasType {
		return fail("missing port (want tcp:HOST:PORT)")
	}
	var host, port string
	switch {
	case strings.EqualFold(typ, "tcp"):
		var err error
		host, port, err = parseTCPEndpoint(rest)
		if err != nil {
			return fail(err.Error())
		}
	case looksLikeHostPort(v):
		h, p, err := net.SplitHostPort(v)
		if err != nil {
			return fail(err.Error())
		}
		host, port = h, p
	default:
		return "", &EndpointError{Field: field, Value: s, Err: &unsupportedEndpointError{typ: typ}}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || !isDigits(port) {
		return fail("bad port " + quote(port) + " (want 1 to 65535)")
	}
	if host == "" {
		return fail("missing host (want tcp:HOST:PORT)")
	}
	return net.JoinHostPort(host, strconv.FormatUint(n, 10)), nil
}

type unsupportedEndpointError struct{ typ string }

func (e *unsupportedEndpointError) Error() string {
	return ErrUnsupportedEndpoint.Error() + " " + quote(e.typ) + " (want tcp:HOST:PORT)"
}
func (e *unsupportedEndpointError) Unwrap() error { return ErrUnsupportedEndpoint }

// looksLikeHostPort reports whether v is a bare HOST:PORT: a bracketed
// IPv6 address with a port, or one colon followed only by digits.
func looksLikeHostPort(v string) bool {
	if strings.HasPrefix(v, "[") {
		return true
	}
	i := strings.LastIndexByte(v, ':')
	return strings.Count(v, ":") == 1 && isDigits(v[i+1:])
}

// parseTCPEndpoint parses what follows "tcp:": "HOST:PORT" or
// "host=HOST:port=PORT" (in any order), with "\:" escapes.
func parseTCPEndpoint(rest string) (host, port string, err error) {
	if strings.HasPrefix(rest, "[") {
		h, p, err := net.SplitHostPort(rest)
		return h, p, err
	}
	var args []string
	for rest != "" {
		a, r, _ := splitUnescaped(rest)
		args = append(args, strings.ReplaceAll(a, `\:`, ":"))
		rest = r
	}
	var pos []string
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		switch {
		case !ok:
			pos = append(pos, a)
		case k == "host":
			host = v
		case k == "port":
			port = v
		case k == "timeout" || k == "bindAddress":
			return "", "", errors.New("tcp endpoint option " + quote(k) + " is not supported")
		default:
			return "", "", errors.New("unknown tcp endpoint option " + quote(k))
		}
	}
	switch {
	case len(pos) == 2 && host == "" && port == "":
		host, port = pos[0], pos[1]
	case len(pos) == 1 && host == "" && port != "":
		host = pos[0]
	case len(pos) == 1 && host != "" && port == "":
		port = pos[0]
	case len(pos) == 0:
	case len(pos) == 1 && host == "" && port == "":
		return "", "", errors.New("missing port (want tcp:HOST:PORT)")
	default:
		return "", "", errors.New("too many fields (want tcp:HOST:PORT)")
	}
	if port == "" {
		return "", "", errors.New("missing port (want tcp:HOST:PORT)")
	}
	return host, port, nil
}

// splitUnescaped splits s at the first ':' not preceded by '\'.
func splitUnescaped(s string) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case ':':
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
