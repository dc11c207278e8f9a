package messages

import "time"

// IntroducerStatus is a snapshot of one introducer: its connection, in the
// words of a server's status, and what it announced.
type IntroducerStatus struct {
	// Petname names the introducer (private/introducers.yaml, or
	// "default" for tahoe.cfg's introducer.furl).
	Petname string

	// State, Since, Connected and Summary describe the connection, as for
	// a storage server; LastReceived is when data last arrived on it.
	State        State
	Since        time.Time
	Connected    bool
	Summary      string
	LastReceived time.Time

	// ClientTubID is the TubID the introducer sees for this client (the
	// identity of the current or last attempt).
	ClientTubID string

	// Subscribed reports that subscribe_v2 was answered on the live
	// connection; Version is the introducer's application-version and
	// Error why it is connected but not subscribed ("" if it is).
	Subscribed bool
	Version    string
	Error      string

	// LastAnnouncement is when the last announce_v2 call arrived; zero if
	// none since the start.
	LastAnnouncement time.Time

	// Servers is the number of servers this introducer's accepted
	// announcements name; Announcements counts every announcement received
	// since the start, by result ("accepted", "duplicate", "stale_seqnum",
	// "bad_signature", "unsigned", "wrong_service", "over_limit",
	// "invalid").
	Servers       int
	Announcements map[string]uint64
}
