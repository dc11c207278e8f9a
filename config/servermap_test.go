package config

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/tubfarm/tubfarm/hints"
)

// tcpTorCfg is the "Tor-mostly client" of docs/tahoe-node-files.md §4.
func tcpTorCfg(t testing.TB) *TahoeConfig {
	t.Helper()
	c, err := ParseTahoeConfig("tahoe.cfg", []byte("[connections]\ntcp = tor\n"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestServersExample loads the servers.yaml example of docs/tahoe-node-files.md §4
// verbatim.
func TestServersExample(t *testing.T) {
	s, err := LoadServers("testdata/good/servers.yaml", tcpTorCfg(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Servers) != 2 {
		t.Fatalf("servers: %+v", s.Servers)
	}
	// Sorted by id: "my-serverid-2" < "v0-…".
	lazy, lan := s.Servers[0], s.Servers[1]
	if lan.ID != "v0-c2ng2pbrmxmlwpijn3mr72ckk5fmzk6uxf6nhowyosaubrt6y5mq" || lan.Line != 3 ||
		lan.Announcement.Nickname != "my-server-1" || lan.FURL.TubID != "u33m4y7klhz3bypswqkozwetvabelhxt" ||
		!reflect.DeepEqual(lan.Connections, map[string]string{"tcp": "tcp"}) {
		t.Errorf("LAN server %+v", lan)
	}
	if lan.Policy.Handlers[hints.KindTCP] != hints.HandlerTCP || !lan.Policy.Overridden[hints.KindTCP] {
		t.Errorf("LAN server policy %+v", lan.Policy)
	}
	if lazy.ID != "my-serverid-2" || lazy.Connections != nil || lazy.Policy.Handlers[hints.KindTCP] != hints.HandlerTor {
		t.Errorf("lazy server %+v", lazy)
	}
	// Seed rule: v0- id decodes; arbitrary id hashes, with a note.
	key, _ := decodeBase32("c2ng2pbrmxmlwpijn3mr72ckk5fmzk6uxf6nhowyosaubrt6y5mq")
	h := sha256.Sum256([]byte("my-serverid-2"))
	if !bytes.Equal(lan.PermutationSeed, key) || !bytes.Equal(lazy.PermutationSeed, h[:]) {
		t.Errorf("seeds %x %x", lan.PermutationSeed, lazy.PermutationSeed)
	}
	if len(s.Notes) != 1 || s.Notes[0].Error() != "config: testdata/good/servers.yaml:9: storage.my-serverid-2: "+
		"server id is not a v0- key and ann has no permutation-seed-base32: the permutation seed is sha256(id), which may not converge with other clients" {
		t.Errorf("notes %v", s.Notes)
	}
}

func TestPermutationSeed(t *testing.T) {
	ann := func(m map[string]any) Announcement {
		a, err := NewAnnouncement(m)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	key := "v0-c2ng2pbrmxmlwpijn3mr72ckk5fmzk6uxf6nhowyosaubrt6y5mq"
	keyBytes, _ := decodeBase32(key[3:])
	seedBytes, _ := decodeBase32("wjhyhkvbpfhxgrkg6wzcjuumsa")
	hashed := sha256.Sum256([]byte("lazy"))
	tests := []struct {
		name string
		id   string
		ann  Announcement
		want []byte
		err  error
	}{
		{"seed field wins", key, ann(map[string]any{FieldPermutationSeed: "wjhyhkvbpfhxgrkg6wzcjuumsa"}), seedBytes, nil},
		{"v0 key", key, ann(nil), keyBytes, nil},
		{"arbitrary id", "lazy", ann(nil), hashed[:], nil},
		{"empty seed field", "lazy", ann(map[string]any{FieldPermutationSeed: ""}), []byte{}, nil},
		{"bad seed", key, ann(map[string]any{FieldPermutationSeed: "wjhyhkvbpfhxgrkg6wzcjuumsb"}), nil, ErrInvalidValue},
		{"uppercase key", "v0-C2NG2PBRMXMLWPIJN3MR72CKK5FMZK6UXF6NHOWYOSAUBRT6Y5MQ", ann(nil), nil, ErrInvalidValue},
	}
	for _, tt := range tests {
		got, err := PermutationSeed(tt.id, tt.ann)
		if !errors.Is(err, tt.err) || (tt.err == nil && !bytes.Equal(got, tt.want)) {
			t.Errorf("%s: got %x, %v; want %x, %v", tt.name, got, err, tt.want, tt.err)
		}
	}
}

func TestServersNotesAndOverrides(t *testing.T) {
	key := FormatServerKey(testKey(1).Public().(ed25519.PublicKey))
	data := "version: 2\nstorage:\n  " + key + ":\n    ann:\n      anonymous-storage-FURL: " + furlA +
		"\n    connections: {tcp: disabled, i2p: DISABLED}\n    comment: hi\n"
	cfg, err := ParseTahoeConfig("tahoe.cfg", []byte(hideIPExample))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseServers("servers.yaml", []byte(data), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`config: servers.yaml:1: version: top-level key ignored (only "storage" is read)`,
		"config: servers.yaml:7: storage." + key + ".comment: key ignored (only ann and connections are read)",
	}
	if len(s.Notes) != 2 || s.Notes[0].Error() != want[0] || s.Notes[1].Error() != want[1] {
		t.Errorf("notes %v", s.Notes)
	}
	p := s.Servers[0].Policy
	if p.Handlers[hints.KindTCP] != hints.HandlerDisabled || p.Handlers[hints.KindI2P] != hints.HandlerDisabled || p.RevealIP {
		t.Errorf("policy %+v", p)
	}
	// "storage:" with nothing under it is no servers; no storage key too.
	for _, in := range []string{"storage:\n", "other: 1\n"} {
		s, err := ParseServers("servers.yaml", []byte(in), nil)
		if err != nil || len(s.Servers) != 0 {
			t.Errorf("%q: %v %v", in, s, err)
		}
	}
}

// ann builds an Announced for server k from introducer intro.
func announced(t testing.TB, intro string, k byte, seq int64, nonce, furl string, verified bool) Announced {
	t.Helper()
	a, err := NewAnnouncement(storageAnn("server", seq, nonce, furl))
	if err != nil {
		t.Fatal(err)
	}
	return Announced{Introducer: intro, Key: FormatServerKey(testKey(k).Public().(ed25519.PublicKey)), Announcement: a, Verified: verified}
}

func TestMergeSeqnumAcrossIntroducers(t *testing.T) {
	a7 := announced(t, "alpha", 1, 7, "n-alpha", furlA, true)
	b8 := announced(t, "beta", 1, 8, "n-beta", furlA, true)
	c6 := announced(t, "gamma", 1, 6, "n-gamma", furlB, false)
	// Every arrival order gives the same result: beta's seqnum 8.
	for _, order := range [][]Announced{{a7, b8, c6}, {b8, a7, c6}, {c6, b8, a7}, {c6, a7, b8}} {
		m, dropped := Merge(nil, order, nil, nil)
		if len(dropped) != 0 || m.Len() != 1 {
			t.Fatalf("map %d dropped %v", m.Len(), dropped)
		}
		e, _ := m.Get(a7.Key)
		if e.Announcement.Seqnum != 8 || e.Source.Chosen != "beta" || !e.Source.Verified || e.Source.Static ||
			!slices.Equal(e.Source.Introducers, []string{"alpha", "beta", "gamma"}) || e.FURL.String() != furlA {
			t.Errorf("entry %+v", e)
		}
	}
}

func TestMergeNoChurn(t *testing.T) {
	// The same server re-announced via two introducers with different
	// seqnum and nonce but the same FURL: the maps differ in the chosen
	// announcement but Diff reports no change.
	a7 := announced(t, "alpha", 1, 7, "n1", furlA, true)
	b8 := announced(t, "beta", 1, 8, "n2", furlA, true)
	m1, _ := Merge(nil, []Announced{a7}, nil, nil)
	m2, _ := Merge(nil, []Announced{a7, b8}, nil, m1)
	if added, removed, changed := m2.Diff(m1); len(added)+len(removed)+len(changed) != 0 {
		t.Errorf("diff %v %v %v", added, removed, changed)
	}
	// Equal seqnum, different nonce: the announcement already in use is
	// kept, whichever introducer sorts first.
	b7 := announced(t, "beta", 1, 7, "n3", furlA, true)
	prev, _ := Merge(nil, []Announced{b7}, nil, nil)
	m3, _ := Merge(nil, []Announced{a7, b7}, nil, prev)
	if e, _ := m3.Get(a7.Key); e.Source.Chosen != "beta" || e.Announcement.Nonce != "n3" {
		t.Errorf("kept %+v", e.Source)
	}
	// Without a previous map the tie-break is deterministic: verified
	// first, then petname.
	u7 := announced(t, "aaa", 1, 7, "n4", furlA, false)
	for _, order := range [][]Announced{{u7, a7, b7}, {b7, a7, u7}} {
		m, _ := Merge(nil, order, nil, nil)
		if e, _ := m.Get(a7.Key); e.Source.Chosen != "alpha" {
			t.Errorf("tie-break chose %q", e.Source.Chosen)
		}
	}
	// A real change (new FURL) is reported.
	c9 := announced(t, "alpha", 1, 9, "n5", furlB, true)
	m4, _ := Merge(nil, []Announced{a7, b8, c9}, nil, m2)
	if _, _, changed := m4.Diff(m2); !slices.Equal(changed, []string{a7.Key}) {
		t.Errorf("changed %v", changed)
	}
}

func TestMergeStaticOverrideWins(t *testing.T) {
	k := FormatServerKey(testKey(1).Public().(ed25519.PublicKey))
	static, err := ParseServers("servers.yaml", []byte("storage:\n  "+k+":\n    ann:\n      nickname: pinned\n      anonymous-storage-FURL: "+furlB+
		"\n    connections: {tcp: tor}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	newer := announced(t, "alpha", 1, 1000, "n", furlA, true)
	other := announced(t, "beta", 2, 1, "n", furlA, true)
	nonStorage := other
	nonStorage.Key = FormatServerKey(testKey(3).Public().(ed25519.PublicKey))
	nonStorage.Announcement, _ = NewAnnouncement(map[string]any{"service-name": "introducer", "anonymous-storage-FURL": furlA})
	m, dropped := Merge(nil, []Announced{newer, other, nonStorage}, static, nil)
	if len(dropped) != 0 || m.Len() != 2 {
		t.Fatalf("map %v dropped %v", m.IDs(), dropped)
	}
	e, _ := m.Get(k)
	if !e.Source.Static || e.Source.Path != "servers.yaml" || e.Source.Line != 2 || e.Nickname != "pinned" ||
		e.FURL.String() != furlB || e.Source.Chosen != "" || !slices.Equal(e.Source.Introducers, []string{"alpha"}) ||
		!reflect.DeepEqual(e.Connections, map[string]string{"tcp": "tor"}) || e.Policy.Handlers[hints.KindTCP] != hints.HandlerTor {
		t.Errorf("static entry %+v", e)
	}
	// Removing the override later makes the announcement take over.
	m2, _ := Merge(nil, []Announced{newer, other}, nil, m)
	if _, _, changed := m2.Diff(m); !slices.Equal(changed, []string{k}) {
		t.Errorf("changed %v", changed)
	}
	// Entries returned are copies: mutating one does not affect the map.
	e.Connections["tcp"] = "tcp"
	e.Source.Introducers[0] = "mallory"
	if again, _ := m.Get(k); again.Connections["tcp"] != "tor" || again.Source.Introducers[0] != "alpha" {
		t.Error("ServerMap entry was mutated through a returned copy")
	}
}

func TestMergeDropsBadAnnouncements(t *testing.T) {
	good := announced(t, "alpha", 1, 1, "n", furlA, true)
	newerBad := announced(t, "beta", 1, 2, "n", "pb://nope", true)
	noFURL := announced(t, "alpha", 2, 1, "n", furlA, true)
	noFURL.Announcement, _ = NewAnnouncement(map[string]any{"service-name": "storage"})
	badKey := good
	badKey.Key = "v0-short"
	m, dropped := Merge(nil, []Announced{good, newerBad, noFURL, badKey}, nil, nil)
	if m.Len() != 1 {
		t.Fatalf("ids %v", m.IDs())
	}
	if e, _ := m.Get(good.Key); e.Announcement.Seqnum != 1 {
		t.Errorf("invalid newer announcement should not win: %+v", e)
	}
	if len(dropped) != 3 {
		t.Fatalf("dropped %v", dropped)
	}
	var ae *AnnouncementError
	if !errors.As(dropped[0], &ae) || ae.Introducer != "beta" || !errors.Is(dropped[0], ErrInvalidValue) {
		t.Errorf("dropped[0] %v", dropped[0])
	}
	if !errors.Is(dropped[1], ErrMissing) || !errors.Is(dropped[2], ErrInvalidValue) {
		t.Errorf("dropped %v", dropped)
	}
}

func TestDiff(t *testing.T) {
	a := announced(t, "i", 1, 1, "n", furlA, true)
	b := announced(t, "i", 2, 1, "n", furlA, true)
	c := announced(t, "i", 3, 1, "n", furlA, true)
	c2 := announced(t, "i", 3, 2, "n", furlB, true)
	old, _ := Merge(nil, []Announced{a, b, c}, nil, nil)
	d := announced(t, "i", 4, 1, "n", furlA, true)
	cur, _ := Merge(nil, []Announced{b, c2, d}, nil, old)
	added, removed, changed := cur.Diff(old)
	if !slices.Equal(added, []string{d.Key}) || !slices.Equal(removed, []string{a.Key}) || !slices.Equal(changed, []string{c.Key}) {
		t.Errorf("added %v removed %v changed %v", added, removed, changed)
	}
	var nilMap *ServerMap
	if added, removed, _ := cur.Diff(nil); len(added) != 3 || len(removed) != 0 {
		t.Errorf("diff against nil: %v %v", added, removed)
	}
	if added, removed, _ := nilMap.Diff(cur); len(added) != 0 || len(removed) != 3 || nilMap.Len() != 0 {
		t.Errorf("nil diff: %v %v", added, removed)
	}
	// Policy change alone is a change.
	cfg := tcpTorCfg(t)
	torMap, _ := Merge(cfg, []Announced{b, c2, d}, nil, nil)
	if _, _, changed := torMap.Diff(cur); len(changed) != 3 {
		t.Errorf("policy change: changed %v", changed)
	}
	n := 0
	for e := range cur.All() {
		if e.ID != cur.IDs()[n] {
			t.Errorf("All out of order at %d", n)
		}
		n++
	}
	if n != 3 {
		t.Errorf("All yielded %d", n)
	}
}

// writeNode creates a node directory from name -> content.
func writeNode(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadNode(t *testing.T) {
	tahoeCache, _ := os.ReadFile("testdata/good/tahoe_cache.yaml")
	servers, _ := os.ReadFile("testdata/good/servers.yaml")
	s := mustSign(t, testKey(1), storageAnn("signed", 5, "n", furlB))
	signedCache, err := MarshalCache([]CacheEntry{{Signed: &s}})
	if err != nil {
		t.Fatal(err)
	}
	dir := writeNode(t, map[string]string{
		"tahoe.cfg":                             "[connections]\ntcp = tor\n" + oldIntroducerExample,
		"private/introducers.yaml":              "introducers:\n  grid:\n    furl: pb://ok45ssoklj4y7eok5c3xkmj@tcp:b:1/x\n",
		"private/introducer_default_cache.yaml": string(signedCache),
		"private/introducer_grid_cache.yaml":    string(tahoeCache),
		"private/servers.yaml":                  string(servers),
		"private/introducer_unknown_cache.yaml": "not read",
	})
	n, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Introducers) != 2 || n.Introducers[0].Petname != "default" || n.Introducers[1].Petname != "grid" {
		t.Errorf("introducers %+v", n.Introducers)
	}
	// The tahoe cache's server is overridden by servers.yaml (same id);
	// the signed one comes from "default".
	if !slices.Equal(n.Map.IDs(), []string{"my-serverid-2", "v0-c2ng2pbrmxmlwpijn3mr72ckk5fmzk6uxf6nhowyosaubrt6y5mq", s.Key}) {
		t.Fatalf("ids %v", n.Map.IDs())
	}
	if e, _ := n.Map.Get("v0-c2ng2pbrmxmlwpijn3mr72ckk5fmzk6uxf6nhowyosaubrt6y5mq"); !e.Source.Static ||
		!slices.Equal(e.Source.Introducers, []string{"grid"}) || e.Nickname != "my-server-1" {
		t.Errorf("override entry %+v", e)
	}
	if e, _ := n.Map.Get(s.Key); e.Source.Chosen != "default" || !e.Source.Verified {
		t.Errorf("signed entry %+v", e)
	}
	if len(n.Warnings) != 1 { // the sha256-seed note for my-serverid-2
		t.Errorf("warnings %v", n.Warnings)
	}
	if n.Identity != nil {
		t.Error("Load must not load or create node.pem")
	}
	if _, err := os.Stat(NodePEMPath(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load created node.pem: %v", err)
	}

	// A broken servers.yaml: reload fails, the old Node is untouched.
	if err := os.WriteFile(ServersPath(dir), []byte("storage:\n  x:\n    ann: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := n.ReloadServers(); !errors.Is(err, ErrMissing) {
		t.Errorf("reload error %v", err)
	}
	if _, err := Load(dir); !errors.Is(err, ErrMissing) {
		t.Errorf("load error %v", err)
	}
	if n.Map.Len() != 3 {
		t.Error("old map changed")
	}
	// Removing servers.yaml: the announced server comes back.
	os.Remove(ServersPath(dir))
	n2, err := n.ReloadServers()
	if err != nil {
		t.Fatal(err)
	}
	added, removed, changed := n2.Map.Diff(n.Map)
	if len(added) != 0 || !slices.Equal(removed, []string{"my-serverid-2"}) ||
		!slices.Equal(changed, []string{"v0-c2ng2pbrmxmlwpijn3mr72ckk5fmzk6uxf6nhowyosaubrt6y5mq"}) {
		t.Errorf("diff %v %v %v", added, removed, changed)
	}

	// Open creates and then reloads the identity.
	o1, err := Open(dir)
	if err != nil || o1.Identity == nil {
		t.Fatalf("open: %v", err)
	}
	o2, err := Open(dir)
	if err != nil || o2.Identity.TubID != o1.Identity.TubID {
		t.Errorf("second open: %v, tubid %v vs %v", err, o2.Identity, o1.Identity)
	}
}

func TestLoadNodeErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		class error
	}{
		{"bad tahoe.cfg", map[string]string{"tahoe.cfg": "[node]\nbogus = 1\n"}, ErrUnknownKey},
		{"default twice", map[string]string{"tahoe.cfg": oldIntroducerExample,
			"private/introducers.yaml": "introducers:\n  default:\n    furl: pb://ok45ssoklj4y7eok5c3xkmj@tcp:b:1/x\n"}, ErrConflict},
		{"empty introducers.yaml", map[string]string{"private/introducers.yaml": ""}, ErrEmptyDocument},
		{"bad servers.yaml", map[string]string{"private/servers.yaml": "storage: [1]\n"}, ErrType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeNode(t, tt.files))
			if !errors.Is(err, tt.class) {
				t.Errorf("error %v, want %v", err, tt.class)
			}
		})
	}
	// A broken cache is only a warning.
	n, err := Load(writeNode(t, map[string]string{
		"private/introducers.yaml":           "introducers:\n  grid:\n    furl: pb://ok45ssoklj4y7eok5c3xkmj@tcp:b:1/x\n",
		"private/introducer_grid_cache.yaml": "{not: a list}\n",
	}))
	if err != nil || len(n.Warnings) != 1 || !errors.Is(n.Warnings[0], ErrType) {
		t.Errorf("broken cache: %v, warnings %v", err, n.Warnings)
	}
}
