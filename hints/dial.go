package hints

import (
	"context"
	"errors"
	"net"
	"time"

	"golang.org/x/net/proxy"
)

// A DialFunc dials a connection with the signature of
// [net.Dialer.DialContext]. Cancelling ctx, or reaching its deadline, must
// abort the dial.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Dialers maps each handler to the function that dials its hints. A node
// typically has HandlerTCP: [DirectTCP](nil) and, when Tor is enabled,
// HandlerTor: a [SOCKS5] dialer for the Tor SocksPort. It is read-only
// once built and safe for concurrent use.
type Dialers map[Handler]DialFunc

// ErrNoDialer reports a Decision whose handler has no entry in [Dialers].
var ErrNoDialer = errors.New("no dialer for handler")

// ErrNotUsable reports an attempt to dial a Decision that is not Usable.
var ErrNotUsable = errors.New("hint is not usable")

// A DialError reports why [Dialers.Dial] did not start a connection.
type DialError struct {
	Hint    string  // the hint as written
	Handler Handler // the decision's handler, possibly ""
	Err     error   // ErrNoDialer, or ErrNotUsable joined with the decision's error
}

func (e *DialError) Error() string {
	s := "hints: dial " + quote(e.Hint)
	if e.Handler != "" {
		s += " via " + string(e.Handler)
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns e.Err.
func (e *DialError) Unwrap() error { return e.Err }

// Dial dials dec with the DialFunc registered for dec.Handler, network
// "tcp" and address dec.Hint.Addr(). Errors from the DialFunc are returned
// unchanged (typically a *[net.OpError]); a Decision that is not Usable, or
// whose handler has no DialFunc, fails with a *[DialError] without dialing.
func (d Dialers) Dial(ctx context.Context, dec Decision) (net.Conn, error) {
	if !dec.Usable {
		err := ErrNotUsable
		if dec.Err != nil {
			err = &notUsableError{dec.Err}
		}
		return nil, &DialError{Hint: dec.Raw, Handler: dec.Handler, Err: err}
	}
	f := d[dec.Handler]
	if f == nil {
		return nil, &DialError{Hint: dec.Raw, Handler: dec.Handler, Err: ErrNoDialer}
	}
	return f(ctx, "tcp", dec.Hint.Addr())
}

type notUsableError struct{ err error }

func (e *notUsableError) Error() string   { return ErrNotUsable.Error() + ": " + e.err.Error() }
func (e *notUsableError) Unwrap() []error { return []error{ErrNotUsable, e.err} }

// DirectTCP returns d.DialContext: an ordinary TCP connection, with host
// names resolved locally. A nil d means the zero [net.Dialer].
func DirectTCP(d *net.Dialer) DialFunc {
	if d == nil {
		d = new(net.Dialer)
	}
	return d.DialContext
}

// SOCKS5 returns a DialFunc that connects through the SOCKS5 proxy at
// proxyAddr ("host:port"), such as a Tor SocksPort, using
// golang.org/x/net/proxy.
//
// Host names are sent to the proxy unresolved (address type DOMAINNAME),
// so the proxy, not the local resolver, looks them up; .onion names work
// and no DNS query leaks. IP literals are sent as IP addresses.
//
// auth, if non-nil, offers RFC 1929 username/password authentication; Tor
// uses distinct credentials to isolate streams (IsolateSOCKSAuth). The
// user name must be 1 to 255 bytes and the password at most 255 bytes.
// forward dials the proxy itself; nil means [DirectTCP](nil).
//
// The context bounds the whole exchange with the proxy. When the dial
// fails because ctx was cancelled or its deadline passed, the returned
// error also matches ctx's error (context.Canceled or
// context.DeadlineExceeded) under [errors.Is], in addition to the proxy
// library's i/o timeout error.
func SOCKS5(proxyAddr string, auth *proxy.Auth, forward DialFunc) (DialFunc, error) {
	if _, _, err := net.SplitHostPort(proxyAddr); err != nil {
		return nil, errors.New("hints: SOCKS5 proxy address " + quote(proxyAddr) + ": " + err.Error())
	}
	if auth != nil {
		if n := len(auth.User); n < 1 || n > 255 {
			return nil, errors.New("hints: SOCKS5 user name must be 1 to 255 bytes")
		}
		if len(auth.Password) > 255 {
			return nil, errors.New("hints: SOCKS5 password must be at most 255 bytes")
		}
	}
	if forward == nil {
		forward = DirectTCP(nil)
	}
	pd, err := proxy.SOCKS5("tcp", proxyAddr, auth, forwardDialer(forward))
	if err != nil {
		return nil, errors.New("hints: SOCKS5 proxy " + quote(proxyAddr) + ": " + err.Error())
	}
	cd, ok := pd.(proxy.ContextDialer)
	if !ok { // cannot happen with x/net's implementation
		return nil, errors.New("hints: SOCKS5 dialer does not support contexts")
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := cd.DialContext(ctx, network, addr)
		if err != nil {
			return nil, withContextErr(ctx, err)
		}
		return c, nil
	}, nil
}

// forwardDialer adapts a DialFunc to proxy.Dialer and proxy.ContextDialer.
type forwardDialer DialFunc

func (f forwardDialer) Dial(network, addr string) (net.Conn, error) {
	return f(context.Background(), network, addr)
}

func (f forwardDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return f(ctx, network, addr)
}

// withContextErr makes err also match ctx's error when the dial failed
// because of ctx. x/net's SOCKS client enforces ctx by setting deadlines
// on the proxy connection, so it reports "i/o timeout"
// (os.ErrDeadlineExceeded), sometimes before ctx.Err() is even set.
func withContextErr(ctx context.Context, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	cerr := ctx.Err()
	if cerr == nil {
		var ne net.Error
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) && errors.As(err, &ne) && ne.Timeout() {
			cerr = context.DeadlineExceeded
		}
	}
	if cerr == nil {
		return err
	}
	return &ctxError{err: err, ctxErr: cerr}
}

// ctxError is err, additionally matching ctxErr.
type ctxError struct{ err, ctxErr error }

func (e *ctxError) Error() string   { return e.err.Error() }
func (e *ctxError) Unwrap() []error { return []error{e.err, e.ctxErr} }

// Timeout reports true for a deadline, so that net.Error checks keep working.
func (e *ctxError) Timeout() bool { return errors.Is(e.ctxErr, context.DeadlineExceeded) }

// Temporary is part of net.Error; it reports false.
func (e *ctxError) Temporary() bool { return false }
