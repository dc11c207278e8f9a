package actors

import (
	"context"
	"time"

	"github.com/tubfarm/tubfarm/messages"
)

// A Connector makes connection attempts. The broker calls Connect from a
// goroutine it owns, never from an actor's mailbox, so Connect may block for
// as long as ctx allows. The broker does not import the wire protocol: the
// application supplies a Connector backed by Foolscap (or, in tests, by
// anything else).
type Connector interface {
	// Connect runs one connection attempt to srv under identity id
	// (chosen by the broker for this server according to its
	// IdentityPolicy): id.Key names it to the transports, and
	// id.Certificate makes its certificate; call it only when about to
	// present one, so that an attempt that reaches no server makes no key
	// pair. It tries the server's hints (in parallel or in
	// order, as it likes), reports each hint's progress with
	// report(hint, status) (statuses in Foolscap's words: "connecting",
	// "negotiating", "successful", "connection refused", …), and returns a
	// live Session or an error.
	//
	// ctx bounds the attempt and must be honoured down to the socket: when
	// it is cancelled Connect returns promptly. ctx does not bound the
	// returned Session, which lives until it is closed or lost.
	//
	// Errors are classified by the broker for backoff and metrics (see
	// [ConnectError] to supply the classification explicitly). A panic in
	// Connect is recovered and treated as a panic of the server's child
	// actor.
	Connect(ctx context.Context, srv messages.ServerSpec, id *Identity, report func(hint, status string)) (Session, error)
}

// ConnectorFunc adapts an ordinary function to the [Connector] interface.
type ConnectorFunc func(ctx context.Context, srv messages.ServerSpec, id *Identity, report func(hint, status string)) (Session, error)

// Connect calls f.
func (f ConnectorFunc) Connect(ctx context.Context, srv messages.ServerSpec, id *Identity, report func(hint, status string)) (Session, error) {
	return f(ctx, srv, id, report)
}

// A Session is one live connection to a server, made by a [Connector]. All
// methods must be safe for concurrent use: the broker's users call Call from
// their own goroutines while the broker watches Done.
type Session interface {
	// Call invokes method on the server's root object (the object the
	// FURL's swissnum names) and returns its result. ctx bounds the call.
	Call(ctx context.Context, method string, args []any, kwargs map[string]any) (any, error)

	// Done is closed when the session ends, whether lost or closed.
	Done() <-chan struct{}

	// Err returns why the session ended, once Done is closed; nil before.
	Err() error

	// Close ends the session. It is idempotent and must release every
	// goroutine and socket the session owns before returning.
	Close() error

	// LastReceived returns when data (including keepalives) last arrived.
	LastReceived() time.Time

	// Info describes how the session was established. It does not change
	// over the life of the session.
	Info() SessionInfo
}

// SessionInfo describes how a [Session] was established.
type SessionInfo struct {
	// Protocol is the storage protocol of the session: "foolscap" (also
	// when empty) or "https".
	Protocol string

	// Hint is the connection hint that won (e.g. "tcp:example.org:3456").
	Hint string

	// Handler names the handler that reached Hint: "tcp", "tor" or "i2p".
	// Any other value is reported in metrics as "other".
	Handler string

	// TLSVersion is the negotiated TLS version (tls.VersionTLS13, …).
	TLSVersion uint16

	// PeerTubID is the server's TubID as verified during the handshake.
	PeerTubID string

	// Timings breaks the attempt down by phase. Zero phases were not
	// measured and are not observed in metrics.
	Timings PhaseTimings
}

// PhaseTimings is how long each phase of a successful connection attempt
// took.
type PhaseTimings struct {
	// Dial is the TCP (or SOCKS, for Tor) connection set-up.
	Dial time.Duration
	// Upgrade is Foolscap's plaintext HTTP-like upgrade exchange.
	Upgrade time.Duration
	// TLS is the TLS handshake.
	TLS time.Duration
	// Negotiation is Foolscap's banana negotiation after TLS.
	Negotiation time.Duration
	// GetReference is the getReference call that turns the swissnum into a
	// remote reference.
	GetReference time.Duration
}
