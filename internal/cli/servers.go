package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/internal/termsafe"
)

var serversCmd = &command{
	name:    "servers",
	args:    "[--json]",
	summary: "List the merged server map: every server the introducers' caches and servers.yaml define, where each part came from, and how each hint would be dialled.",
	example: "  tubfarm servers -d ~/.tahoe\n  tubfarm servers --json | jq '.servers[] | select(.reveals_ip)'",
	nodeDir: true,
	setFlags: func(fs *flag.FlagSet, c *cmdContext) {
		fs.BoolVar(&c.json, "json", false, "print JSON (see docs/cli.md) instead of a table")
	},
	run: runServers,
}

// loadNode reads the node directory without writing anything (node.pem is
// not created).
func loadNode(dir string) (*config.Node, error) {
	if err := config.CheckNodeDir(dir); err != nil {
		return nil, err
	}
	return config.Load(dir)
}

// serverView is one server of the merged map, as servers prints it.
type serverView struct {
	ID       string `json:"id"`
	Nickname string `json:"nickname"`
	TubID    string `json:"tubid"`
	// Source is "servers.yaml" or "introducer:PETNAME" (the announcement
	// in use).
	Source string `json:"source"`
	// ServersYAML locates the servers.yaml entry, if any.
	ServersYAML *fileLine `json:"servers_yaml"`
	// Announcements lists every introducer cache that holds this server.
	Announcements []announcementView `json:"announcements"`
	// Disagree names the announcement fields the introducers' copies
	// differ in (seqnum and nonce aside); empty if they agree.
	Disagree    []string          `json:"disagree"`
	Connections map[string]string `json:"connections"`
	Hints       []hintView        `json:"hints"`
	RevealsIP   bool              `json:"reveals_ip"`
	HTTPS       bool              `json:"https_announced"`
	// Protocol is the storage protocol the broker uses: "https" when the
	// announcement has usable NURLs (and [client] force_foolscap is not
	// set), as Tahoe 1.19+ does, else "foolscap".
	Protocol string `json:"protocol"`
	// NURLHints are the NURLs' locations, decided like FURL hints.
	NURLHints []hintView `json:"nurl_hints"`
}

type fileLine struct {
	Path string `json:"path"`
	Line int    `json:"line"`
}

type announcementView struct {
	Introducer string   `json:"introducer"`
	Path       string   `json:"path"`
	Line       int      `json:"line"`
	Seqnum     *int64   `json:"seqnum"`
	Nickname   string   `json:"nickname"`
	Hints      []string `json:"hints"`
	Verified   bool     `json:"verified"`
	Used       bool     `json:"used"`
}

type hintView struct {
	Hint      string `json:"hint"`
	Handler   string `json:"handler"` // "" when no handler would take it
	Usable    bool   `json:"usable"`
	Status    string `json:"status"` // why not usable
	RevealsIP bool   `json:"reveals_ip"`
}

const fieldNURLs = "anonymous-storage-NURLs"

// viewServers builds the views of every server of n's map.
func viewServers(n *config.Node) []serverView {
	byKey := map[string][]config.Announced{}
	for _, a := range n.Announced() {
		if a.Announcement.ServiceName == "storage" {
			byKey[a.Key] = append(byKey[a.Key], a)
		}
	}
	var out []serverView
	for e := range n.Map.All() {
		v := serverView{ID: e.ID, Nickname: e.Nickname, TubID: e.FURL.TubID, Connections: e.Connections,
			RevealsIP: e.Policy.RevealsIP(), Announcements: []announcementView{}, Disagree: []string{}}
		if v.Connections == nil {
			v.Connections = map[string]string{}
		}
		if e.Source.Static {
			v.Source = "servers.yaml"
			v.ServersYAML = &fileLine{Path: e.Source.Path, Line: e.Source.Line}
		} else {
			v.Source = "introducer:" + e.Source.Chosen
		}
		if nurls, ok := e.Announcement.Field(fieldNURLs); ok {
			if l, ok := nurls.([]any); ok && len(l) > 0 {
				v.HTTPS = true
			}
		}
		for _, a := range byKey[e.ID] {
			av := announcementView{Introducer: a.Introducer, Path: a.Path, Line: a.Line, Nickname: a.Announcement.Nickname,
				Verified: a.Verified, Used: !e.Source.Static && a.Introducer == e.Source.Chosen, Hints: []string{}}
			if a.Announcement.HasSeqnum {
				s := a.Announcement.Seqnum
				av.Seqnum = &s
			}
			if f, err := hints.ParseFURL(a.Announcement.FURL); err == nil {
				av.Hints = f.Hints
			}
			v.Announcements = append(v.Announcements, av)
		}
		v.Disagree = disagreement(byKey[e.ID])
		for _, d := range e.Policy.DecideFURL(e.FURL) {
			v.Hints = append(v.Hints, newHintView(d))
		}
		v.Protocol, v.NURLHints = "foolscap", []hintView{}
		if len(e.NURLs) > 0 && !n.Config.ForceFoolscap {
			v.Protocol = "https"
		}
		for _, u := range e.NURLs {
			v.NURLHints = append(v.NURLHints, newHintView(e.Policy.Decide(u.Hint.Raw)))
		}
		out = append(out, v)
	}
	return out
}

func newHintView(d hints.Decision) hintView {
	return hintView{Hint: d.Raw, Handler: string(d.Handler), Usable: d.Usable, Status: d.Status, RevealsIP: d.RevealsIP}
}

// disagreement names the fields in which the announcements of one server
// by different introducers differ, ignoring seqnum and nonce (which each
// publication changes).
func disagreement(anns []config.Announced) []string {
	diff := map[string]bool{}
	for i := 1; i < len(anns); i++ {
		a, b := anns[0].Announcement.Fields(), anns[i].Announcement.Fields()
		for _, k := range append(slices.Collect(maps.Keys(a)), slices.Collect(maps.Keys(b))...) {
			if k == config.FieldSeqnum || k == config.FieldNonce {
				continue
			}
			av, aok := a[k]
			bv, bok := b[k]
			if aok != bok || !jsonEqual(av, bv) {
				diff[k] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(diff))
}

func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

func runServers(_ context.Context, c *cmdContext) int {
	n, err := loadNode(c.dir)
	if err != nil {
		return c.fail("%s", termsafe.Error(err))
	}
	views := viewServers(n)
	if c.json {
		if views == nil {
			views = []serverView{}
		}
		warnings := []string{}
		for _, w := range n.Warnings {
			warnings = append(warnings, w.Error())
		}
		if err := writeJSON(c.stdout, struct {
			NodeDir  string       `json:"node_dir"`
			Servers  []serverView `json:"servers"`
			Warnings []string     `json:"warnings"`
		}{c.dir, views, warnings}); err != nil {
			return c.fail("%v", err)
		}
		return ExitOK
	}
	writeServers(c.stdout, n, views)
	return ExitOK
}

// writeServers prints the server map for people: one block per server, its
// hints indented under it, aligned across servers.
func writeServers(w io.Writer, n *config.Node, views []serverView) {
	policy := "tcp hints: " + string(n.Config.TCP)
	if !n.Config.RevealIP {
		policy += ", reveal-IP-address = false"
	}
	fmt.Fprintf(w, "%d storage servers in %s (%s)\n", len(views), n.Dir, policy)
	if len(views) == 0 {
		return
	}
	rows := [][]string{{"ID", "NICKNAME", "SOURCE", "REVEALS IP", "NOTES"}}
	var hintRows [][][]string
	for _, v := range views {
		src := v.Source
		if v.ServersYAML != nil {
			src = fmt.Sprintf("servers.yaml:%d", v.ServersYAML.Line)
		}
		var intros []string
		for _, a := range v.Announcements {
			name := a.Introducer
			if a.Used {
				name += "*"
			}
			intros = append(intros, name)
		}
		if len(intros) > 0 {
			src += " (announced by " + strings.Join(intros, ", ") + ")"
		}
		var notes []string
		if len(v.Disagree) > 0 {
			notes = append(notes, "introducers disagree on "+strings.Join(v.Disagree, ", "))
		}
		if len(v.Connections) > 0 {
			var kv []string
			for _, k := range slices.Sorted(maps.Keys(v.Connections)) {
				kv = append(kv, k+"="+v.Connections[k])
			}
			notes = append(notes, "connections "+termsafe.Clip(strings.Join(kv, ","), 60))
		}
		switch {
		case v.Protocol == "https":
			notes = append(notes, "HTTPS storage (NURLs)")
		case v.HTTPS && n.Config.ForceFoolscap:
			notes = append(notes, "announces HTTPS storage; [client] force_foolscap = true")
		case v.HTTPS:
			notes = append(notes, "announces NURLs that do not parse: Foolscap")
		}
		rows = append(rows, []string{termsafe.Clip(v.ID, 64), orDash(termsafe.Clip(v.Nickname, 24)), src, yesNo(v.RevealsIP), orDash(strings.Join(notes, "; "))})
		var hr [][]string
		addHints := func(prefix string, hs []hintView) {
			for _, h := range hs {
				how := "via " + h.Handler
				if !h.Usable {
					how = "not used: " + termsafe.Clip(h.Status, 120)
				} else if h.RevealsIP {
					how += " (direct: reveals the IP address)"
				}
				hr = append(hr, []string{"  " + prefix + termsafe.Clip(h.Hint, 80), how})
			}
		}
		addHints("", v.Hints)
		addHints("NURL ", v.NURLHints)
		hintRows = append(hintRows, hr)
	}
	width := columnWidths(rows)
	var hintWidth int
	for _, hr := range hintRows {
		for _, h := range hr {
			hintWidth = max(hintWidth, utf8.RuneCountInString(h[0]))
		}
	}
	writeRow(w, rows[0], width)
	for i, r := range rows[1:] {
		writeRow(w, r, width)
		for _, h := range hintRows[i] {
			writeRow(w, h, []int{hintWidth, 0})
		}
	}
	fmt.Fprintf(w, "* = the announcement in use (the highest seqnum)\n")
}

// columnWidths returns the width in runes of each column but the last.
func columnWidths(rows [][]string) []int {
	var width []int
	for _, r := range rows {
		for i, cell := range r {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(cell))
		}
	}
	return width
}

// writeRow writes cells padded to width, two spaces apart, the last one
// unpadded.
func writeRow(w io.Writer, cells []string, width []int) {
	var b strings.Builder
	for i, cell := range cells {
		if i == len(cells)-1 {
			b.WriteString(cell)
			break
		}
		b.WriteString(cell)
		b.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(cell)+2))
	}
	fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
