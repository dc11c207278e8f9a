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

	// FURL is the Foolscap URL to connect to, parsed where it entered
	// (a configuration file, an announcement). Its Hints slice is shared
	// and must not be modified.
	FURL hints.FURL

	// NURLs are the server's HTTPS storage NURLs, parsed where the
	// announcement entered the configuration.
	NURLs []hints.NURL

	// BadNURLs are the announced NURLs that did not parse. The Connector
	// reports each among the hints of every attempt, so that status shows
	// them; they are never dialed.
	BadNURLs []BadNURL

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

	// RevealsIP reports whether connecting to this server under its policy
	// can reveal the client's IP address (a direct TCP hint is in use).
	RevealsIP bool

	// Policy decides which handler may dial each of the FURL's hints. The
	// broker passes it to the Connector untouched. Its maps are shared and
	// must not be modified.
	Policy hints.Policy
}

// A BadNURL is an announced NURL that did not parse.
type BadNURL struct {
	NURL   string // the NURL as announced, swissnum redacted; or the announcement field
	Reason string // the parse error
}

// SameConnection reports whether s and o ask for the same connection: the
// same FURL, the same policy, the same protocol and, for "https", the same
// NURLs. The broker diffs on it: a server whose new spec is the same
// connection keeps its child actor, its identity and its live connection;
// any other is torn down and connected afresh with a new identity.
func (s ServerSpec) SameConnection(o ServerSpec) bool {
	return s.FURL.Equal(o.FURL) && s.Policy.Equal(o.Policy) && s.Protocol == o.Protocol &&
		(s.Protocol != "https" || slices.Equal(s.NURLs, o.NURLs))
}

// Clone returns a copy of s whose Announcement map, NURLs, bad NURLs and FURL
// hints are not shared with s. The values inside the map are not copied.
func (s ServerSpec) Clone() ServerSpec {
	s.Announcement = maps.Clone(s.Announcement)
	s.NURLs = slices.Clone(s.NURLs)
	s.BadNURLs = slices.Clone(s.BadNURLs)
	s.FURL.Hints = slices.Clone(s.FURL.Hints)
	return s
}
