package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/internal/nettest"
	"github.com/tubfarm/tubfarm/status"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// IDs of the golden node directory (testdata/gen.py).
const (
	idStorage1 = "v0-bpooz5dnlv4gltl76qdyxxgntwxqyu6mtzwevllbqbc46obeu5fq"
	idStorage2 = "v0-lacfnq5ao6np76inanckqcdhfuuypjwoh7oglrvycvitccwwrqeq"
	idStorage3 = "v0-32spcb5xvac26aulz3lgy4hkqy5msrtstywa6bl55kzsrdh6vzfa"
	idNAS      = "v0-khxulwwvrj6twt4xvc5xsfflhamh2uk4wbvip5af6zfkawxaud7q"
	idStorage6 = "v0-ieklwjrwy2s3ewxyqexitmfp3gyq3fgltoosij2xh4fqvwl2sa6q"
	idTwin7    = "v0-iijbd5fnaimhkxjkepc2rv2zwwowh7zjof67fj5r24jeiktfqmla"
	idTwin8    = "v0-xqrtv777dt5z4qkixcwssrfdij6hsooejcnj46xtybsdkbhmpvba"
)

// goldenNode copies testdata/node, a node directory shaped like one Python
// Tahoe writes, into a fresh directory.
func goldenNode(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "node")
	if err := os.CopyFS(dir, os.DirFS("testdata/node")); err != nil {
		t.Fatal(err)
	}
	return dir
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs the command in-process. NODEDIR in args and outputs stands for
// dir.
func run(t *testing.T, dir string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "NODEDIR", dir)
	}
	code := Run(context.Background(), args, Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	r := result{code, out.String(), errb.String()}
	if dir != "" {
		r.stdout = strings.ReplaceAll(r.stdout, dir, "NODEDIR")
		r.stderr = strings.ReplaceAll(r.stderr, dir, "NODEDIR")
	}
	return r
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from testdata/%s:\n--- got\n%s\n--- want\n%s", name, name, got, want)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestServersTable(t *testing.T) {
	dir := goldenNode(t)
	r := run(t, dir, "servers", "-d", "NODEDIR")
	if r.code != ExitOK || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	golden(t, "servers.txt", r.stdout)
}

func TestServersJSON(t *testing.T) {
	dir := goldenNode(t)
	r := run(t, dir, "servers", "--json", "-d", "NODEDIR")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var got struct {
		Servers []serverView `json:"servers"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	by := map[string]serverView{}
	for _, s := range got.Servers {
		by[s.ID] = s
	}
	if len(by) != 8 {
		t.Fatalf("%d servers, want 8", len(by))
	}
	s3 := by[idStorage3]
	if !slices.Equal(s3.Disagree, []string{config.FieldFURL}) || s3.Source != "introducer:beta" || len(s3.Announcements) != 2 {
		t.Errorf("storage-3: disagree %v, source %s, %d announcements; want the FURL disagreement, beta's copy (seqnum 2 > 1), 2", s3.Disagree, s3.Source, len(s3.Announcements))
	}
	if s2 := by[idStorage2]; len(s2.Disagree) != 0 || s2.Source != "introducer:beta" {
		t.Errorf("storage-2 (same FURL, seqnum 3 and 5): disagree %v, source %s", s2.Disagree, s2.Source)
	}
	s6 := by[idStorage6]
	if s6.ServersYAML == nil || s6.ServersYAML.Line != 10 || s6.Connections["tcp"] != "tor" || len(s6.Announcements) != 1 {
		t.Errorf("storage-6: %+v", s6)
	}
	if h := s6.Hints; len(h) != 1 || h[0].Handler != "tor" || !h[0].Usable || h[0].RevealsIP {
		t.Errorf("storage-6 hints: %+v", h)
	}
	if nas := by[idNAS]; !nas.HTTPS || nas.Protocol != "https" || len(nas.NURLHints) != 1 || nas.NURLHints[0].Handler != "tor" {
		t.Errorf("nas announces a NURL: https_announced %v, protocol %q, NURL hints %+v", nas.HTTPS, nas.Protocol, nas.NURLHints)
	}
	if s2 := by[idStorage2]; s2.Protocol != "foolscap" {
		t.Errorf("storage-2 protocol %q", s2.Protocol)
	}
	for _, s := range got.Servers {
		if s.RevealsIP {
			t.Errorf("%s reveals the IP under tcp = tor with no override", s.ID)
		}
	}
}

// TestPinByNickname is the seed's workflow: a LAN server announced with a
// Tor hint is pinned with a LAN hint and direct TCP. The new entry is
// added after the last one; every other byte of the file is unchanged.
func TestPinByNickname(t *testing.T) {
	dir := goldenNode(t)
	path := config.ServersPath(dir)
	before := readFile(t, path)
	r := run(t, dir, "pin", "-d", "NODEDIR", "nas", "--hint", "tcp:192.168.1.20:3457", "--connections", "tcp=tcp")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	golden(t, "pin-nas.out", r.stdout+"--- stderr\n"+r.stderr)
	after := readFile(t, path)
	golden(t, "pin-nas.servers.yaml", after)

	// Untouched bytes: the file is the old one with the entry inserted
	// before the trailing comment.
	at := strings.Index(before, "\n\n# end of servers")
	if at < 0 || !strings.HasPrefix(after, before[:at+1]) || !strings.HasSuffix(after, before[at+1:]) {
		t.Errorf("the edit changed bytes outside the new entry:\n%s", after)
	}
	if !strings.Contains(r.stderr, "reveal-IP-address = false") || !strings.Contains(r.stderr, "reveals the node's IP address") {
		t.Errorf("no reveal-IP warning:\n%s", r.stderr)
	}

	n, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := n.Map.Get(idNAS)
	if !ok || !e.Source.Static || !e.Policy.RevealsIP() || e.Nickname != "nas" {
		t.Fatalf("nas after the pin: %+v", e)
	}
	if _, has := e.Announcement.Field(fieldNURLs); has {
		t.Errorf("the pinned entry kept anonymous-storage-NURLs, with which Tahoe would ignore the new hint")
	}
	if d := e.Policy.Decide("tcp:192.168.1.20:3457"); !d.Usable || d.Handler != hints.HandlerTCP {
		t.Errorf("the LAN hint is not dialled directly: %v", d)
	}
}

func TestPinByPrefix(t *testing.T) {
	for _, arg := range []string{"v0-bpooz", "bpooz5dn", idStorage1} {
		t.Run(arg, func(t *testing.T) {
			dir := goldenNode(t)
			r := run(t, dir, "pin", "-d", "NODEDIR", arg)
			if r.code != ExitOK {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if !strings.HasPrefix(r.stdout, "pinned "+idStorage1+" (storage-1) in NODEDIR/private/servers.yaml:16\n") {
				t.Errorf("stdout:\n%s", r.stdout)
			}
			n, err := config.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			e, _ := n.Map.Get(idStorage1)
			cached, _ := config.Merge(n.Config, n.Announced(), nil, nil)
			want, _ := cached.Get(idStorage1)
			if !e.Source.Static || !e.FURL.Equal(want.FURL) || e.Nickname != "storage-1" {
				t.Errorf("pinned entry %+v, want the cached announcement's FURL %s", e, want.FURL.Redacted())
			}
			if !slices.Equal(e.PermutationSeed, want.PermutationSeed) {
				t.Errorf("the permutation seed changed with the pin")
			}
		})
	}
}

func TestPinAmbiguous(t *testing.T) {
	dir := goldenNode(t)
	path := config.ServersPath(dir)
	before := readFile(t, path)
	for _, tc := range []struct {
		arg, want string
	}{
		{"twin", `tubfarm pin: "twin" is ambiguous: it names ` + idTwin7 + ` (twin), ` + idTwin8 + ` (twin); give more of the id` + "\n"},
		{"v0-zz", `tubfarm pin: no server has the id, id prefix or nickname "v0-zz"` + "\n"},
		{"nobody", `tubfarm pin: no server has the id, id prefix or nickname "nobody"` + "\n"},
	} {
		r := run(t, dir, "pin", "-d", "NODEDIR", tc.arg)
		if r.code != ExitFailure || r.stderr != tc.want || r.stdout != "" {
			t.Errorf("pin %s: exit %d\nstderr %q\nwant   %q", tc.arg, r.code, r.stderr, tc.want)
		}
	}
	r := run(t, dir, "pin", "-d", "NODEDIR", "v0-")
	if r.code != ExitFailure || !strings.Contains(r.stderr, `"v0-" is ambiguous`) {
		t.Errorf("pin v0-: exit %d, %s", r.code, r.stderr)
	}
	if got := readFile(t, path); got != before {
		t.Errorf("a refused pin changed servers.yaml")
	}
}

// TestPinHintRewrite checks that --hint replaces the hints in order and
// keeps the TubID and swissnum.
func TestPinHintRewrite(t *testing.T) {
	dir := goldenNode(t)
	n, _ := config.Load(dir)
	old, _ := n.Map.Get(idStorage3)
	r := run(t, dir, "pin", "-d", "NODEDIR", "storage-3", "--hint", "tor:lan-3.example:3457", "--hint", "tor:backup.example:3458")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	n, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := n.Map.Get(idStorage3)
	if e.FURL.TubID != old.FURL.TubID || e.FURL.Name != old.FURL.Name {
		t.Errorf("TubID/swissnum changed: %s -> %s", old.FURL.Redacted(), e.FURL.Redacted())
	}
	if !slices.Equal(e.FURL.Hints, []string{"tor:lan-3.example:3457", "tor:backup.example:3458"}) {
		t.Errorf("hints %v", e.FURL.Hints)
	}
	if e.Connections != nil {
		t.Errorf("connections %v, want none", e.Connections)
	}
}

// TestPinExistingEntry edits an entry that is already in servers.yaml: the
// other entry and every comment outside the edited entry keep their bytes.
func TestPinExistingEntry(t *testing.T) {
	dir := goldenNode(t)
	path := config.ServersPath(dir)
	before := readFile(t, path)
	r := run(t, dir, "pin", "-d", "NODEDIR", "storage-6", "--hint", "tcp:10.0.0.6:3457", "--connections", "tcp=tcp", "--nickname", "yes")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	golden(t, "pin-storage-6.out", r.stdout)
	after := readFile(t, path)
	golden(t, "pin-storage-6.servers.yaml", after)
	// Lines 1-9 (the header, the first entry, the comment above storage-6)
	// and the trailer are unchanged.
	bl, al := strings.SplitAfter(before, "\n"), strings.SplitAfter(after, "\n")
	if !slices.Equal(bl[:9], al[:9]) || !slices.Equal(bl[len(bl)-3:], al[len(al)-3:]) {
		t.Errorf("bytes outside the edited entry changed:\n%s", after)
	}
	n, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := n.Map.Get(idStorage6)
	if e.Nickname != "yes" || e.Connections["tcp"] != "tcp" {
		t.Errorf("storage-6 after the pin: nickname %q, connections %v", e.Nickname, e.Connections)
	}
	// Pinning again with the same flags changes nothing.
	r = run(t, dir, "pin", "-d", "NODEDIR", "yes", "--hint", "tcp:10.0.0.6:3457", "--connections", "tcp=tcp", "--nickname", "yes")
	if r.code != ExitOK || !strings.HasPrefix(r.stdout, "unchanged: ") || readFile(t, path) != after {
		t.Errorf("second identical pin: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
}

// TestPinRefused checks edits that are refused with the reason and leave
// servers.yaml as it was.
func TestPinRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		servers string // replaces servers.yaml when set
		args    []string
		want    string
	}{
		{name: "no usable hint", args: []string{"storage-2", "--hint", "tcp:10.0.0.2:3457"},
			want: "tubfarm pin: refusing to write NODEDIR/private/servers.yaml: no hint of " + idStorage2 +
				" would be usable: tcp:10.0.0.2:3457 via tor: bad hint: ignoring non-Tor-able ipaddr 10.0.0.2 (add --connections tcp=tcp to dial tcp: hints directly)\n"},
		{name: "broken servers.yaml", servers: "storage:\n  x:\n    ann: {}\n", args: []string{"storage-2"},
			want: "tubfarm pin: the node directory does not load, so pin will not edit it: config: NODEDIR/private/servers.yaml:3: storage.x.ann.anonymous-storage-FURL: ann has no anonymous-storage-FURL\n"},
		{name: "flow style", servers: "storage: {x: {ann: {anonymous-storage-FURL: 'pb://aaaa@tor:a.onion:1/s'}}}\n", args: []string{"storage-2"},
			want: "tubfarm pin: NODEDIR/private/servers.yaml: storage is written in flow style ({...}); pin edits block style only: rewrite it as a block mapping first\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := goldenNode(t)
			path := config.ServersPath(dir)
			if tc.servers != "" {
				if err := os.WriteFile(path, []byte(tc.servers), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			before := readFile(t, path)
			fi0, _ := os.Stat(path)
			r := run(t, dir, append([]string{"pin", "-d", "NODEDIR"}, tc.args...)...)
			if r.code != ExitFailure || r.stderr != tc.want {
				t.Errorf("exit %d\nstderr %q\nwant   %q", r.code, r.stderr, tc.want)
			}
			fi1, _ := os.Stat(path)
			if readFile(t, path) != before || !fi1.ModTime().Equal(fi0.ModTime()) {
				t.Errorf("servers.yaml was rewritten")
			}
			leftovers, _ := filepath.Glob(filepath.Join(dir, "private", ".servers.yaml.tmp-*"))
			if len(leftovers) > 0 {
				t.Errorf("temporary files left: %v", leftovers)
			}
		})
	}
}

// TestPinConcurrent runs pins of different servers at once: the lock
// makes each one read the file the previous one wrote, so none is lost.
func TestPinConcurrent(t *testing.T) {
	dir := goldenNode(t)
	targets := []string{idStorage1, idStorage2, idStorage3, idNAS, idTwin7, idTwin8}
	var wg sync.WaitGroup
	codes := make([]result, len(targets))
	for i, id := range targets {
		wg.Go(func() { codes[i] = run(t, dir, "pin", "-d", "NODEDIR", id) })
	}
	wg.Wait()
	for i, r := range codes {
		if r.code != ExitOK {
			t.Errorf("pin %s: exit %d: %s", targets[i], r.code, r.stderr)
		}
	}
	s, err := config.LoadServers(config.ServersPath(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range s.Servers {
		ids = append(ids, e.ID)
	}
	for _, id := range append(targets, idStorage6, "my-serverid-1") {
		if !slices.Contains(ids, id) {
			t.Errorf("%s lost: servers.yaml has %v", id, ids)
		}
	}
}

func TestUnpin(t *testing.T) {
	dir := goldenNode(t)
	path := config.ServersPath(dir)
	r := run(t, dir, "unpin", "-d", "NODEDIR", "storage-6")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	golden(t, "unpin-storage-6.out", r.stdout)
	after := readFile(t, path)
	golden(t, "unpin-storage-6.servers.yaml", after)
	n, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := n.Map.Get(idStorage6); !ok || e.Source.Static || e.Source.Chosen != "beta" {
		t.Errorf("after unpin storage-6 is %+v, want beta's announcement", e)
	}
	// Unpinning the last entry leaves "storage: {}", which Tahoe accepts
	// (it fails to start on a null storage).
	r = run(t, dir, "unpin", "-d", "NODEDIR", "lazy")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "no introducer's cache announces this server") {
		t.Errorf("no warning that my-serverid-1 is now unknown: %q", r.stderr)
	}
	want := "# Static servers: \"Static Server Definitions\" in Tahoe's configuration.rst.\nstorage: {}\n\n# end of servers\n"
	if got := readFile(t, path); got != want {
		t.Errorf("servers.yaml after unpinning everything:\n%s\nwant:\n%s", got, want)
	}
	r = run(t, dir, "unpin", "-d", "NODEDIR", "storage-2")
	if r.code != ExitFailure || r.stderr != "tubfarm unpin: no server has the id, id prefix or nickname \"storage-2\" in NODEDIR/private/servers.yaml\n" {
		t.Errorf("unpin of an announced server: exit %d, %q", r.code, r.stderr)
	}
	// Pinning into "storage: {}" makes it a block mapping again.
	r = run(t, dir, "pin", "-d", "NODEDIR", "storage-2")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got := readFile(t, path); !strings.HasPrefix(got, "# Static servers: \"Static Server Definitions\" in Tahoe's configuration.rst.\nstorage:\n  "+idStorage2+":\n") {
		t.Errorf("servers.yaml:\n%s", got)
	}
}

// TestPinNoServersYAML pins into a node directory that has no
// servers.yaml yet.
func TestPinNoServersYAML(t *testing.T) {
	dir := goldenNode(t)
	path := config.ServersPath(dir)
	os.Remove(path)
	r := run(t, dir, "pin", "-d", "NODEDIR", "storage-1", "--dry-run")
	if r.code != ExitOK || !strings.HasPrefix(r.stdout, "would have pinned ") {
		t.Fatalf("dry run: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("--dry-run wrote servers.yaml")
	}
	// A pin killed between writing and renaming left this behind.
	stale := filepath.Join(dir, "private", ".servers.yaml.tmp-123")
	os.WriteFile(stale, []byte("storage: {}\n"), 0o600)
	if r = run(t, dir, "pin", "-d", "NODEDIR", "storage-1"); r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale temporary file is still there: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("servers.yaml: %v, mode %v", err, fi.Mode())
	}
	if !strings.HasPrefix(readFile(t, path), "storage:\n  "+idStorage1+":\n    ann:\n") {
		t.Errorf("servers.yaml:\n%s", readFile(t, path))
	}
}

func TestCheckGolden(t *testing.T) {
	dir := goldenNode(t)
	r := run(t, dir, "check", "-d", "NODEDIR")
	if r.code != ExitOK || r.stderr != "" {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	golden(t, "check-node.txt", r.stdout)
}

// TestCheckBroken checks the exact messages for what Tahoe accepts
// silently: an unknown handler name, an entry without a FURL, a hint type
// no handler can dial, an override for a server no introducer announced,
// an unknown key.
func TestCheckBroken(t *testing.T) {
	dir := goldenNode(t)
	data, err := os.ReadFile("testdata/broken-servers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config.ServersPath(dir), data, 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, dir, "check", "-d", "NODEDIR")
	if r.code != ExitFailure {
		t.Errorf("exit %d, want %d", r.code, ExitFailure)
	}
	golden(t, "check-broken.txt", r.stdout)

	r = run(t, dir, "check", "--json", "-d", "NODEDIR")
	var got struct {
		Errors, Warnings int
		Findings         []finding
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != ExitFailure {
		t.Fatalf("exit %d, %v", r.code, err)
	}
	if got.Errors != 3 || got.Warnings != 5 || len(got.Findings) != 8 {
		t.Errorf("JSON: %d errors, %d warnings, %d findings; want 3, 5, 8", got.Errors, got.Warnings, len(got.Findings))
	}
}

func TestCheckTahoeCfg(t *testing.T) {
	dir := goldenNode(t)
	cfg := strings.Replace(readFile(t, config.TahoeCfgPath(dir)), "tcp = tor\n", "tcp = tor\nudp = tor\n", 1)
	os.WriteFile(config.TahoeCfgPath(dir), []byte(cfg), 0o600)
	r := run(t, dir, "check", "-d", "NODEDIR")
	want := "NODEDIR/tahoe.cfg: warning: the other files are checked with Tahoe's default settings\n" +
		"NODEDIR/tahoe.cfg:51: [connections] udp: not a valid key in [connections] (valid: tcp)\n"
	if r.code != ExitFailure || !strings.HasPrefix(r.stdout, want) {
		t.Errorf("exit %d:\n%s\nwant it to start with\n%s", r.code, r.stdout, want)
	}
}

func TestCheckNullStorage(t *testing.T) {
	dir := goldenNode(t)
	os.WriteFile(config.ServersPath(dir), []byte("# nothing yet\nstorage:\n"), 0o600)
	r := run(t, dir, "check", "-d", "NODEDIR")
	want := "NODEDIR/private/servers.yaml:2: storage: is null: Tahoe fails to start on it (it needs a mapping); write \"storage: {}\" or remove the file\n"
	if r.code != ExitFailure || !strings.Contains(r.stdout, want) {
		t.Errorf("exit %d:\n%s\nwant the line\n%s", r.code, r.stdout, want)
	}
}

func TestUsage(t *testing.T) {
	dir := goldenNode(t)
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string // prefix
		stderr string // prefix
	}{
		{args: nil, code: ExitUsage, stderr: "tubfarm: an operator's tool"},
		{args: []string{"frob"}, code: ExitUsage, stderr: "tubfarm: unknown command \"frob\"\n"},
		{args: []string{"pin", "-d", "NODEDIR"}, code: ExitUsage, stderr: "tubfarm pin: missing SERVER"},
		{args: []string{"pin", "-d", "NODEDIR", "a", "b"}, code: ExitUsage, stderr: "tubfarm pin: unexpected argument \"b\"\n"},
		{args: []string{"pin", "-d", "NODEDIR", "nas", "--connections", "tcp"}, code: ExitUsage, stderr: "tubfarm pin: --connections \"tcp\": want TYPE=HANDLER, e.g. tcp=tcp\n"},
		{args: []string{"pin", "-d", "NODEDIR", "nas", "--connections", "tcp=tpc"}, code: ExitUsage,
			stderr: "tubfarm pin: --connections \"tcp=tpc\": connections override \"tcp\": unknown handler type \"tpc\" (want tcp, tor, i2p or disabled)\n"},
		{args: []string{"pin", "-d", "NODEDIR", "nas", "--hint", "udp:1.2.3.4:5"}, code: ExitUsage, stderr: "tubfarm pin: --hint \"udp:1.2.3.4:5\": "},
		{args: []string{"check", "--bogus"}, code: ExitUsage, stderr: "tubfarm check: flag provided but not defined: -bogus\n"},
		{args: []string{"status", "-d", "NODEDIR", "--timeout", "0s"}, code: ExitUsage, stderr: "tubfarm status: --timeout 0s: must be positive\n"},
		{args: []string{"pin", "-h"}, code: ExitOK, stdout: "Usage: tubfarm pin [-d NODEDIR] SERVER"},
		{args: []string{"help", "check"}, code: ExitOK, stdout: "Usage: tubfarm check"},
		{args: []string{"version"}, code: ExitOK, stdout: "tubfarm "},
		{args: []string{"servers", "-d", "NODEDIR/nonexistent"}, code: ExitFailure, stderr: "tubfarm servers: node directory NODEDIR/nonexistent does not exist\n"},
	} {
		r := run(t, dir, tc.args...)
		if r.code != tc.code || !strings.HasPrefix(r.stdout, tc.stdout) || !strings.HasPrefix(r.stderr, tc.stderr) {
			t.Errorf("tubfarm %v: exit %d (want %d)\nstdout %q (want prefix %q)\nstderr %q (want prefix %q)", tc.args, r.code, tc.code, r.stdout, tc.stdout, r.stderr, tc.stderr)
		}
	}
	// Every subcommand's help has an example.
	for _, c := range commands {
		r := run(t, dir, c.name, "-h")
		if ex := r.stdout[strings.Index(r.stdout, "\nExample:\n")+1:]; r.code != ExitOK || !strings.HasPrefix(ex, "Example:\n") || !strings.Contains(ex, "  tubfarm "+c.name) {
			t.Errorf("tubfarm %s -h: exit %d\n%s", c.name, r.code, r.stdout)
		}
	}
}

// TestDefaultNodeDir checks that -d defaults to ~/.tahoe, as Tahoe's does.
func TestDefaultNodeDir(t *testing.T) {
	home := t.TempDir()
	if err := os.CopyFS(filepath.Join(home, ".tahoe"), os.DirFS("testdata/node")); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	}}
	if code := Run(context.Background(), []string{"servers"}, env); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if want := "8 storage servers in " + filepath.Join(home, ".tahoe") + " "; !strings.HasPrefix(out.String(), want) {
		t.Errorf("stdout %q, want prefix %q", out.String(), want)
	}
}

// TestTahoeReadsWhatPinWrites reads the servers.yaml that pin wrote with a
// Python reader that follows Tahoe 1.20's rules (testdata/tahoe_servers.py,
// run by Debian's python3 with python3-yaml) and checks that Tahoe and
// tubfarm see the same servers: TubID, hints, swissnum, nickname,
// permutation seed and the handler of each hint type.
func TestTahoeReadsWhatPinWrites(t *testing.T) {
	dir := goldenNode(t)
	for _, args := range [][]string{
		{"nas", "--hint", "tcp:192.168.1.20:3457", "--connections", "tcp=tcp"},
		{"storage-1", "--nickname", "on"},
		{"storage-2", "--nickname", "1.20", "--hint", "tor:a.example:1", "--hint", "tcp:b.example:2"},
		{"storage-3", "--connections", "tor=disabled", "--connections", "i2p=tor"},
		{idTwin7, "--nickname", "null"},
		{"storage-6", "--nickname", "# not a comment", "--connections", "tcp=disabled", "--hint", "tor:c.example:3"},
	} {
		if r := run(t, dir, append([]string{"pin", "-d", "NODEDIR"}, args...)...); r.code != ExitOK {
			t.Fatalf("pin %v: exit %d: %s", args, r.code, r.stderr)
		}
	}
	py := "/usr/bin/python3"
	cmd := exec.Command(py, "testdata/tahoe_servers.py", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s testdata/tahoe_servers.py (needs python3-yaml): %v\n%s", py, err, stderr.String())
	}
	var tahoe map[string]map[string]any
	if err := json.Unmarshal(out, &tahoe); err != nil {
		t.Fatal(err)
	}
	n, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ours := map[string]map[string]any{}
	for _, s := range n.Servers.Servers {
		handlers := map[string]any{}
		for _, k := range []hints.Kind{hints.KindTCP, hints.KindTor, hints.KindI2P} {
			h, ok := s.Policy.Handlers[k]
			if !ok || h == hints.HandlerDisabled || !s.Policy.Available[h] {
				handlers[string(k)] = nil
			} else {
				handlers[string(k)] = string(h)
			}
		}
		hs := make([]any, len(s.FURL.Hints))
		for i, h := range s.FURL.Hints {
			hs[i] = h
		}
		ours[s.ID] = map[string]any{"kind": "foolscap", "tubid": strings.ToLower(s.FURL.TubID), "hints": hs,
			"swissnum": s.FURL.Name, "nickname": s.Announcement.Nickname, "seed": hexString(s.PermutationSeed), "handlers": handlers}
	}
	if len(ours) != 7 {
		t.Errorf("tubfarm sees %d static servers, want 7", len(ours))
	}
	a, _ := json.MarshalIndent(ours, "", "  ")
	b, _ := json.MarshalIndent(tahoe, "", "  ")
	if string(a) != string(b) {
		t.Errorf("Tahoe and tubfarm read servers.yaml differently:\n--- tubfarm\n%s\n--- Tahoe 1.20 rules\n%s", a, b)
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// TestCheckWritesNothing checks that the read-only commands leave the
// node directory as it was (no node.pem, no lock file).
func TestReadOnlyCommands(t *testing.T) {
	dir := goldenNode(t)
	snapshot := func() map[string]time.Time {
		m := map[string]time.Time{}
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil {
				fi, _ := d.Info()
				m[p] = fi.ModTime()
			}
			return nil
		})
		return m
	}
	before := snapshot()
	run(t, dir, "servers", "-d", "NODEDIR")
	run(t, dir, "servers", "--json", "-d", "NODEDIR")
	run(t, dir, "check", "-d", "NODEDIR")
	after := snapshot()
	if len(before) != len(after) {
		t.Errorf("files changed: %v -> %v", before, after)
	}
	for p, m := range before {
		if !after[p].Equal(m) {
			t.Errorf("%s was modified", p)
		}
	}
}

// TestStatusOnceNotConnected runs status --once where no server can be
// reached (the Tor SOCKS port refuses): the JSON report on stdout, exit 1,
// and nothing written in the node directory (not even node.pem).
func TestStatusOnceNotConnected(t *testing.T) {
	dir := goldenNode(t)
	cfg := strings.Replace(readFile(t, config.TahoeCfgPath(dir)), "socks.port = tcp:127.0.0.1:9050", "socks.port = tcp:"+nettest.RefusedAddr(t), 1)
	if err := os.WriteFile(config.TahoeCfgPath(dir), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, dir, "status", "--once", "--timeout", "1s", "-d", "NODEDIR")
	if r.code != ExitFailure || !strings.HasSuffix(r.stderr, "tubfarm status: 0 of 8 servers connected after 1s\n") {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	var rep status.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Total != 8 || rep.Connected != 0 {
		t.Errorf("report: %v, %d of %d connected", err, rep.Connected, rep.Total)
	}
	if _, err := os.Stat(config.NodePEMPath(dir)); !os.IsNotExist(err) {
		t.Errorf("status created node.pem: %v", err)
	}
}

// TestPeerTextEscaped puts control characters, an ANSI sequence and a bidi
// override in a cached nickname (a server chooses it): no command prints
// them raw.
func TestPeerTextEscaped(t *testing.T) {
	dir := goldenNode(t)
	path := config.CachePath(dir, "alpha")
	data := strings.Replace(readFile(t, path), "nickname: storage-1", `nickname: "evil\e]0;owned\a\u202Efiles\x9b2J"`, 1)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"servers", "-d", "NODEDIR"},
		{"servers", "--json", "-d", "NODEDIR"},
		{"check", "--json", "-d", "NODEDIR"},
		{"pin", "--dry-run", "-d", "NODEDIR", idStorage1},
	} {
		r := run(t, dir, args...)
		if r.code != ExitOK {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
		for _, out := range []string{r.stdout, r.stderr} {
			for _, c := range out {
				if c != '\n' && (c < 0x20 || c >= 0x7f && c <= 0x9f || c == '\u202e') {
					t.Fatalf("%v printed %U:\n%q", args, c, out)
				}
			}
		}
		if args[1] != "--json" && !strings.Contains(r.stdout, `evil\x1b]0;owned\x07`) {
			t.Errorf("%v: the nickname is not shown escaped:\n%s", args, r.stdout)
		}
	}
}

// TestStatusLive runs status without --once on a pipe (not a terminal):
// plain lines, no escape sequence, the status page served on --http,
// until interrupted.
func TestStatusLive(t *testing.T) {
	dir := goldenNode(t)
	cfg := strings.Replace(readFile(t, config.TahoeCfgPath(dir)), "socks.port = tcp:127.0.0.1:9050", "socks.port = tcp:"+nettest.RefusedAddr(t), 1)
	os.WriteFile(config.TahoeCfgPath(dir), []byte(cfg), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"status", "-d", dir, "--timeout", "200ms", "--http", "127.0.0.1:0"}, Env{Stdout: pw, Stderr: &stderr})
		pw.Close()
	}()
	var out strings.Builder
	sc := bufio.NewScanner(pr)
	url := ""
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if _, u, ok := strings.Cut(line, "status page: "); ok && url == "" {
			url, _, _ = strings.Cut(u, " ")
		}
		if strings.HasPrefix(line, "ready: status page at ") {
			resp, err := http.Get(url + "status?t=json")
			if err != nil {
				t.Fatal(err)
			}
			var rep status.Report
			err = json.NewDecoder(resp.Body).Decode(&rep)
			resp.Body.Close()
			if err != nil || rep.Total != 8 {
				t.Errorf("status JSON from %s: %v, total %d", url, err, rep.Total)
			}
			cancel()
		}
	}
	if code := <-done; code != ExitOK {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
	got := out.String()
	if strings.ContainsRune(got, '\x1b') {
		t.Errorf("escape sequences on a non-terminal:\n%q", got)
	}
	for _, want := range []string{"tubfarm status of " + dir + " (node operator)\n", "connecting: [........................] 0 of 8 servers connected",
		"Connected to 0 of 8 known storage servers\n", "  NICKNAME  ", "shutting down\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

// TestPinFreshNode pins into a node directory that has only tahoe.cfg and
// the caches' directory is missing: errors are clear, and a node without
// private/ gets one.
func TestPinFreshNode(t *testing.T) {
	r := run(t, "", "pin", "-d", filepath.Join(t.TempDir(), "nope"), "x")
	if r.code != ExitFailure || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("missing node dir: exit %d, %q", r.code, r.stderr)
	}
	dir := t.TempDir()
	os.WriteFile(config.TahoeCfgPath(dir), []byte("[node]\nnickname = fresh\n"), 0o600)
	r = run(t, dir, "pin", "-d", "NODEDIR", "x")
	if r.code != ExitFailure || r.stderr != "tubfarm pin: no server has the id, id prefix or nickname \"x\"\n" {
		t.Errorf("empty node: exit %d, %q", r.code, r.stderr)
	}
	if fi, err := os.Stat(filepath.Join(dir, "private")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("private/: %v", err)
	}
}

func TestCheckBadNURL(t *testing.T) {
	dir := goldenNode(t)
	path := config.CachePath(dir, "beta")
	data := readFile(t, path)
	i := strings.Index(data, "    - pb+tor://")
	j := i + strings.Index(data[i:], "\n")
	if err := os.WriteFile(path, []byte(data[:i]+"    - pb+tor://short@x.onion:1/abc#v=1"+data[j:]), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, dir, "check", "-d", "NODEDIR")
	want := "NODEDIR/private/introducer_beta_cache.yaml:25: anonymous-storage-NURLs: warning: "
	if r.code != ExitOK || !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "certificate hash is not 43 characters (this NURL is left out)\n") {
		t.Errorf("exit %d:\n%s\nwant a line starting %q", r.code, r.stdout, want)
	}
}

func TestCheckNodePEM(t *testing.T) {
	dir := goldenNode(t)
	pem := config.NodePEMPath(dir)
	os.WriteFile(pem, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o600)
	r := run(t, dir, "check", "-d", "NODEDIR")
	if r.code != ExitFailure || !strings.Contains(r.stdout, "NODEDIR/private/node.pem: ") {
		t.Errorf("broken node.pem: exit %d\n%s", r.code, r.stdout)
	}
	os.Remove(pem)
	if _, err := config.LoadIdentity(dir); err != nil {
		t.Fatal(err)
	}
	os.Chmod(pem, 0o644)
	r = run(t, dir, "check", "-d", "NODEDIR")
	want := "NODEDIR/private/node.pem: warning: mode 0644: others may read the node's private key (chmod 600)\n"
	if r.code != ExitOK || !strings.Contains(r.stdout, want) {
		t.Errorf("readable node.pem: exit %d\n%s\nwant the line %q", r.code, r.stdout, want)
	}
}
