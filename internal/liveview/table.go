package liveview

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/tubfarm/tubfarm/internal/termsafe"
	"github.com/tubfarm/tubfarm/status"
)

// ANSI colours of the state column on a terminal. Every colour sequence has
// the same length, so tabwriter still aligns the columns.
var stateColour = map[string]string{
	"connected":        "\x1b[32m", // green
	"connecting":       "\x1b[36m", // cyan
	"waiting_to_retry": "\x1b[33m", // yellow
	"stopped":          "\x1b[31m", // red
	"idle":             "\x1b[37m", // grey
}

const colourReset = "\x1b[0m"

// Column caps, in runes, for text a server supplies.
const (
	maxNickname = 24
	maxSummary  = 60
	maxVersion  = 32
)

// WriteTable prints the report as a table: a summary line, then one row per
// server sorted by nickname. colour adds ANSI colours (terminals only).
// Text that came from a server (nickname, version, hints in the summary) is
// escaped and clipped with termsafe.
func WriteTable(w io.Writer, r status.Report, colour bool) {
	fmt.Fprintf(w, "%s\n", r.Summary)
	if len(r.Servers) == 0 {
		fmt.Fprintf(w, "  (no storage servers)\n")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NICKNAME\tSTATE\tCONNECTION\tLAST RX\tVERSION\tVIA\tRETRY\tCLIENT TUBID")
	for _, s := range byNickname(r.Servers) {
		state := s.State
		if colour {
			c, ok := stateColour[state]
			if !ok {
				c = stateColour["idle"]
			}
			state = c + state + colourReset
		}
		via := "-"
		if s.ConnectedVia != nil {
			via = termsafe.Clip(s.ConnectedVia.Handler, 8)
			if s.RevealsIP && s.ConnectedVia.Handler == "tcp" {
				via += " (reveals IP)"
			}
		}
		retry := "-"
		if s.NextAttempt != nil {
			retry = "in " + status.Human(s.NextAttempt.Sub(r.Generated))
		}
		if s.Attempts > 0 {
			retry += fmt.Sprintf(" (%d tried)", s.Attempts)
		}
		rx := "N/A"
		if s.LastReceivedTime != nil {
			rx = status.Human(r.Generated.Sub(*s.LastReceivedTime)) + " ago"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			orDash(termsafe.Clip(s.Nickname, maxNickname)), state, termsafe.Clip(s.Summary, maxSummary), rx,
			orDash(termsafe.Clip(s.Version, maxVersion)), via, retry, clientID(s.ClientTubID, s.IdentityAgeSeconds))
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clientID(tubid string, age float64) string {
	if tubid == "" {
		return "-"
	}
	return ShortID(tubid) + " (" + status.Human(time.Duration(age*float64(time.Second))) + " old)"
}

// ShortID abbreviates a TubID for people: its first 8 characters and "…".
func ShortID(tubid string) string {
	if tubid == "" {
		return "(none)"
	}
	if len(tubid) > 8 {
		return termsafe.Clip(tubid[:8], 8) + "…"
	}
	return termsafe.Clip(tubid, 8)
}

// byNickname returns the servers sorted by nickname, then ID, for people.
func byNickname(servers []status.Server) []status.Server {
	out := slices.Clone(servers)
	slices.SortStableFunc(out, func(a, b status.Server) int {
		return cmp.Or(cmp.Compare(a.Nickname, b.Nickname), cmp.Compare(a.ID, b.ID))
	})
	return out
}
