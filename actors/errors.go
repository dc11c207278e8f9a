package actors

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/tubfarm/tubfarm/messages"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// Errors returned by the [Broker].
var (
	// ErrClosed is returned by a Broker's methods after Close, or after the
	// broker actor stopped for good.
	ErrClosed = errors.New("actors: broker closed")

	// ErrNoConnector is returned by New when Config.Connector is nil.
	ErrNoConnector = errors.New("actors: Config.Connector is nil")
)

// UnknownServerError reports a server ID the broker does not hold.
type UnknownServerError struct {
	ID string
}

func (e *UnknownServerError) Error() string {
	return fmt.Sprintf("actors: unknown server %q", e.ID)
}

// NotConnectedError reports a call to a server that has no live session.
type NotConnectedError struct {
	ID    string
	State messages.State
}

func (e *NotConnectedError) Error() string {
	return fmt.Sprintf("actors: server %q is not connected (state %s)", e.ID, e.State)
}

// SpecError reports an invalid ServerSpec passed to Apply.
type SpecError struct {
	Index int    // position in the slice passed to Apply
	ID    string // the spec's ID
	Msg   string
}

func (e *SpecError) Error() string {
	return fmt.Sprintf("actors: server spec %d (%q): %s", e.Index, e.ID, e.Msg)
}

// TransitionError reports an illegal state transition. It always indicates
// a bug in the broker: the transition is refused, logged and counted in
// tubfarm_illegal_transitions_total.
type TransitionError struct {
	ID       string
	From, To messages.State
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("actors: server %q: illegal transition %s -> %s", e.ID, e.From, e.To)
}

// PanicError carries a panic recovered from a Connector or Session, or from
// a child actor, together with the goroutine's stack.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("actors: panic: %v", e.Value) }

// Reason classifies why a connection attempt failed or a session ended. It
// is the value of the "reason" metric label and of StateChanged.Reason, so
// its set of values is closed.
type Reason string

// The reasons, in snake_case.
const (
	ReasonRefused       Reason = "refused"        // the peer refused the TCP connection (or the proxy did)
	ReasonTimeout       Reason = "timeout"        // the attempt's deadline passed, or an I/O deadline fired
	ReasonCanceled      Reason = "canceled"       // the attempt was cancelled (stop, TryNow)
	ReasonReset         Reason = "reset"          // the connection was reset or closed early (EOF, RST, EPIPE)
	ReasonUnreachable   Reason = "unreachable"    // no route to the network or host
	ReasonDNS           Reason = "dns"            // name resolution failed
	ReasonTLS           Reason = "tls"            // the TLS handshake failed
	ReasonTubIDMismatch Reason = "tubid_mismatch" // the server's certificate does not match the FURL's TubID
	ReasonNegotiation   Reason = "negotiation"    // Foolscap negotiation or getReference failed
	ReasonNoHints       Reason = "no_hints"       // no hint of the FURL can be used under the server's policy
	ReasonProxy         Reason = "proxy"          // the SOCKS proxy (Tor) failed
	ReasonIdentity      Reason = "identity"       // making the ephemeral identity failed
	ReasonPanic         Reason = "panic"          // a bug: the Connector or the child actor panicked
	ReasonOther         Reason = "other"          // anything else
)

// reasons lists every Reason, for zero-initialising metrics.
var reasons = []Reason{
	ReasonRefused, ReasonTimeout, ReasonCanceled, ReasonReset, ReasonUnreachable, ReasonDNS,
	ReasonTLS, ReasonTubIDMismatch, ReasonNegotiation, ReasonNoHints, ReasonProxy, ReasonIdentity,
	ReasonPanic, ReasonOther,
}

// ConnectError lets a [Connector] state the classification of a failure
// itself, when it knows better than the broker's generic rules (a Foolscap
// negotiation failure, a hint no handler accepts). The broker honours it
// before any other rule.
type ConnectError struct {
	// Reason classifies the failure. Empty means: classify Err as usual.
	Reason Reason
	// Permanent marks a failure that retrying soon cannot fix; the broker
	// then waits the backoff's MaxDelay before the next attempt.
	Permanent bool
	// Handler names the handler the failure is attributed to ("tcp",
	// "tor", "i2p"), for metrics. Empty means unattributed.
	Handler string
	// Err is the underlying error.
	Err error
}

func (e *ConnectError) Error() string {
	if e.Err == nil {
		return "actors: connect failed: " + string(e.Reason)
	}
	return e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *ConnectError) Unwrap() error { return e.Err }

// classify is the one place that decides how a failure is named (for
// metrics and events) and whether it is permanent (retried only after the
// backoff's MaxDelay). A wrong TubID is permanent: the server's key will not
// change back by itself, and a legitimate key change arrives as a new
// announcement, hence a new FURL and a new child. It is still retried, at the
// cap, so that a transient interception does not park the server forever;
// TryNow retries it at once.
func classify(err error) (reason Reason, permanent bool) {
	var (
		ce     *ConnectError
		mm     *tubtls.MismatchError
		pe     *PanicError
		dnsErr *net.DNSError
		alert  tls.AlertError
		rhe    tls.RecordHeaderError
		cve    *tls.CertificateVerificationError
		uae    x509.UnknownAuthorityError
		netErr net.Error
	)
	switch {
	case err == nil:
		return "", false
	case errors.As(err, &ce) && ce.Reason != "":
		return ce.Reason, ce.Permanent
	case errors.As(err, &pe):
		return ReasonPanic, false
	case errors.As(err, &mm):
		return ReasonTubIDMismatch, true
	case errors.Is(err, context.Canceled):
		return ReasonCanceled, false
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return ReasonTimeout, false
	case errors.As(err, &dnsErr):
		return ReasonDNS, false
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReasonRefused, false
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return ReasonUnreachable, false
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return ReasonReset, false
	case errors.As(err, &alert), errors.As(err, &rhe), errors.As(err, &cve), errors.As(err, &uae):
		return ReasonTLS, false
	case errors.As(err, &netErr) && netErr.Timeout():
		return ReasonTimeout, false
	}
	return ReasonOther, false
}

// handler label values. Anything else a Connector reports is folded into
// "other" so that the label stays bounded.
const (
	handlerNone  = "none" // failure not attributed to a handler
	handlerOther = "other"
)

var handlers = []string{"tcp", "tor", "i2p", handlerOther, handlerNone}

// handlerLabel maps a handler name to its bounded metric label value.
func handlerLabel(h string) string {
	switch h {
	case "tcp", "tor", "i2p":
		return h
	case "":
		return handlerNone
	}
	return handlerOther
}

// protocolLabel maps a session's protocol to the closed set of the
// protocol label.
func protocolLabel(p string) string {
	if p == "https" {
		return p
	}
	return "foolscap"
}

// failureHandler returns the handler a failure is attributed to.
func failureHandler(err error) string {
	var ce *ConnectError
	if errors.As(err, &ce) {
		return ce.Handler
	}
	return ""
}
