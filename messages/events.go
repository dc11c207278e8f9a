package messages

import "time"

// StateChanged reports one legal state transition of one server.
//
// Sender: the server's child actor, at its single transition point.
// Receiver: subscribers of the broker (Broker.Subscribe). Delivery is
// best-effort: a subscriber that does not keep up loses events rather than
// stalling the broker, so subscribers that need the full picture should
// re-read the broker's status snapshots after a gap.
type StateChanged struct {
	// ServerID is the ServerSpec.ID of the server.
	ServerID string

	// From and To are the states before and after the transition. From may
	// equal To only for WaitingToRetry (a wait re-armed or moved).
	From, To State

	// At is when the transition happened, on the broker's clock.
	At time.Time

	// Seq numbers the events of one server, starting at 1 for each new
	// child (a server whose connection changed starts again at 1). It lets a
	// subscriber notice lost events.
	Seq uint64

	// Reason is the classified cause of a transition into WaitingToRetry
	// ("refused", "timeout", "tubid_mismatch", "panic", …; the broker's
	// metric reason vocabulary), or empty.
	Reason string

	// Err is the error behind Reason, or nil.
	Err error

	// Delay is the backoff delay before the next attempt when To is
	// WaitingToRetry, or zero.
	Delay time.Duration

	// Hint and Handler name the winning connection hint and the handler
	// that reached it ("tcp", "tor", "i2p") when To is Connected.
	Hint, Handler string

	// TubID is the client-side TubID of the identity the server sees (or
	// will see) for this connection, when one exists.
	TubID string
}
