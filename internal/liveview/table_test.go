package liveview

import (
	"strings"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm/status"
)

func hostileReport() status.Report {
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	return status.Report{
		Generated: now,
		Summary:   "Connected to 1 of 2 known storage servers",
		Servers: []status.Server{
			{ID: "v0-a", Nickname: "\x1b]0;pwned\x07evil\x1b[2J", State: "connected",
				Summary: "Connected to tcp:127.0.0.1:1\r\n fake line via tcp", Version: "tahoe\u202e1.20",
				ConnectedVia: &status.Via{Hint: "tcp:127.0.0.1:1", Handler: "tcp"}, RevealsIP: true,
				ClientTubID: "h47kuvfcpkltx5hiru4x7s7pfakta2pr"},
			{ID: "v0-b", Nickname: strings.Repeat("n", 500), State: "waiting_to_retry", Summary: "Trying to connect"},
		},
	}
}

// TestWriteTableEscapesPeerText checks that nothing a server supplied can
// put a control character on the terminal, and that columns are capped.
func TestWriteTableEscapesPeerText(t *testing.T) {
	for _, colour := range []bool{false, true} {
		var b strings.Builder
		WriteTable(&b, hostileReport(), colour)
		out := b.String()
		clean := out
		if colour {
			for _, c := range stateColour {
				clean = strings.ReplaceAll(clean, c, "")
			}
			clean = strings.ReplaceAll(clean, colourReset, "")
		}
		for _, r := range clean {
			if r != '\n' && (r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == '\u202e') {
				t.Fatalf("colour=%v: table holds %U:\n%q", colour, r, out)
			}
		}
		for _, want := range []string{`\x1b]0;pwned\x07evil`, `\r\n fake line`, `tahoe\u202e1.20`, "tcp (reveals IP)", strings.Repeat("n", maxNickname) + "…"} {
			if !strings.Contains(out, want) {
				t.Errorf("colour=%v: table lacks %q:\n%s", colour, want, out)
			}
		}
		if lines := strings.Count(out, "\n"); lines != 4 {
			t.Errorf("colour=%v: %d lines, want 4 (summary, header, 2 rows):\n%s", colour, lines, out)
		}
	}
}
