package hints

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"syscall"

	"golang.org/x/net/proxy"
)

// DefaultTorSOCKSAddrs are the SOCKS ports tried, in order, when "[tor]
// socks.port" is unset, as Tahoe-LAFS's tor.default_socks() does: the Tor
// daemon's 9050, then the Tor Browser Bundle's 9150.
var DefaultTorSOCKSAddrs = []string{"127.0.0.1:9050", "127.0.0.1:9150"}

// TorIsolationPassword is the SOCKS5 password sent with every isolation
// user name. Tor does not check SOCKS credentials; it only compares them.
const TorIsolationPassword = "tubfarm"

// TorConfig configures a [Tor] transport from tahoe.cfg's [tor] section.
type TorConfig struct {
	// SOCKSPort is "[tor] socks.port": an endpoint string such as
	// "tcp:127.0.0.1:9050" or "127.0.0.1:9050" (see [ParseEndpoint]). Empty
	// means DefaultTorSOCKSAddrs: the first is tried, and the second only
	// when the first refuses the TCP connection.
	SOCKSPort string

	// DisableIsolation turns per-identity stream isolation off: every
	// connection is then made without SOCKS authentication, as Foolscap's
	// Tor handler does, and Tor may put connections to different servers
	// on the same circuit.
	DisableIsolation bool

	// Forward dials the SOCKS port itself. Nil means [DirectTCP](nil).
	Forward DialFunc

	// defaults replaces DefaultTorSOCKSAddrs, for tests.
	defaults []string
}

// Tor dials through a Tor SOCKS5 port. Host names are sent to Tor
// unresolved (SOCKS5 address type DOMAINNAME), so .onion names work and no
// DNS query is made locally; IP literals are sent as addresses.
//
// Unless isolation is disabled, each identity gets its own SOCKS5
// user name and password, derived from an isolation key with
// [Tor.ForIdentity]. Tor's SocksPort flag IsolateSOCKSAuth, on by default,
// never lets streams with different credentials share a circuit, so
// connections made for different server identities leave the Tor network
// from different exits and look unrelated to anyone watching them.
//
// A Tor is safe for concurrent use.
type Tor struct {
	addrs   []string
	isolate bool
	secret  [32]byte
	forward DialFunc
	shared  DialFunc // the unauthenticated dialer, when isolation is off
}

// NewTor returns a Tor transport for cfg. It does not contact Tor. An
// unusable cfg.SOCKSPort fails with an *[EndpointError] naming "[tor]
// socks.port" and the value.
func NewTor(cfg TorConfig) (*Tor, error) {
	t := &Tor{isolate: !cfg.DisableIsolation, forward: cfg.Forward}
	if t.forward == nil {
		t.forward = DirectTCP(nil)
	}
	if cfg.SOCKSPort != "" {
		a, err := ParseEndpoint("[tor] socks.port", cfg.SOCKSPort)
		if err != nil {
			return nil, err
		}
		t.addrs = []string{a}
	} else if cfg.defaults != nil {
		t.addrs = append([]string(nil), cfg.defaults...)
	} else {
		t.addrs = append([]string(nil), DefaultTorSOCKSAddrs...)
	}
	if _, err := rand.Read(t.secret[:]); err != nil {
		return nil, errors.New("hints: Tor isolation secret: " + err.Error())
	}
	if !t.isolate {
		d, err := SOCKS5(t.addrs[0], nil, t.dialProxy)
		if err != nil {
			return nil, err
		}
		t.shared = d
	}
	return t, nil
}

// Addrs returns the SOCKS addresses t dials, in the order it tries them.
func (t *Tor) Addrs() []string { return append([]string(nil), t.addrs...) }

// Isolated reports whether t isolates identities from each other.
func (t *Tor) Isolated() bool { return t.isolate }

// ForIdentity returns the DialFunc for one identity. isolationKey names
// the identity (the broker passes actors.Identity.Key, random per
// identity), so that rotating the identity also moves its streams to new
// circuits. Connections made with the same key share SOCKS credentials;
// different keys never do.
//
// The SOCKS5 user name is the first 32 hex digits of HMAC-SHA256 over
// "tubfarm-isolation\x00" and the key, under a random secret held by t: it
// is stable for the life of t, and reveals nothing about the key. Being hex, it never starts with
// "<torS0X>", the prefix Tor's proposal 351 reserves. The password is
// TorIsolationPassword.
//
// With isolation disabled, the key is ignored and no credentials are sent.
// Calling ForIdentity is cheap; the broker may call it per attempt.
func (t *Tor) ForIdentity(isolationKey string) DialFunc {
	if !t.isolate {
		return t.shared
	}
	d, err := SOCKS5(t.addrs[0], t.isolationAuth(isolationKey), t.dialProxy)
	if err != nil { // cannot happen: the address and credentials were checked
		return func(context.Context, string, string) (net.Conn, error) { return nil, err }
	}
	return d
}

// isolationAuth returns the SOCKS5 credentials for an isolation key.
func (t *Tor) isolationAuth(key string) *proxy.Auth {
	m := hmac.New(sha256.New, t.secret[:])
	m.Write([]byte("tubfarm-isolation\x00"))
	m.Write([]byte(key))
	return &proxy.Auth{User: hex.EncodeToString(m.Sum(nil))[:32], Password: TorIsolationPassword}
}

// dialProxy connects to the SOCKS port, trying the next address only when
// one refuses the connection. The address x/net passes is the first one.
func (t *Tor) dialProxy(ctx context.Context, network, _ string) (net.Conn, error) {
	var errs []error
	for _, a := range t.addrs {
		c, err := t.forward(ctx, network, a)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, &torPortsError{errs: errs}
}

// torPortsError reports that every default SOCKS port refused.
type torPortsError struct{ errs []error }

func (e *torPortsError) Error() string {
	msgs := make([]string, len(e.errs))
	for i, err := range e.errs {
		msgs[i] = err.Error()
	}
	return "no Tor SOCKS port accepted the connection: " + strings.Join(msgs, "; ")
}

func (e *torPortsError) Unwrap() []error { return e.errs }
