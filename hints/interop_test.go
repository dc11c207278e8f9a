package hints

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm/internal/pyfoolscap"
)

// oracleMaps are the handler tables compared with Foolscap: Tahoe-LAFS's
// default, "[connections] tcp = tor", "tcp = disabled", and two per-server
// overrides that route hint types to another handler's grammar.
var oracleMaps = []map[string]string{
	{"tcp": "tcp", "tor": "tor", "i2p": "i2p"},
	{"tcp": "tor", "tor": "tor", "i2p": "i2p"},
	{"tcp": "", "tor": "tor", "i2p": "i2p"},
	{"tcp": "i2p", "tor": "tcp", "i2p": "tor"},
	{"tcp": "tcp", "tor": "", "i2p": ""},
}

// oracleHints are extra hints beyond the table and fuzz seeds.
var oracleHints = []string{
	"tor:1.2.3.4:80", "tor:100.64.0.1:1", "tor:192.0.0.8:1", "tor:192.0.0.9:1", "tor:192.0.0.170:1",
	"tor:198.51.100.1:1", "tor:203.0.113.1:1", "tor:192.88.99.1:1", "tor:0.1.2.3:1", "tor:1.2.3:1",
	"tcp:127.1:80", "foo:1.2.3.4:5", "i2p:abc.i2p:0005", "i2p:abc.i2p:1:2", "tcp:[::ffff:1.2.3.4%x]:1",
	"tcp:[::1%lo.0]:1", "tcp:[:]:1", "tcp:[fe80::1]:1\n", "example.com:1\n", "tcp:a:1\n\n", "a:1:2",
	"tcp:[::FFFF:255.255.255.255]:0", "-:1", ".:1", "tcp:-:1", "tor::1", "tor:a:", "i2p:a:",
}

// TestAgainstFoolscap runs Foolscap 21.7's own decode_furl and hint handlers
// (testdata/foolscap_oracle.py) on every FURL and hint in this package's
// tests and checks that ParseFURL and Decide agree, apart from the
// documented differences.
func TestAgainstFoolscap(t *testing.T) {
	var furls []string
	for _, tt := range furlTests {
		furls = append(furls, tt.in)
	}
	furls = append(furls, readSeeds(t, "FuzzParseFURL")...)
	hintSet := append([]string{}, oracleHints...)
	for _, tt := range hintTests {
		hintSet = append(hintSet, tt.in)
	}
	hintSet = append(hintSet, readSeeds(t, "FuzzParseHint")...)

	// Python receives text; skip inputs that are not valid UTF-8.
	furls = validUTF8(furls)
	hintSet = validUTF8(hintSet)

	req := map[string]any{"furls": furls, "hints": hintSet}
	var pyMaps []map[string]any
	for _, m := range oracleMaps {
		pm := map[string]any{}
		for k, v := range m {
			if v == "" {
				pm[k] = nil
			} else {
				pm[k] = v
			}
		}
		pyMaps = append(pyMaps, pm)
	}
	req["maps"] = pyMaps
	reqFile := filepath.Join(t.TempDir(), "req.json")
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(reqFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join("testdata", "foolscap_oracle.py"))
	if err != nil {
		t.Fatal(err)
	}
	proc := pyfoolscap.Start(t, string(script), reqFile)
	next := func() map[string]any {
		var m map[string]any
		line := proc.Line(t, 60*time.Second)
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("bad oracle line %q: %v", line, err)
		}
		return m
	}

	for _, s := range furls {
		py := next()
		got, err := ParseFURL(s)
		if msg, bad := py["err"].(string); bad {
			if err == nil {
				t.Errorf("ParseFURL(%q) = %#v; Foolscap: %s", s, got, msg)
			} else if !sameFURLError(err, msg) {
				t.Errorf("ParseFURL(%q) error %v; Foolscap: %s", s, err, msg)
			}
			continue
		}
		if err != nil {
			if strings.HasPrefix(s, "pb://") || !strings.Contains(s, "pb://") {
				t.Errorf("ParseFURL(%q): %v; Foolscap accepts it", s, err)
			} // else: text before "pb://", a documented difference
			continue
		}
		want := FURL{TubID: py["tubid"].(string), Name: py["name"].(string), Hints: []string{}}
		for _, h := range py["hints"].([]any) {
			want.Hints = append(want.Hints, h.(string))
		}
		if !got.Equal(want) {
			t.Errorf("ParseFURL(%q) = %#v; Foolscap: %#v", s, got, want)
		}
	}

	compared := 0
	for _, m := range oracleMaps {
		p := Policy{Handlers: map[Kind]Handler{}, Available: map[Handler]bool{HandlerTCP: true, HandlerTor: true, HandlerI2P: true}}
		for k, v := range m {
			if v == "" {
				v = string(HandlerDisabled)
			}
			p.Handlers[Kind(k)] = Handler(v)
		}
		for _, s := range hintSet {
			py := next()
			d := p.Decide(s)
			name := fmt.Sprintf("map %v hint %q", m, s)
			pyHandler, _ := py["handler"].(string)
			if status, bad := py["status"].(string); bad {
				goStatus := d.Status
				if errors.Is(d.Err, ErrHintDisabled) {
					goStatus = "bad hint: no handler registered"
				}
				if d.Usable || goStatus != status || string(d.Handler) != pyHandler {
					t.Errorf("%s: Decide = %+v; Foolscap: %q via %q", name, d, status, pyHandler)
				}
				compared++
				continue
			}
			pyPort, _ := py["port"].(float64) // null (i2p without port) is 0
			port := int(min(pyPort, 1<<20))
			if strings.ContainsFunc(s, func(r rune) bool { return r > 0x7f }) {
				// Documented: Python's \d also matches non-ASCII digits.
				if d.Usable {
					t.Errorf("%s: Decide accepted non-ASCII digits: %+v", name, d)
				}
				continue
			}
			if port > 65535 { // documented: rejected up front
				if !errors.Is(d.Err, ErrPortRange) {
					t.Errorf("%s: Decide = %+v; Foolscap accepts port %d, want ErrPortRange", name, d, port)
				}
				continue
			}
			if !d.Usable || d.Hint.Host != py["host"] || d.Hint.Port != port || string(d.Handler) != pyHandler {
				t.Errorf("%s: Decide = %+v; Foolscap: host %v port %d via %q", name, d, py["host"], port, pyHandler)
			}
			compared++
		}
	}
	if done := next(); done["done"] != true {
		t.Fatalf("oracle out of step: %v", done)
	}
	if compared < 5*len(hintTests) {
		t.Fatalf("compared only %d hint decisions", compared)
	}
	t.Logf("compared %d FURLs and %d hint decisions with Foolscap %s", len(furls), compared, pyfoolscap.Version())
}

func sameFURLError(err error, pyMsg string) bool {
	switch {
	case strings.HasPrefix(pyMsg, "unknown FURL prefix"):
		return errors.Is(err, ErrFURLSyntax)
	case pyMsg == "no connection hint may be empty":
		return errors.Is(err, ErrEmptyHint)
	case strings.HasSuffix(pyMsg, "is not a valid tubid"):
		return errors.Is(err, ErrBadTubID)
	}
	return false
}

func validUTF8(in []string) []string {
	out := in[:0]
	for _, s := range in {
		if strings.ToValidUTF8(s, "\uFFFD") == s {
			out = append(out, s)
		}
	}
	return out
}

// readSeeds returns the string inputs committed under testdata/fuzz/name.
func readSeeds(t *testing.T, name string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", name, "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) < 2 || lines[0] != "go test fuzz v1" {
			t.Fatalf("%s: not a fuzz corpus file", f)
		}
		for _, l := range lines[1:] {
			v, ok := strings.CutPrefix(l, "string(")
			if !ok {
				continue
			}
			var s string
			if _, err := fmt.Sscanf(strings.TrimSuffix(v, ")"), "%q", &s); err != nil {
				t.Fatalf("%s: %q: %v", f, l, err)
			}
			out = append(out, s)
		}
	}
	return out
}
