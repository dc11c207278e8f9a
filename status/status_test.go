package status_test

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/tubfarm/tubfarm/actors"
	"github.com/tubfarm/tubfarm/foolscap"
	"github.com/tubfarm/tubfarm/status"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var now = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// fixture returns three servers: one connected, one waiting to retry, one
// never started, with a nickname that needs escaping.
func fixture() []actors.Status {
	versionInfo := foolscap.Dict{
		{Key: []byte("application-version"), Value: []byte("tahoe-lafs/1.20.0")},
		{Key: []byte("http://allmydata.org/tahoe/protocols/storage/v1"), Value: foolscap.Dict{
			{Key: []byte("available-space"), Value: int64(123456789)},
		}},
	}
	return []actors.Status{
		{
			ID: "v0-bbbb", Nickname: "waiting-one", Source: "introducer:alpha",
			State: actors.WaitingToRetry, Since: now.Add(-3 * time.Second),
			Summary:     "Reconnecting in 4 seconds (last attempt 3s ago)",
			Hints:       []actors.HintStatus{{Hint: "tcp:127.0.0.1:9", Status: "connection refused"}},
			WinningHint: "tcp:127.0.0.1:9", Handler: "tcp", // of the last session, which is gone
			LastConnected: now.Add(-time.Hour),
			Backoff:       7 * time.Second, LastAttempt: now.Add(-3 * time.Second), NextAttempt: now.Add(4 * time.Second),
			Attempts: 3, LastFailure: "dial tcp 127.0.0.1:9: connect: connection refused", LastFailureReason: actors.ReasonRefused,
			TubID: "clientbbbbbbbbbbbbbbbbbbbbbbbbbb", IdentityCreated: now.Add(-3 * time.Second),
			Version: "tahoe-lafs/1.19.0", RevealsIP: true,
		},
		{
			ID: "v0-aaaa", Nickname: "connected-one", Source: "servers.yaml",
			State: actors.Connected, Since: now.Add(-90 * time.Second), Connected: true,
			Summary:  "Connected to tor:abc.onion:3456 via tor",
			Hints:    []actors.HintStatus{{Hint: "tor:abc.onion:3456", Status: "successful"}, {Hint: "tcp:10.0.0.1:3456", Status: "abandoned"}},
			Protocol: "https", WinningHint: "tor:abc.onion:3456", Handler: "tor", TLSVersion: tls.VersionTLS13, PeerTubID: "serveraaaaaaaaaaaaaaaaaaaaaaaaaa",
			LastConnected: now.Add(-90 * time.Second), LastReceived: now.Add(-2 * time.Second),
			Version: "tahoe-lafs/1.20.0", VersionInfo: versionInfo,
			LastAttempt: now.Add(-91 * time.Second), NextAttempt: now.Add(-89 * time.Second), // stale: not waiting
			TubID: "clientaaaaaaaaaaaaaaaaaaaaaaaaaa", IdentityCreated: now.Add(-91 * time.Second),
			LastFailure: "an old failure before the connection", LastFailureReason: actors.ReasonTimeout,
		},
		{
			ID: "v0-cccc", Nickname: `<script>alert("x")</script>`, Source: "introducer:beta",
			State: actors.Idle, Summary: "unstarted",
		},
	}
}

func newHandler(sts []actors.Status, opts status.Options) *status.Handler {
	opts.Now = func() time.Time { return now }
	return status.NewHandler(status.SourceFunc(func() []actors.Status { return sts }), opts)
}

func get(t *testing.T, h http.Handler, method, target string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestJSONSchema checks every documented field of the JSON status, with
// its type and value, for a connected, a waiting and an idle server.
func TestJSONSchema(t *testing.T) {
	h := newHandler(fixture(), status.Options{Node: "my-node"})
	resp := get(t, h, "GET", "/status?t=json")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	raw := body(t, resp)
	var doc map[string]any
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"node": "my-node", "summary": "Connected to 1 of 3 known storage servers",
		"connected": 1.0, "total": 3.0, "generated": "2026-03-14T15:09:26Z",
	} {
		if doc[k] != want {
			t.Errorf("%s = %#v, want %#v", k, doc[k], want)
		}
	}
	states := doc["states"].(map[string]any)
	for st, n := range map[string]float64{"connected": 1, "waiting_to_retry": 1, "idle": 1, "connecting": 0, "stopped": 0} {
		if states[st] != n {
			t.Errorf("states[%s] = %v, want %v", st, states[st], n)
		}
	}
	servers := doc["servers"].([]any)
	if len(servers) != 3 {
		t.Fatalf("%d servers, want 3", len(servers))
	}
	byID := map[string]map[string]any{}
	for i, s := range servers {
		m := s.(map[string]any)
		byID[m["id"].(string)] = m
		// Every documented key is present in every entry (null when
		// unknown), so consumers need not test for absence.
		for _, k := range []string{"id", "nickname", "source", "connected", "state", "since", "summary",
			"last_connection_time", "last_received_time", "version", "available_space", "hints",
			"connected_via", "tls_version", "server_tubid", "reveals_ip", "backoff_seconds", "last_attempt",
			"next_attempt", "attempts", "last_failure", "last_failure_reason", "client_tubid",
			"identity_created", "identity_age_seconds", "restarts"} {
			if _, ok := m[k]; !ok {
				t.Errorf("server %d has no %q", i, k)
			}
		}
	}
	if got := []string{servers[0].(map[string]any)["id"].(string), servers[2].(map[string]any)["id"].(string)}; got[0] != "v0-aaaa" || got[1] != "v0-cccc" {
		t.Errorf("servers not sorted by id: %v", got)
	}

	c := byID["v0-aaaa"]
	checks := []struct {
		server, key string
		want        any
	}{
		{"v0-aaaa", "connected", true},
		{"v0-aaaa", "state", "connected"},
		{"v0-aaaa", "summary", "Connected to tor:abc.onion:3456 via tor"},
		{"v0-aaaa", "last_connection_time", "2026-03-14T15:07:56Z"},
		{"v0-aaaa", "last_received_time", "2026-03-14T15:09:24Z"},
		{"v0-aaaa", "version", "tahoe-lafs/1.20.0"},
		{"v0-aaaa", "available_space", 123456789.0},
		{"v0-aaaa", "tls_version", "TLS 1.3"},
		{"v0-aaaa", "server_tubid", "serveraaaaaaaaaaaaaaaaaaaaaaaaaa"},
		{"v0-aaaa", "client_tubid", "clientaaaaaaaaaaaaaaaaaaaaaaaaaa"},
		{"v0-aaaa", "identity_age_seconds", 91.0},
		{"v0-aaaa", "reveals_ip", false},
		{"v0-aaaa", "next_attempt", nil}, // only meaningful while waiting
		{"v0-aaaa", "backoff_seconds", 0.0},
		{"v0-bbbb", "connected", false},
		{"v0-bbbb", "state", "waiting_to_retry"},
		{"v0-bbbb", "connected_via", nil}, // the last session's hint is not "connected via"
		{"v0-bbbb", "next_attempt", "2026-03-14T15:09:30Z"},
		{"v0-bbbb", "backoff_seconds", 7.0},
		{"v0-bbbb", "attempts", 3.0},
		{"v0-bbbb", "last_failure_reason", "refused"},
		{"v0-bbbb", "reveals_ip", true},
		{"v0-bbbb", "available_space", nil},
		{"v0-bbbb", "last_received_time", nil},
		{"v0-cccc", "state", "idle"},
		{"v0-cccc", "since", nil},
		{"v0-cccc", "last_connection_time", nil},
		{"v0-cccc", "client_tubid", ""},
		{"v0-cccc", "identity_created", nil},
	}
	for _, tc := range checks {
		if got := byID[tc.server][tc.key]; got != tc.want {
			t.Errorf("%s: %s = %#v, want %#v", tc.server, tc.key, got, tc.want)
		}
	}
	via, _ := c["connected_via"].(map[string]any)
	if via["hint"] != "tor:abc.onion:3456" || via["handler"] != "tor" {
		t.Errorf("connected_via = %#v", c["connected_via"])
	}
	hints, _ := c["hints"].(map[string]any)
	if len(hints) != 2 || hints["tor:abc.onion:3456"] != "successful" || hints["tcp:10.0.0.1:3456"] != "abandoned" {
		t.Errorf("hints = %#v", c["hints"])
	}
	if h, ok := byID["v0-cccc"]["hints"].(map[string]any); !ok || len(h) != 0 {
		t.Errorf("hints of a server never tried = %#v, want {}", byID["v0-cccc"]["hints"])
	}

	// The same JSON decodes into the exported types.
	var rep status.Report
	if err := json.Unmarshal([]byte(raw), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Connected != 1 || rep.Servers[0].ConnectedVia == nil || rep.Servers[0].LastConnectionTime == nil ||
		!rep.Servers[0].LastConnectionTime.Equal(now.Add(-90*time.Second)) {
		t.Errorf("decoded report: %+v", rep.Servers[0])
	}
}

func TestAvailableSpace(t *testing.T) {
	huge, _ := new(big.Int).SetString("18446744073709551616", 10)
	storage := func(v any) any {
		return foolscap.Dict{{Key: []byte("http://allmydata.org/tahoe/protocols/storage/v1"),
			Value: foolscap.Dict{{Key: []byte("available-space"), Value: v}}}}
	}
	for _, tc := range []struct {
		name string
		info any
		want *int64
	}{
		{"int64", storage(int64(42)), ptr(int64(42))},
		{"small big.Int", storage(big.NewInt(7)), ptr(int64(7))},
		{"huge big.Int", storage(huge), nil},
		{"not a number", storage([]byte("lots")), nil},
		{"no storage dict", foolscap.Dict{}, nil},
		{"storage not a dict", foolscap.Dict{{Key: []byte("http://allmydata.org/tahoe/protocols/storage/v1"), Value: int64(1)}}, nil},
		{"str keys", foolscap.Dict{{Key: "http://allmydata.org/tahoe/protocols/storage/v1",
			Value: foolscap.Dict{{Key: "available-space", Value: int64(5)}}}}, ptr(int64(5))},
		{"nil", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := status.NewReport("", []actors.Status{{ID: "x", VersionInfo: tc.info}}, now)
			got := r.Servers[0].AvailableSpace
			if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
				t.Errorf("available space = %v, want %v", deref(got), deref(tc.want))
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestPage checks the HTML page: the header counts, one row per server
// with its state, escaping, and the security headers.
func TestPage(t *testing.T) {
	h := newHandler(fixture(), status.Options{Node: "my-node", Gatherer: prometheus.NewRegistry()})
	resp := get(t, h, "GET", "/")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	page := body(t, resp)
	for _, want := range []string{
		`<title>my-node — tubfarm: Connected to 1 of 3 known storage servers</title>`,
		`Connected to <b>1</b> of <b>3</b> known storage servers`,
		`<progress value="1" max="3">`,
		`data-id="v0-aaaa" data-state="connected"`,
		`data-id="v0-bbbb" data-state="waiting_to_retry"`,
		`data-id="v0-cccc" data-state="idle"`,
		`Connected to tor:abc.onion:3456 via tor`,
		`TLS 1.3 · server <span class="mono" title="serveraaaaaaaaaaaaaaaaaaaaaaaaaa">serveraa…</span>`,
		`<th>Protocol</th>`,
		`<td class="nowrap proto">https</td>`,
		`next attempt in <b>4.0s</b>`,
		`backoff 7.0s`,
		`3 attempts since last success`,
		`refused: dial tcp 127.0.0.1:9: connect: connection refused`,
		`123.5 MB`,
		`reveals IP`,
		`hides IP`,
		`last connected 1h00m ago`,
		`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`,
		`<a href="?t=json">JSON</a><a href="metrics">Metrics</a>`,
		`data-refresh="2000"`,
		`<noscript><meta http-equiv="refresh" content="2"></noscript>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "an old failure") {
		t.Error("the page shows a connected server's past failure")
	}
	if strings.Contains(page, `<script>alert`) {
		t.Error("the nickname was not escaped")
	}
	// Rows are in nickname order for people (the JSON is in id order).
	a, b := strings.Index(page, `data-id="v0-cccc"`), strings.Index(page, `data-id="v0-aaaa"`)
	if a < 0 || b < 0 || a > b {
		t.Error("rows are not sorted by nickname")
	}
	for k, want := range map[string]string{
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"X-Frame-Options":        "DENY",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// TestContentSecurityPolicy checks that the policy allows exactly the
// page's own inline style and script, by hash, and nothing from elsewhere.
func TestContentSecurityPolicy(t *testing.T) {
	resp := get(t, newHandler(fixture(), status.Options{}), "GET", "/")
	csp := resp.Header.Get("Content-Security-Policy")
	page := body(t, resp)
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	for _, tag := range []string{"style", "script"} {
		m := regexp.MustCompile(`(?s)<`+tag+`>(.*?)</`+tag+`>`).FindAllStringSubmatch(page, -1)
		if len(m) != 1 {
			t.Fatalf("%d <%s> elements, want 1", len(m), tag)
		}
		sum := sha256.Sum256([]byte(m[0][1]))
		want := tag + "-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q does not allow the page's <%s> (%s)", csp, tag, want)
		}
	}
	if strings.Contains(page, " style=") || strings.Contains(page, " onclick=") || strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Error("the page has inline style attributes, event handlers or absolute links the CSP would block or leak")
	}
}

func TestRoutes(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "tubfarm_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	with := newHandler(fixture(), status.Options{Gatherer: reg})
	without := newHandler(fixture(), status.Options{})
	for _, tc := range []struct {
		name         string
		h            http.Handler
		method, path string
		code         int
		contentType  string
		contains     string
	}{
		{"root", with, "GET", "/", 200, "text/html; charset=utf-8", "known storage servers"},
		{"status", with, "GET", "/status", 200, "text/html; charset=utf-8", "known storage servers"},
		{"t=html", with, "GET", "/status?t=html", 200, "text/html; charset=utf-8", "known storage servers"},
		{"json at root", with, "GET", "/?t=json", 200, "application/json", `"total": 3`},
		{"json", with, "GET", "/status?t=json", 200, "application/json", `"total": 3`},
		{"head", with, "HEAD", "/", 200, "text/html; charset=utf-8", ""},
		{"unknown t", with, "GET", "/status?t=xml", 400, "text/plain; charset=utf-8", "unknown output type t=xml"},
		{"post", with, "POST", "/status", 405, "text/plain; charset=utf-8", "method POST not allowed"},
		{"unknown path", with, "GET", "/other", 404, "text/plain; charset=utf-8", "404"},
		{"metrics", with, "GET", "/metrics", 200, "", "tubfarm_test_total 3"},
		{"no metrics", without, "GET", "/metrics", 404, "text/plain; charset=utf-8", "no metrics registry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := get(t, tc.h, tc.method, tc.path)
			b := body(t, resp)
			if resp.StatusCode != tc.code {
				t.Errorf("status %d, want %d (%s)", resp.StatusCode, tc.code, b)
			}
			if tc.contentType != "" && resp.Header.Get("Content-Type") != tc.contentType {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tc.contentType)
			}
			if !strings.Contains(b, tc.contains) {
				t.Errorf("body lacks %q:\n%s", tc.contains, b)
			}
			if tc.code == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q", resp.Header.Get("Allow"))
			}
		})
	}
	// Without a registry the page does not link to metrics.
	if page := body(t, get(t, without, "GET", "/")); strings.Contains(page, `href="metrics"`) {
		t.Error("page links to metrics although none are served")
	}
}

// TestMounted serves the handler under a prefix, as an embedding
// application would, over a real HTTP server: every link of the page
// resolves under the prefix.
func TestMounted(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/tubfarm/", http.StripPrefix("/tubfarm", newHandler(fixture(), status.Options{Gatherer: prometheus.NewRegistry()})))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()
	for _, page := range []string{"/tubfarm/", "/tubfarm/status"} {
		resp, err := srv.Client().Get(srv.URL + page)
		if err != nil {
			t.Fatal(err)
		}
		html := body(t, resp)
		resp.Body.Close()
		links := regexp.MustCompile(`href="([^"]*)"`).FindAllStringSubmatch(html, -1)
		if len(links) != 2 {
			t.Fatalf("%s: links %v, want JSON and metrics", page, links)
		}
		for _, l := range links {
			u, err := resp.Request.URL.Parse(strings.ReplaceAll(l[1], "&amp;", "&"))
			if err != nil {
				t.Fatal(err)
			}
			r, err := srv.Client().Get(u.String())
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
			if r.StatusCode != 200 || !strings.HasPrefix(u.Path, "/tubfarm/") {
				t.Errorf("%s: link %q → %s: status %d", page, l[1], u, r.StatusCode)
			}
		}
	}
}

func TestEmptyAndNoRefresh(t *testing.T) {
	h := newHandler(nil, status.Options{Refresh: -1})
	page := body(t, get(t, h, "GET", "/"))
	for _, want := range []string{"You are not presently connected to any servers", `data-refresh="0"`, "Not refreshing", "Connected to <b>0</b> of <b>0</b>"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "http-equiv") {
		t.Error("page reloads itself although Refresh < 0")
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(body(t, get(t, h, "GET", "/?t=json"))), &rep); err != nil {
		t.Fatal(err)
	}
	if s, ok := rep["servers"].([]any); !ok || len(s) != 0 {
		t.Errorf("servers = %#v, want []", rep["servers"])
	}
}

func TestHuman(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0ms"},
		{0, "0ms"},
		{850 * time.Millisecond, "850ms"},
		{4200 * time.Millisecond, "4.2s"},
		{12 * time.Second, "12s"},
		{185 * time.Second, "3m05s"},
		{2*time.Hour + 10*time.Minute, "2h10m"},
		{76 * time.Hour, "3d4h"},
	} {
		if got := status.Human(tc.d); got != tc.want {
			t.Errorf("Human(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{-1, "N/A"}, {0, "0 B"}, {999, "999 B"}, {1000, "1.0 kB"}, {123456789, "123.5 MB"},
		{2_000_000_000_000, "2.0 TB"}, {9_223_372_036_854_775_807, "9.2 EB"},
	} {
		if got := status.Bytes(tc.n); got != tc.want {
			t.Errorf("Bytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
