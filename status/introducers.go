package status

import (
	"time"

	"github.com/tubfarm/tubfarm/messages"
)

// An IntroducerSource is a [Source] that also knows the node's
// introducers; *tubfarm.Broker is one. The report then has an
// "introducers" array and each server says which introducers announced it.
type IntroducerSource interface {
	// IntroducerStatuses returns a snapshot of every introducer, sorted by
	// petname.
	IntroducerStatuses() []messages.IntroducerStatus
	// AnnouncedBy returns, by server id, the petnames of the introducers
	// that announced it.
	AnnouncedBy() map[string][]string
}

// An Introducer is one introducer of a [Report], like a row of the
// Introducers table of Tahoe-LAFS's Welcome page.
type Introducer struct {
	Petname string `json:"petname"`

	// Connected, State, Since and Summary describe the connection, as for
	// a server; LastReceivedTime is when data last arrived on it.
	Connected        bool       `json:"connected"`
	State            string     `json:"state"`
	Since            *time.Time `json:"since"`
	Summary          string     `json:"summary"`
	LastReceivedTime *time.Time `json:"last_received_time"`

	// Subscribed reports that subscribe_v2 was answered on the live
	// connection; Version is the introducer's application-version; Error
	// says why a connected introducer is not subscribed.
	Subscribed bool   `json:"subscribed"`
	Version    string `json:"version"`
	Error      string `json:"error"`

	// LastAnnouncementTime is when its last announce_v2 call arrived.
	LastAnnouncementTime *time.Time `json:"last_announcement_time"`

	// ClientTubID is the TubID this introducer sees for the node.
	ClientTubID string `json:"client_tubid"`

	// Servers is the number of servers its accepted announcements name.
	Servers       int           `json:"servers"`
	Announcements Announcements `json:"announcements"`
}

// Announcements counts what one introducer sent since the start.
type Announcements struct {
	// Received is every announcement; Accepted those stored (results
	// "accepted" and "superseded"); Rejected those refused (every result
	// but those and "duplicate").
	Received uint64 `json:"received"`
	Accepted uint64 `json:"accepted"`
	Rejected uint64 `json:"rejected"`
	// ByResult counts each result ("accepted", "duplicate",
	// "stale_seqnum", "bad_signature", "unsigned", "wrong_service",
	// "over_limit", "invalid", "superseded").
	ByResult map[string]uint64 `json:"by_result"`
}

// addIntroducers completes r from src.
func addIntroducers(r *Report, src IntroducerSource) {
	r.Introducers = []Introducer{}
	for _, st := range src.IntroducerStatuses() {
		in := Introducer{
			Petname: st.Petname, Connected: st.Connected, State: st.State.String(), Since: timePtr(st.Since),
			Summary: st.Summary, LastReceivedTime: timePtr(st.LastReceived), Subscribed: st.Subscribed,
			Version: st.Version, Error: st.Error, LastAnnouncementTime: timePtr(st.LastAnnouncement),
			ClientTubID: st.ClientTubID, Servers: st.Servers,
			Announcements: Announcements{ByResult: map[string]uint64{}},
		}
		for k, n := range st.Announcements {
			in.Announcements.ByResult[k] = n
			in.Announcements.Received += n
			switch k {
			case "accepted", "superseded":
				in.Announcements.Accepted += n
			case "duplicate":
			default:
				in.Announcements.Rejected += n
			}
		}
		r.Introducers = append(r.Introducers, in)
	}
	by := src.AnnouncedBy()
	for i := range r.Servers {
		if p := by[r.Servers[i].ID]; len(p) > 0 {
			r.Servers[i].Introducers = p
		}
	}
}
