package status

import (
	"crypto/tls"
	"fmt"
	"math/big"
	"sort"
	"time"

	"github.com/tubfarm/tubfarm/actors"
	"github.com/tubfarm/tubfarm/foolscap"
	"github.com/tubfarm/tubfarm/messages"
)

// storageVersionKey is the key of the storage protocol's dictionary in a
// Tahoe-LAFS get_version answer; it holds "available-space".
const storageVersionKey = "http://allmydata.org/tahoe/protocols/storage/v1"

// A Report is a snapshot of every server's connection, as served at
// ?t=json. Its JSON schema is documented in docs/configuration.md ("Status
// JSON"); fields are never removed, only added.
type Report struct {
	// Node is the node's name, from Options.Node ("" if unset).
	Node string `json:"node"`
	// Generated is when the snapshot was taken.
	Generated time.Time `json:"generated"`
	// Summary is Tahoe's Welcome page header, "Connected to N of M known
	// storage servers".
	Summary string `json:"summary"`
	// Connected and Total are N and M of Summary.
	Connected int `json:"connected"`
	Total     int `json:"total"`
	// States counts the servers in each state, every state present (zero
	// included), keyed by the state's name ("connected",
	// "waiting_to_retry", …).
	States map[string]int `json:"states"`
	// Servers are the servers, sorted by ID.
	Servers []Server `json:"servers"`
	// Introducers are the node's introducers, sorted by petname; empty
	// unless the source is an [IntroducerSource].
	Introducers []Introducer `json:"introducers"`
}

// A Server is one server of a [Report]. Times are RFC 3339 in UTC, or null
// when the event never happened; durations are in seconds.
type Server struct {
	// ID is the server id ("v0-…" key or servers.yaml name); Nickname is
	// from its announcement; Source says where the entry came from
	// ("servers.yaml", "introducer:<petname>").
	ID       string `json:"id"`
	Nickname string `json:"nickname"`
	Source   string `json:"source"`
	// Introducers are the petnames of the introducers that announced the
	// server (empty if none did).
	Introducers []string `json:"introducers"`

	// Connected reports whether a live session exists. State is the
	// connection state ("idle", "connecting", "connected",
	// "waiting_to_retry", "stopped") and Since when it was entered.
	Connected bool       `json:"connected"`
	State     string     `json:"state"`
	Since     *time.Time `json:"since"`

	// Summary is Tahoe's one-line connection summary ("Connected to <hint>
	// via <handler>", "Reconnecting in N seconds (last attempt Ms ago)", …).
	Summary string `json:"summary"`

	// Protocol is the storage protocol: "https" or "foolscap".
	Protocol string `json:"protocol"`

	// LastConnectionTime is when the last session was established;
	// LastReceivedTime when data last arrived on the live session.
	LastConnectionTime *time.Time `json:"last_connection_time"`
	LastReceivedTime   *time.Time `json:"last_received_time"`

	// Version is the server's application version; AvailableSpace its
	// advertised free space in bytes, null if it did not say.
	Version        string `json:"version"`
	AvailableSpace *int64 `json:"available_space"`

	// Hints maps each connection hint of the current (or last) attempt to
	// its status in Foolscap's words ("connecting", "successful",
	// "connection refused", …).
	Hints map[string]string `json:"hints"`

	// ConnectedVia names the hint and the handler of the live session;
	// null when not connected.
	ConnectedVia *Via `json:"connected_via"`

	// TLSVersion ("TLS 1.3") and ServerTubID describe the live (or last)
	// session's handshake; "" if there was none.
	TLSVersion  string `json:"tls_version"`
	ServerTubID string `json:"server_tubid"`

	// RevealsIP reports whether connecting to this server under its
	// connection policy can reveal the client's IP address.
	RevealsIP bool `json:"reveals_ip"`

	// BackoffSeconds is the current delay before the next attempt (in
	// waiting_to_retry); LastAttempt and NextAttempt bracket it.
	BackoffSeconds float64    `json:"backoff_seconds"`
	LastAttempt    *time.Time `json:"last_attempt"`
	NextAttempt    *time.Time `json:"next_attempt"`

	// Attempts counts attempts since the last successful connection.
	Attempts int `json:"attempts"`

	// LastFailure is the error of the last failed attempt or lost session
	// and LastFailureReason its class ("refused", "timeout", …); "" if none.
	LastFailure       string `json:"last_failure"`
	LastFailureReason string `json:"last_failure_reason"`

	// ClientTubID is the ephemeral client TubID this server sees (or will
	// see); IdentityCreated when that identity was made and
	// IdentityAgeSeconds its age at Generated.
	ClientTubID        string     `json:"client_tubid"`
	IdentityCreated    *time.Time `json:"identity_created"`
	IdentityAgeSeconds float64    `json:"identity_age_seconds"`

	// Restarts counts restarts of the server's actor after panics.
	Restarts int `json:"restarts"`
}

// Via names the winning hint and the handler that reached it ("tcp", "tor",
// "i2p").
type Via struct {
	Hint    string `json:"hint"`
	Handler string `json:"handler"`
}

// NewReport builds a report from status snapshots at now. node is the
// node's name. The snapshots are not modified.
func NewReport(node string, statuses []actors.Status, now time.Time) Report {
	r := Report{
		Node:        node,
		Generated:   now.UTC(),
		Total:       len(statuses),
		States:      make(map[string]int, messages.NumStates),
		Servers:     make([]Server, 0, len(statuses)),
		Introducers: []Introducer{},
	}
	for s := range messages.NumStates {
		r.States[messages.State(s).String()] = 0
	}
	for _, st := range statuses {
		r.States[st.State.String()]++
		if st.Connected {
			r.Connected++
		}
		r.Servers = append(r.Servers, newServer(st, now))
	}
	sort.SliceStable(r.Servers, func(i, j int) bool { return r.Servers[i].ID < r.Servers[j].ID })
	r.Summary = fmt.Sprintf("Connected to %d of %d known storage servers", r.Connected, r.Total)
	return r
}

func newServer(st actors.Status, now time.Time) Server {
	s := Server{
		Introducers:        []string{},
		ID:                 st.ID,
		Nickname:           st.Nickname,
		Source:             st.Source,
		Connected:          st.Connected,
		State:              st.State.String(),
		Since:              timePtr(st.Since),
		Summary:            st.Summary,
		Protocol:           st.Protocol,
		LastConnectionTime: timePtr(st.LastConnected),
		LastReceivedTime:   timePtr(st.LastReceived),
		Version:            st.Version,
		AvailableSpace:     availableSpace(st.VersionInfo),
		Hints:              make(map[string]string, len(st.Hints)),
		ServerTubID:        st.PeerTubID,
		RevealsIP:          st.RevealsIP,
		BackoffSeconds:     st.Backoff.Seconds(),
		LastAttempt:        timePtr(st.LastAttempt),
		NextAttempt:        timePtr(st.NextAttempt),
		Attempts:           st.Attempts,
		LastFailure:        st.LastFailure,
		LastFailureReason:  string(st.LastFailureReason),
		ClientTubID:        st.TubID,
		IdentityCreated:    timePtr(st.IdentityCreated),
		IdentityAgeSeconds: st.IdentityAge(now).Seconds(),
		Restarts:           st.Restarts,
	}
	for _, h := range st.Hints {
		s.Hints[h.Hint] = h.Status
	}
	if st.TLSVersion != 0 {
		s.TLSVersion = tls.VersionName(st.TLSVersion)
	}
	if st.Connected {
		s.ConnectedVia = &Via{Hint: st.WinningHint, Handler: st.Handler}
	}
	if st.State != actors.WaitingToRetry {
		s.NextAttempt = nil
		s.BackoffSeconds = 0
	}
	return s
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// availableSpace reads "available-space" from a Tahoe-LAFS get_version
// answer, as the Welcome page does; nil if absent or not an integer.
func availableSpace(info any) *int64 {
	d, ok := info.(foolscap.Dict)
	if !ok {
		return nil
	}
	sv, ok := d.GetString(storageVersionKey)
	if !ok {
		return nil
	}
	sd, ok := sv.(foolscap.Dict)
	if !ok {
		return nil
	}
	v, ok := sd.GetString("available-space")
	if !ok {
		return nil
	}
	switch n := v.(type) {
	case int64:
		return &n
	case *big.Int:
		if n.IsInt64() {
			x := n.Int64()
			return &x
		}
	}
	return nil
}
