package messages

import (
	"maps"
	"slices"

	"github.com/tubfarm/tubfarm/hints"
)

// ServerSpec describes one storage server the broker should keep a connection
// to. It is the effective, merged entry for that server: whoever builds it
// (a servers.yaml loader, an introducer client) has already resolved
// overrides.
//
// Sender: the embedding application, through the broker's Apply method.
// Receiver: the broker actor, which hands it to the server's child actor.
type ServerSpec struct {
	// ID identifies the server; in Tahoe-LAFS it is the server's "v0-…"
	// key string. It must be non-empty and unique within one Apply.
	ID string

	// Nickname is the human-readable name from the announcement or the
	// configuration. Display only.
	Nickname string

	// FURL is the Foolscap URL to connect to (pb://TUBID@HINTS/SWISSNUM).
	FURL string

	// NURLs are the server's HTTPS storage NURLs, parsed where the
	// announcement entered the configuration.
	NURLs []hints.NURL

	// Protocol is the storage protocol to use: "https" (the server has
	// NURLs and [client] force_foolscap is not set) or "foolscap". The
	// broker passes it to the Connector and shows it in status until a
	// session says which protocol it actually uses.
	Protocol string

	// Announcement is the announcement the server published (or that the
	// configuration supplied in its place). The broker only reads
	// "my-version" from it, as a fallback for the version shown in status.
	Announcement map[string]any

	// Source names where the entry came from ("servers.yaml",
	// "introducer:<petname>", "cache:<petname>", …). Display only.
	Source string

	// Key changes if and only if the effective connection entry (the FURL
	// and the connection policy applied to it) changed. The broker diffs on
	// Key alone: an entry whose Key is unchanged keeps its child actor, its
	// identity and its live connection; an entry whose Key changed is torn
	// down and connected afresh with a new identity.
	Key string

	// RevealsIP reports whether connecting to this server under its policy
	// can reveal the client's IP address (a direct TCP hint is in use).
	RevealsIP bool

	// Policy decides which handler may dial each of the FURL's hints. The
	// broker passes it to the Connector untouched; Key must change when it
	// does. Its maps are shared and must not be modified.
	Policy hints.Policy
}

// Clone returns a copy of s whose Announcement map is not shared with s. The
// values inside the map are not copied.
func (s ServerSpec) Clone() ServerSpec {
	s.Announcement = maps.Clone(s.Announcement)
	s.NURLs = slices.Clone(s.NURLs)
	return s
}
