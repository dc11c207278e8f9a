package status

import (
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// pageCSS and pageJS are inlined into the page; the Content-Security-Policy
// allows exactly these two by hash, and nothing else.
const pageCSS = `
:root{--bg:#f5f6f8;--card:#fff;--fg:#1d2330;--muted:#5d6675;--line:#e2e5ea;--head:#f9fafb;
--ok:#1a7f37;--ok-bg:#dafbe1;--warn:#8a5a00;--warn-dot:#d4a72c;--warn-bg:#fff3c4;--bad:#c21c2b;--bad-bg:#ffebe9;
--info:#0862c8;--info-bg:#ddf1ff;--idle:#6e7781;--idle-bg:#eaeef2;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",sans-serif}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--card:#161b22;--fg:#e6edf3;--muted:#8d96a0;
--line:#30363d;--head:#1c222b;--ok:#3fb950;--ok-bg:#12261e;--warn:#d29922;--warn-dot:#d29922;--warn-bg:#2b2413;
--bad:#f85149;--bad-bg:#33191d;--info:#58a6ff;--info-bg:#121d2f;--idle:#8d96a0;--idle-bg:#262c35}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font-size:14px;line-height:1.45}
header{display:flex;align-items:baseline;justify-content:space-between;padding:14px 24px;
background:var(--card);border-bottom:1px solid var(--line)}
.brand{font-weight:700;font-size:17px;letter-spacing:.01em}
.brand span{font-weight:400;color:var(--muted);margin-left:10px}
nav a{margin-left:18px;color:var(--info);text-decoration:none;font-size:13px}
nav a:hover{text-decoration:underline}
#stale{background:var(--bad-bg);color:var(--bad);padding:8px 24px;font-weight:600}
main{max-width:1440px;margin:0 auto;padding:24px 24px 40px}
.top{display:flex;flex-wrap:wrap;align-items:center;gap:12px 22px;margin-bottom:20px}
h1{font-size:21px;margin:0;font-weight:600}
h1 b{font-variant-numeric:tabular-nums}
progress{width:200px;height:8px;border:0;border-radius:4px;background:var(--idle-bg);appearance:none}
progress::-webkit-progress-bar{background:var(--idle-bg);border-radius:4px}
progress::-webkit-progress-value{background:var(--ok);border-radius:4px}
progress::-moz-progress-bar{background:var(--ok);border-radius:4px}
.chips{display:flex;flex-wrap:wrap;gap:8px;list-style:none;margin:0;padding:0}
.badge{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12px;font-weight:600;white-space:nowrap}
.s-connected .badge.state,.b-ok{color:var(--ok);background:var(--ok-bg)}
.s-connecting .badge.state,.b-info{color:var(--info);background:var(--info-bg)}
.s-waiting .badge.state,.b-warn{color:var(--warn);background:var(--warn-bg)}
.s-stopped .badge.state,.b-bad{color:var(--bad);background:var(--bad-bg)}
.s-idle .badge.state,.b-idle{color:var(--idle);background:var(--idle-bg)}
.wrap{background:var(--card);border:1px solid var(--line);border-radius:10px;overflow-x:auto}
table{width:100%;border-collapse:collapse}
th{text-align:left;font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);
font-weight:600;padding:10px 12px;border-bottom:1px solid var(--line);background:var(--head);white-space:nowrap}
td{padding:10px 12px;border-bottom:1px solid var(--line);vertical-align:top}
tbody tr:last-child td{border-bottom:0}
tbody tr:hover td{background:var(--head)}
.server{display:flex;gap:10px;min-width:200px}
.server .badge{margin-top:4px}
.dot{width:10px;height:10px;border-radius:50%;margin-top:6px;flex:none;background:var(--idle)}
.s-connected .dot{background:var(--ok)}
.s-connecting .dot{background:var(--info)}
.s-waiting .dot{background:var(--warn-dot)}
.s-stopped .dot{background:var(--bad)}
.nick{font-weight:600}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.id{color:var(--muted);max-width:22ch;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.muted{color:var(--muted);font-size:12px}
.num{font-variant-numeric:tabular-nums;white-space:nowrap}
.summary{margin:4px 0 2px;overflow-wrap:anywhere}
.conn{min-width:320px}
.nowrap{white-space:nowrap}
td.retry{width:190px;max-width:190px}
td.ident{white-space:nowrap}
.fail{color:var(--bad);font-size:12px;overflow-wrap:anywhere}
details{margin-top:4px}
details summary{cursor:pointer;color:var(--muted);font-size:12px}
details ul{margin:4px 0 0;padding-left:18px;font-size:12px}
h2{font-size:15px;font-weight:600;margin:18px 0 8px}
.intros{margin-bottom:8px}
.empty{padding:48px;text-align:center;color:var(--muted)}
footer{display:flex;justify-content:space-between;flex-wrap:wrap;gap:8px;color:var(--muted);font-size:12px;margin-top:14px}
`

const pageJS = `
(function () {
  var main = document.getElementById("status");
  var stale = document.getElementById("stale");
  var every = Number(main.getAttribute("data-refresh"));
  var refreshed = 0;
  if (!(every > 0) || !window.fetch || !window.DOMParser) return;
  function tick() {
    fetch(location.href, {cache: "no-store"}).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.text();
    }).then(function (text) {
      var next = new DOMParser().parseFromString(text, "text/html").getElementById("status");
      if (!next) throw new Error("no status in the page");
      var open = Array.prototype.map.call(main.querySelectorAll("details[open]"), function (d) {
        return d.getAttribute("data-key");
      });
      main.replaceChildren.apply(main, Array.prototype.slice.call(next.childNodes));
      open.forEach(function (k) {
        main.querySelectorAll("details[data-key]").forEach(function (d) {
          if (d.getAttribute("data-key") === k) d.open = true;
        });
      });
      stale.hidden = true;
      refreshed++;
      main.setAttribute("data-refreshed", String(refreshed));
    }).catch(function () {
      stale.hidden = false;
    }).finally(function () {
      setTimeout(tick, every);
    });
  }
  setTimeout(tick, every);
})();
`

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// contentSecurityPolicy allows the page's own inline style and script and
// requests to its own origin (the refresh), nothing else.
var contentSecurityPolicy = "default-src 'none'; style-src " + cspHash(pageCSS) +
	"; script-src " + cspHash(pageJS) +
	"; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// The page template. The style and script elements hold pageCSS and pageJS
// verbatim (they contain no template actions), so their hashes match.
var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{{if .RefreshSeconds}}<noscript><meta http-equiv="refresh" content="{{.RefreshSeconds}}"></noscript>{{end}}
<title>{{.Title}}</title>
<style>` + pageCSS + `</style>
</head>
<body>
<header>
<div class="brand">tubfarm{{with .Node}}<span>{{.}}</span>{{end}}</div>
<nav><a href="?t=json">JSON</a>{{if .Metrics}}<a href="metrics">Metrics</a>{{end}}</nav>
</header>
<div id="stale" hidden>The status page cannot reach the node; retrying…</div>
<main id="status" data-refresh="{{.RefreshMillis}}">
<div class="top">
<h1 id="summary">Connected to <b>{{.Connected}}</b> of <b>{{.Total}}</b> known storage servers</h1>
<progress value="{{.Connected}}" max="{{.ProgressMax}}"></progress>
<ul class="chips">{{range .Chips}}<li class="badge {{.Class}}" data-state="{{.State}}">{{.Count}} {{.Label}}</li>{{end}}</ul>
</div>
{{if .Intros}}<h2>Introducers</h2>
<div class="wrap intros"><table id="introducers">
<thead><tr><th>Introducer</th><th>Connection</th><th>Last RX</th><th>Announcements</th><th>Client identity</th></tr></thead>
<tbody>
{{range .Intros}}<tr class="s-{{.Class}}" data-petname="{{.Petname}}" data-state="{{.State}}">
<td><div class="server"><span class="dot" title="{{.State}}"></span><div><div class="nick">{{.Petname}}</div>
<div class="muted">{{if .Subscribed}}subscribed{{else}}not subscribed{{end}}{{with .Version}} · {{.}}{{end}}</div>{{with .Error}}<div class="fail">{{.}}</div>{{end}}</div></div></td>
<td class="conn"><span class="badge state">{{.StateLabel}}</span> <span class="muted" title="{{.SinceAbs}}">{{.SinceAgo}}</span><div class="summary">{{.Summary}}</div></td>
<td class="num" title="{{.LastRXAbs}}">{{.LastRXAgo}}</td>
<td class="num">{{.Servers}} server{{if ne .Servers 1}}s{{end}}<div class="muted">{{.Received}} received · {{.Accepted}} accepted · {{.Rejected}} rejected</div>{{with .LastAnnAgo}}<div class="muted">last {{.}}</div>{{end}}</td>
<td class="ident">{{if .ClientTubID}}<div class="mono" title="{{.ClientTubID}}">{{.ClientShort}}</div>{{else}}<span class="muted">none yet</span>{{end}}</td>
</tr>
{{end}}</tbody></table></div>
<h2>Storage servers</h2>{{end}}
<div class="wrap">
{{if .Rows}}<table id="servers">
<thead><tr><th>Server</th><th>Connection</th><th>Protocol</th><th>Last RX</th><th>Version</th><th>Available</th><th>Retry</th><th>Client identity</th></tr></thead>
<tbody>
{{range .Rows}}<tr class="s-{{.Class}}" data-id="{{.ID}}" data-state="{{.State}}">
<td><div class="server"><span class="dot" title="{{.State}}"></span><div>
<div class="nick">{{.Nickname}}</div>
<div class="id mono" title="{{.ID}}">{{.ID}}</div>
<div class="muted">{{.Source}}{{with .AnnouncedBy}} · announced by {{.}}{{end}}</div>
{{if .RevealsIP}}<span class="badge b-warn" title="a hint of this server is dialled over direct TCP: it sees the client's IP address">reveals IP</span>{{else}}<span class="badge b-ok" title="no hint of this server is dialled directly: it does not see the client's IP address">hides IP</span>{{end}}</div></div></td>
<td class="conn"><span class="badge state">{{.StateLabel}}</span> <span class="muted" title="{{.SinceAbs}}">{{.SinceAgo}}</span>
<div class="summary">{{.Summary}}</div>
<div class="muted">{{if .Via}}{{with .TLS}}{{.}} · {{end}}server <span class="mono" title="{{.ServerTubID}}">{{.ServerShort}}</span>{{else}}<span title="{{.LastConnAbs}}">last connected {{.LastConnAgo}}</span>{{end}}</div>
{{if .Hints}}<details data-key="hints {{.ID}}"><summary>{{len .Hints}} hint{{if ne (len .Hints) 1}}s{{end}}</summary><ul>{{range .Hints}}<li><span class="mono">{{.Hint}}</span>: {{.Status}}</li>{{end}}</ul></details>{{end}}
</td>
<td class="nowrap proto">{{.Protocol}}</td>
<td class="num" title="{{.LastRXAbs}}">{{.LastRXAgo}}</td>
<td class="nowrap">{{.Version}}</td>
<td class="num">{{.Available}}</td>
<td class="retry">{{if .Waiting}}<div class="num">next attempt in <b>{{.NextIn}}</b></div><div class="muted">backoff {{.Backoff}}</div>{{end}}
{{if .Attempts}}<div class="muted num">{{.Attempts}} attempt{{if ne .Attempts 1}}s{{end}} since last success</div>{{else if not .Waiting}}<span class="muted">—</span>{{end}}
{{if .Failure}}<div class="fail" title="{{.FailureFull}}">{{.Failure}}</div>{{end}}
{{if .Restarts}}<div class="fail">{{.Restarts}} actor restart{{if ne .Restarts 1}}s{{end}}</div>{{end}}</td>
<td class="ident">{{if .ClientTubID}}<div class="mono" title="{{.ClientTubID}}">{{.ClientShort}}</div><div class="muted">made {{.IdentityAge}} ago</div>{{else}}<span class="muted">none yet</span>{{end}}</td>
</tr>
{{end}}</tbody>
</table>{{else}}<div class="empty">You are not presently connected to any servers: no storage server is configured or announced.</div>{{end}}
</div>
<footer><span>Snapshot taken <time datetime="{{.GeneratedISO}}">{{.GeneratedText}}</time></span><span>{{if .RefreshMillis}}Refreshes every {{.RefreshText}}{{else}}Not refreshing; reload to update{{end}}</span></footer>
</main>
<script>` + pageJS + `</script>
</body>
</html>
`))

type pageData struct {
	Title, Node                 string
	Connected, Total            int
	ProgressMax                 int
	Chips                       []chip
	Rows                        []row
	Intros                      []introRow
	Metrics                     bool
	RefreshMillis               int64
	RefreshSeconds              int64
	RefreshText                 string
	GeneratedISO, GeneratedText string
}

type chip struct {
	State, Label, Class string
	Count               int
}

type hintRow struct{ Hint, Status string }

type row struct {
	ID, Nickname, Source     string
	AnnouncedBy              string
	State, Class, StateLabel string
	SinceAgo, SinceAbs       string
	Summary                  string
	Via                      *Via
	TLS                      string
	LastConnAgo, LastConnAbs string
	LastRXAgo, LastRXAbs     string
	Version, Available       string
	Protocol                 string
	Hints                    []hintRow
	Waiting                  bool
	NextIn, Backoff          string
	Attempts                 int
	Failure, FailureFull     string
	Restarts                 int
	RevealsIP                bool
	ClientTubID              string
	ClientShort              string
	ServerTubID, ServerShort string
	IdentityAge              string
}

// stateView gives each state its CSS class and its label.
var stateView = map[string]struct{ class, label string }{
	"connected":        {"connected", "connected"},
	"connecting":       {"connecting", "connecting"},
	"waiting_to_retry": {"waiting", "waiting to retry"},
	"idle":             {"idle", "not started"},
	"stopped":          {"stopped", "stopped"},
}

var chipOrder = []string{"connected", "connecting", "waiting_to_retry", "idle", "stopped"}

func renderPage(w io.Writer, r Report, refresh time.Duration, metrics bool) error {
	return pageTemplate.Execute(w, newPageData(r, refresh, metrics))
}

func newPageData(r Report, refresh time.Duration, metrics bool) pageData {
	now := r.Generated
	d := pageData{
		Node:          r.Node,
		Title:         "tubfarm: " + r.Summary,
		Connected:     r.Connected,
		Total:         r.Total,
		ProgressMax:   max(r.Total, 1),
		Metrics:       metrics,
		GeneratedISO:  now.Format(time.RFC3339),
		GeneratedText: now.Local().Format("2006-01-02 15:04:05 MST"),
	}
	if r.Node != "" {
		d.Title = r.Node + " — " + d.Title
	}
	if refresh > 0 {
		d.RefreshMillis = refresh.Milliseconds()
		d.RefreshSeconds = max(1, int64(refresh.Round(time.Second)/time.Second))
		d.RefreshText = human(refresh)
	}
	for _, st := range chipOrder {
		if n := r.States[st]; n > 0 || st == "connected" {
			v := stateView[st]
			d.Chips = append(d.Chips, chip{State: st, Label: v.label, Class: "b-" + chipClass(v.class), Count: n})
		}
	}
	servers := slices.Clone(r.Servers)
	slices.SortStableFunc(servers, func(a, b Server) int {
		return cmp.Or(cmp.Compare(a.Nickname, b.Nickname), cmp.Compare(a.ID, b.ID))
	})
	for _, s := range servers {
		d.Rows = append(d.Rows, newRow(s, now))
	}
	for _, in := range r.Introducers {
		d.Intros = append(d.Intros, newIntroRow(in, now))
	}
	return d
}

type introRow struct {
	Petname, State, Class, StateLabel string
	SinceAgo, SinceAbs, Summary       string
	LastRXAgo, LastRXAbs, LastAnnAgo  string
	Subscribed                        bool
	Version, Error                    string
	Servers                           int
	Received, Accepted, Rejected      uint64
	ClientTubID, ClientShort          string
}

func newIntroRow(in Introducer, now time.Time) introRow {
	v, ok := stateView[in.State]
	if !ok {
		v = struct{ class, label string }{"idle", in.State}
	}
	r := introRow{
		Petname: in.Petname, State: in.State, Class: v.class, StateLabel: v.label,
		SinceAgo: ago(in.Since, now), SinceAbs: abs(in.Since), Summary: in.Summary,
		LastRXAgo: ago(in.LastReceivedTime, now), LastRXAbs: abs(in.LastReceivedTime),
		Subscribed: in.Subscribed, Version: in.Version, Error: in.Error, Servers: in.Servers,
		Received: in.Announcements.Received, Accepted: in.Announcements.Accepted, Rejected: in.Announcements.Rejected,
		ClientTubID: in.ClientTubID, ClientShort: short(in.ClientTubID),
	}
	if in.LastAnnouncementTime != nil {
		r.LastAnnAgo = ago(in.LastAnnouncementTime, now)
	}
	return r
}

func chipClass(c string) string {
	switch c {
	case "connected":
		return "ok"
	case "connecting":
		return "info"
	case "waiting":
		return "warn"
	case "stopped":
		return "bad"
	}
	return "idle"
}

func newRow(s Server, now time.Time) row {
	v, ok := stateView[s.State]
	if !ok {
		v = struct{ class, label string }{"idle", s.State}
	}
	rw := row{
		ID:          s.ID,
		Nickname:    s.Nickname,
		Source:      s.Source,
		AnnouncedBy: strings.Join(s.Introducers, ", "),
		State:       s.State,
		Class:       v.class,
		StateLabel:  v.label,
		Summary:     s.Summary,
		Via:         s.ConnectedVia,
		TLS:         s.TLSVersion,
		Version:     orNA(s.Version),
		Protocol:    orNA(s.Protocol),
		Available:   "N/A",
		Waiting:     s.State == "waiting_to_retry",
		Attempts:    s.Attempts,
		Restarts:    s.Restarts,
		RevealsIP:   s.RevealsIP,
		ClientTubID: s.ClientTubID,
		ClientShort: short(s.ClientTubID),
		ServerTubID: s.ServerTubID,
		ServerShort: short(s.ServerTubID),
	}
	if rw.Nickname == "" {
		rw.Nickname = "<unspecified>"
	}
	rw.SinceAgo, rw.SinceAbs = ago(s.Since, now), abs(s.Since)
	if rw.SinceAgo != "N/A" {
		rw.SinceAgo = "for " + strings.TrimSuffix(rw.SinceAgo, " ago")
	} else {
		rw.SinceAgo = ""
	}
	rw.LastConnAgo, rw.LastConnAbs = ago(s.LastConnectionTime, now), abs(s.LastConnectionTime)
	if rw.LastConnAgo == "N/A" {
		rw.LastConnAgo = "never"
	}
	rw.LastRXAgo, rw.LastRXAbs = ago(s.LastReceivedTime, now), abs(s.LastReceivedTime)
	if s.AvailableSpace != nil {
		rw.Available = Bytes(*s.AvailableSpace)
	}
	for _, h := range slices.Sorted(maps.Keys(s.Hints)) {
		rw.Hints = append(rw.Hints, hintRow{Hint: h, Status: s.Hints[h]})
	}
	if s.NextAttempt != nil {
		rw.NextIn = human(max(0, s.NextAttempt.Sub(now)))
	}
	if s.BackoffSeconds > 0 {
		rw.Backoff = human(time.Duration(s.BackoffSeconds * float64(time.Second)))
	}
	if s.LastFailure != "" && !s.Connected { // a past failure is no news once connected
		rw.FailureFull = s.LastFailure
		rw.Failure = s.LastFailure
		if s.LastFailureReason != "" {
			rw.Failure = s.LastFailureReason + ": " + s.LastFailure
		}
		if r := []rune(rw.Failure); len(r) > 64 {
			rw.Failure = string(r[:63]) + "…"
		}
	}
	if s.IdentityCreated != nil {
		rw.IdentityAge = human(time.Duration(s.IdentityAgeSeconds * float64(time.Second)))
	}
	return rw
}

func orNA(s string) string {
	if s == "" {
		return "N/A"
	}
	return s
}

// short abbreviates a TubID to its first 8 characters, as Tahoe abbreviates
// server ids.
func short(tubid string) string {
	if len(tubid) <= 8 {
		return tubid
	}
	return tubid[:8] + "…"
}

func ago(t *time.Time, now time.Time) string {
	if t == nil {
		return "N/A"
	}
	return human(max(0, now.Sub(*t))) + " ago"
}

func abs(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

// human formats a duration the way a person reads it: "850ms", "12s",
// "3m05s", "2h10m", "3d4h".
func human(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// Human formats a duration for people, as the status page does ("850ms",
// "4.2s", "12s", "3m05s", "2h10m", "3d4h"). Negative durations are zero.
func Human(d time.Duration) string { return human(max(0, d)) }

// Bytes formats a byte count with decimal units, as Tahoe's
// abbreviate_space does ("123.5 MB").
func Bytes(n int64) string {
	if n < 0 {
		return "N/A"
	}
	const units = "kMGTPE"
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	i := -1
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.1f %cB", f, units[i])
}
