package hints

import (
	"errors"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// A Handler names who dials a hint: direct TCP, the Tor SOCKS proxy, or
// I2P. HandlerDisabled installs no handler, so hints of that type are
// skipped.
type Handler string

// Handler names, as written in tahoe.cfg "[connections] tcp =" and in a
// servers.yaml "connections:" mapping.
const (
	HandlerTCP      Handler = "tcp"
	HandlerTor      Handler = "tor"
	HandlerI2P      Handler = "i2p"
	HandlerDisabled Handler = "disabled"
)

// ErrUnknownHandler is wrapped by errors for a handler name other than tcp,
// tor, i2p or disabled.
var ErrUnknownHandler = errors.New("unknown handler type")

// ErrHandlerUnavailable reports "[connections] tcp = tor" while the Tor
// handler is turned off ("[tor] enabled = false"). Tahoe-LAFS refuses to
// start in this case ("uses unavailable/unimportable handler type").
var ErrHandlerUnavailable = errors.New("unavailable handler type")

// ParseHandler parses a handler name. Like Tahoe-LAFS it lower-cases s and
// ignores surrounding spaces. Unknown names fail with an error that wraps
// ErrUnknownHandler and quotes s.
func ParseHandler(s string) (Handler, error) {
	switch h := Handler(strings.ToLower(strings.TrimSpace(s))); h {
	case HandlerTCP, HandlerTor, HandlerI2P, HandlerDisabled:
		return h, nil
	}
	return "", &handlerError{name: s}
}

type handlerError struct{ name string }

func (e *handlerError) Error() string {
	return "hints: unknown handler type " + quote(e.name) + " (want tcp, tor, i2p or disabled)"
}
func (e *handlerError) Unwrap() error { return ErrUnknownHandler }

// privacyMsg is Tahoe-LAFS's PrivacyError text (allmydata/node.py,
// create_default_connection_handlers).
const privacyMsg = "Privacy requested with `reveal-IP-address = false` but `tcp = tcp` conflicts with this."

// A PrivacyError reports a node-wide configuration that would reveal the
// client's IP address although "[node] reveal-IP-address = false", as
// Tahoe-LAFS's PrivacyError does.
type PrivacyError struct {
	// Msg is Tahoe-LAFS's wording of the conflict.
	Msg string
}

func (e *PrivacyError) Error() string { return "hints: " + e.Msg }

// An OverrideError reports an invalid entry of a per-server "connections:"
// override. Key and Value are the entry as written.
type OverrideError struct {
	Key, Value string
	Err        error // ErrUnknownHintType or ErrUnknownHandler
}

func (e *OverrideError) Error() string {
	if errors.Is(e.Err, ErrUnknownHintType) {
		return "hints: connections override: unknown hint type " + quote(e.Key) + " (want tcp, tor or i2p)"
	}
	return "hints: connections override " + quote(e.Key) + ": unknown handler type " + quote(e.Value) +
		" (want tcp, tor, i2p or disabled)"
}

// Unwrap returns e.Err.
func (e *OverrideError) Unwrap() error { return e.Err }

// A Policy says which handler dials each hint type for one server. It is
// built from the node's tahoe.cfg with [NewPolicy] and then, for a server
// listed in servers.yaml, refined with [Policy.WithOverride].
//
// A Policy is a value: methods never modify the receiver's maps, so one
// node-wide Policy can be shared by all servers and goroutines. The zero
// Policy has no handlers and so makes every hint unusable.
type Policy struct {
	// Handlers maps each known hint type to its handler: tcp to the
	// "[connections] tcp" value, tor to tor and i2p to i2p, then the
	// per-server override on top. A type missing from the map has no
	// handler.
	Handlers map[Kind]Handler

	// RevealIP is "[node] reveal-IP-address". It only vetoes node-wide
	// configuration in NewPolicy; per-server overrides may still choose
	// direct TCP, which [Decision.RevealsIP] then reports.
	RevealIP bool

	// Available records the handlers the node has: tcp always, tor when
	// "[tor] enabled" is true, i2p when "[i2p] enabled" is true. Hints whose
	// handler is unavailable are skipped, as in Tahoe-LAFS.
	Available map[Handler]bool

	// Overridden records which hint types got their handler from a
	// per-server override.
	Overridden map[Kind]bool
}

// NewPolicy returns the node-wide Policy for tahoe.cfg's "[connections] tcp
// = tcp", "[node] reveal-IP-address", "[tor] enabled" and "[i2p] enabled".
//
// tcp must be HandlerTCP, HandlerTor or HandlerDisabled; HandlerI2P is
// invalid, as in Tahoe-LAFS, because I2P cannot reach ordinary TCP
// addresses. tcp = tor with Tor disabled fails with ErrHandlerUnavailable.
// revealIP = false with tcp = tcp fails with a *[PrivacyError] carrying
// Tahoe-LAFS's message.
func NewPolicy(tcp Handler, revealIP bool, torEnabled, i2pEnabled bool) (Policy, error) {
	switch tcp {
	case HandlerTCP, HandlerTor, HandlerDisabled:
	case HandlerI2P:
		return Policy{}, errors.New(`hints: [connections] tcp = i2p is not supported: I2P cannot reach TCP addresses (want tcp, tor or disabled)`)
	default:
		return Policy{}, &handlerError{name: string(tcp)}
	}
	if tcp == HandlerTor && !torEnabled {
		return Policy{}, &unavailableError{}
	}
	if !revealIP && tcp == HandlerTCP {
		return Policy{}, &PrivacyError{Msg: privacyMsg}
	}
	return Policy{
		Handlers:   map[Kind]Handler{KindTCP: tcp, KindTor: HandlerTor, KindI2P: HandlerI2P},
		RevealIP:   revealIP,
		Available:  map[Handler]bool{HandlerTCP: true, HandlerTor: torEnabled, HandlerI2P: i2pEnabled},
		Overridden: map[Kind]bool{},
	}, nil
}

type unavailableError struct{}

func (*unavailableError) Error() string {
	return `hints: [connections] tcp = tor uses unavailable handler type "tor": [tor] enabled = false`
}
func (*unavailableError) Unwrap() error { return ErrHandlerUnavailable }

// WithOverride returns a copy of p with a servers.yaml "connections:"
// mapping (hint type to handler name) applied on top, as Tahoe-LAFS's
// create_tub does with dict.update. p is not modified.
//
// Unlike Tahoe-LAFS, which silently ignores bad entries, WithOverride
// rejects keys other than tcp, tor and i2p and values other than tcp, tor,
// i2p and disabled (lower-cased, see [ParseHandler]) with an
// *[OverrideError]; with several bad entries it reports the first in key
// order. Like Tahoe-LAFS it does not apply the reveal-IP-address veto: a
// "tcp: tcp" override for a LAN server is the documented "Tor-mostly
// client" setup, and the resulting decisions have RevealsIP set. A handler
// the node does not have (tor with "[tor] enabled = false") is accepted;
// its hints are then skipped.
func (p Policy) WithOverride(conns map[string]string) (Policy, error) {
	keys := make([]string, 0, len(conns))
	for k := range conns {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	q := Policy{
		Handlers:   cloneMap(p.Handlers),
		RevealIP:   p.RevealIP,
		Available:  cloneMap(p.Available),
		Overridden: cloneMap(p.Overridden),
	}
	for _, k := range keys {
		v := conns[k]
		switch Kind(k) {
		case KindTCP, KindTor, KindI2P:
		default:
			return Policy{}, &OverrideError{Key: k, Value: v, Err: ErrUnknownHintType}
		}
		h, err := ParseHandler(v)
		if err != nil {
			return Policy{}, &OverrideError{Key: k, Value: v, Err: ErrUnknownHandler}
		}
		q.Handlers[Kind(k)] = h
		q.Overridden[Kind(k)] = true
	}
	return q, nil
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	c := make(map[K]V, len(m)+3)
	for k, v := range m {
		c[k] = v
	}
	return c
}

// RevealsIP reports whether p would dial some hint type directly over TCP,
// showing the client's IP address to the server and to the network.
func (p Policy) RevealsIP() bool {
	if !p.Available[HandlerTCP] {
		return false
	}
	for _, h := range p.Handlers {
		if h == HandlerTCP {
			return true
		}
	}
	return false
}

// A Decision is what a [Policy] makes of one hint.
type Decision struct {
	// Hint is the parsed hint. When Usable, Host and Port are as the
	// chosen handler's grammar read them; otherwise it is what ParseHint
	// returned, which may hold only Raw and Kind.
	Hint Hint

	// Raw is the hint as written in the FURL.
	Raw string

	// Handler is the handler that examined the hint, as in Tahoe-LAFS's
	// "<hint> via <handler>", or "" if no handler is installed for its type.
	// A non-empty Handler does not imply Usable: the Tor handler, for
	// example, refuses private IP addresses.
	Handler Handler

	// Usable reports that Handler can dial the hint.
	Usable bool

	// Status is empty when Usable. Otherwise it is Foolscap's connection
	// status for the hint, "bad hint: " + reason, such as "bad hint: no
	// handler registered", "bad hint: unrecognized TCP hint" or "bad hint:
	// ignoring non-Tor-able ipaddr 10.0.0.1", possibly followed by a
	// parenthesised explanation of which setting disabled the hint type.
	Status string

	// Err is nil when Usable, else an error wrapping ErrBadHint and, where
	// it applies, ErrUnknownHintType, ErrHintDisabled or ErrPortRange.
	Err error

	// RevealsIP reports that dialing would connect directly over TCP
	// (Usable and Handler == HandlerTCP), showing the client's IP address.
	RevealsIP bool
}

// String returns "<hint> via <handler>: <status>", the way Tahoe-LAFS
// lists hints on its welcome page, or "<hint> via <handler>" when usable.
func (d Decision) String() string {
	s := d.Raw
	if d.Handler != "" {
		s += " via " + string(d.Handler)
	}
	if d.Status != "" {
		s += ": " + d.Status
	}
	return s
}

// Decide decides whether and how to dial the hint raw under p, the way a
// Foolscap Tub with Tahoe-LAFS's handlers would: legacy conversion, then
// the handler registered for the hint type, then that handler's grammar
// (with "[connections] tcp = tor", tcp hints are read by the Tor handler,
// which accepts no IPv6 literals). The Tor handler also refuses IP
// literals no Tor exit could reach: IPv6, and IPv4 that Python's
// ipaddress calls private, loopback, multicast, reserved or unspecified.
// Host names pass unresolved.
func (p Policy) Decide(raw string) Decision {
	d := Decision{Raw: raw}
	h, conv, err := classify(raw)
	if err != nil {
		return d.fail(h, err)
	}
	handler, ok := p.Handlers[h.Kind]
	switch {
	case !ok:
		return d.fail(h, errUnknownType)
	case handler == HandlerDisabled:
		return d.fail(h, &disabledError{why: p.disabledWhy(h.Kind)})
	}
	var g grammar
	switch handler {
	case HandlerTCP:
		g = grammarTCP
	case HandlerTor:
		g = grammarTor
	case HandlerI2P:
		g = grammarI2P
	default: // only in a hand-built Policy
		return d.fail(h, errUnknownType)
	}
	if !p.Available[handler] {
		return d.fail(h, &disabledError{why: string(handler) + " is not enabled: [" + string(handler) + "] enabled = false"})
	}
	d.Handler = handler
	parsed := h
	if err := g.parse(conv, &parsed); err != nil {
		return d.fail(h, err)
	}
	if handler == HandlerTor && !torable(parsed.Host) {
		return d.fail(parsed, badHint("ignoring non-Tor-able ipaddr "+parsed.Host))
	}
	d.Hint, d.Usable, d.RevealsIP = parsed, true, handler == HandlerTCP
	return d
}

// fail fills in an unusable decision. h is the best parse available.
func (d Decision) fail(h Hint, err error) Decision {
	if full, perr := ParseHint(d.Raw); perr == nil {
		h = full
	}
	d.Hint, d.Err, d.Status = h, err, err.Error()
	return d
}

func (p Policy) disabledWhy(k Kind) string {
	if p.Overridden[k] {
		return string(k) + " hints disabled by connections override " + string(k) + ": disabled"
	}
	return string(k) + " hints disabled by [connections] " + string(k) + " = disabled"
}

// disabledError is Foolscap's "no handler registered" with an explanation.
type disabledError struct{ why string }

func (e *disabledError) Error() string {
	return ErrBadHint.Error() + ": " + ErrHintDisabled.Error() + " (" + e.why + ")"
}
func (e *disabledError) Unwrap() []error { return []error{ErrBadHint, ErrHintDisabled} }

// DecideFURL decides every hint of f, in FURL order. A hint string that
// appears more than once is decided once, at its first position, as
// Foolscap tries each distinct hint string once.
func (p Policy) DecideFURL(f FURL) []Decision {
	out := make([]Decision, 0, len(f.Hints))
	for i, raw := range f.Hints {
		if slices.Contains(f.Hints[:i], raw) {
			continue
		}
		out = append(out, p.Decide(raw))
	}
	return out
}

// torable reports whether Foolscap's Tor handler would pass host to Tor
// (foolscap/connections/tor.py is_non_public_numeric_address): any host
// name, and IPv4 addresses that are not private, loopback, multicast,
// reserved or unspecified by the rules of Python's ipaddress module (as in
// Debian's Python 3.11). IPv6 literals are refused. Like Python, netip
// rejects IPv4 with leading zeros, so such a "name" goes to Tor as is.
func torable(host string) bool {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return true
	}
	if !a.Is4() {
		return false
	}
	if a.IsLoopback() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, n := range pyPrivate4 {
		if n.Contains(a) {
			return slices.Contains(pyPrivate4Except, a)
		}
	}
	return true
}

// pyPrivate4 is Python ipaddress's _IPv4Constants._private_networks; it
// contains the reserved network 240.0.0.0/4 and, with the checks above,
// covers is_private, is_reserved, is_loopback and is_unspecified.
var pyPrivate4 = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.0.170/31"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("255.255.255.255/32"),
}

// pyPrivate4Except is _IPv4Constants._private_networks_exceptions.
var pyPrivate4Except = []netip.Addr{
	netip.MustParseAddr("192.0.0.9"),
	netip.MustParseAddr("192.0.0.10"),
}

// Equal reports whether p and q are the same policy: the same handler for
// each hint type, the same available handlers, the same hint types
// overridden and the same reveal-IP-address. A nil map equals an empty one.
func (p Policy) Equal(q Policy) bool {
	return p.RevealIP == q.RevealIP && maps.Equal(p.Handlers, q.Handlers) &&
		sameTrue(p.Available, q.Available) && sameTrue(p.Overridden, q.Overridden)
}

// sameTrue reports whether a and b hold true for the same keys.
func sameTrue[K comparable](a, b map[K]bool) bool {
	for k, v := range a {
		if v != b[k] {
			return false
		}
	}
	for k, v := range b {
		if v != a[k] {
			return false
		}
	}
	return true
}
