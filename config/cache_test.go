package config

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tubfarm/tubfarm/internal/pyfoolscap"
)

// testKey returns a deterministic Ed25519 key for server n.
func testKey(n byte) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte{'k', n})
	return ed25519.NewKeyFromSeed(seed[:])
}

// storageAnn returns a storage announcement dictionary.
func storageAnn(nick string, seqnum int64, nonce, furl string) map[string]any {
	return map[string]any{
		"anonymous-storage-FURL": furl, "app-versions": []any{}, "my-version": "tahoe-lafs/1.20.0",
		"nickname": nick, "nonce": nonce, "oldest-supported": "tahoe-lafs/1.0.0",
		"seqnum": seqnum, "service-name": "storage", "version": 0,
	}
}

const (
	furlA = "pb://u33m4y7klhz3bypswqkozwetvabelhxt@tcp:8.8.8.8:51298/eiu2i7p6d6mm4ihmss7ieou5hac3wn6b"
	furlB = "pb://62ubehyunnyhzs7r6vdonnm2hpi52w6y@tor:abcxyz.onion:3457/storage"
)

func mustSign(t testing.TB, k ed25519.PrivateKey, fields map[string]any) Signed {
	t.Helper()
	s, err := Sign(k, fields)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTahoeCacheLoads loads the cache example of docs/tahoe-node-files.md §3
// verbatim: unsigned, so unverified, but usable.
func TestTahoeCacheLoads(t *testing.T) {
	c, err := ReadCache("testdata/good/tahoe_cache.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Entries) != 1 || len(c.Dropped) != 0 {
		t.Fatalf("entries %d dropped %v", len(c.Entries), c.Dropped)
	}
	e := c.Entries[0]
	a := e.Announcement
	if e.Key != "v0-c2ng2pbrmxmlwpijn3mr72ckk5fmzk6uxf6nhowyosaubrt6y5mq" || e.Verified() || e.Line != 1 ||
		a.Nickname != "server-1" || a.Seqnum != 7 || !a.HasSeqnum || a.ServiceName != "storage" || a.FURL != furlA ||
		a.PermutationSeedBase32 != "wjhyhkvbpfhxgrkg6wzcjuumsa" || a.Nonce != "4uazse3xb6uu5qpkb7tel2bm6bpea4jhuigdhqcuvvse7hugtsia" {
		t.Errorf("entry %+v", e)
	}
	if v, _ := a.Field("version"); v != int64(0) {
		t.Errorf("version = %#v", v)
	}
	if v, _ := a.Field("app-versions"); v == nil || len(v.([]any)) != 0 {
		t.Errorf("app-versions = %#v", v)
	}
	// Missing cache: empty, not an error.
	c, err = ReadCache(filepath.Join(t.TempDir(), "introducer_x_cache.yaml"))
	if err != nil || len(c.Entries) != 0 {
		t.Errorf("missing cache: %v %v", c, err)
	}
}

func TestSignVerify(t *testing.T) {
	k := testKey(1)
	s := mustSign(t, k, storageAnn("s1", 3, "n", furlA))
	if s.Key != FormatServerKey(k.Public().(ed25519.PublicKey)) || !strings.HasPrefix(s.Sig, "v0-") || len(s.Key) != 55 {
		t.Fatalf("signed %+v", s)
	}
	a, err := VerifyAnnouncement(s.Msg, s.Sig, s.Key)
	if err != nil || a.Nickname != "s1" || a.Seqnum != 3 {
		t.Fatalf("verify: %+v %v", a, err)
	}
	other := FormatServerKey(testKey(2).Public().(ed25519.PublicKey))
	tampered := bytes.Replace(s.Msg, []byte(`"s1"`), []byte(`"s2"`), 1)
	tests := []struct {
		name     string
		msg      []byte
		sig, key string
		class    error
		msg2     string
	}{
		{"no sig", s.Msg, "", s.Key, ErrUnknownKeyType, "only signed announcements recognized"},
		{"no key", s.Msg, s.Sig, "", ErrUnknownKeyType, "only signed announcements recognized"},
		{"v1 sig", s.Msg, "v1-" + s.Sig[3:], s.Key, ErrUnknownKeyType, "only v0- signatures recognized"},
		{"v1 key", s.Msg, s.Sig, "v1-" + s.Key[3:], ErrUnknownKeyType, "only v0- keys recognized"},
		{"wrong key", s.Msg, s.Sig, other, ErrBadSignature, "Ed25519 signature does not verify for key " + other},
		{"tampered msg", tampered, s.Sig, s.Key, ErrBadSignature, "Ed25519 signature does not verify for key " + s.Key},
		{"short sig", s.Msg, "v0-aaaa", s.Key, ErrBadSignature, "signature is not v0- followed by base32 of 64 bytes"},
		{"bad key", s.Msg, s.Sig, "v0-abc", ErrInvalidValue, `server key "v0-abc" is not v0- followed by 52 base32 characters`},
	}
	for _, tt := range tests {
		_, err := VerifyAnnouncement(tt.msg, tt.sig, tt.key)
		if !errors.Is(err, tt.class) || err.Error() != tt.msg2 {
			t.Errorf("%s: error %v, want %v %q", tt.name, err, tt.class, tt.msg2)
		}
	}
	// A signed message that is not a JSON object.
	pub := testKey(3)
	sig := "v0-" + base32Enc.EncodeToString(ed25519.Sign(pub, []byte("[1]")))
	if _, err := VerifyAnnouncement([]byte("[1]"), sig, FormatServerKey(pub.Public().(ed25519.PublicKey))); !errors.Is(err, ErrType) {
		t.Errorf("non-object message: %v", err)
	}
}

func TestSignedCacheRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "introducer_grid_cache.yaml")
	s1 := mustSign(t, testKey(1), storageAnn("s1", 3, "n1", furlA))
	s2 := mustSign(t, testKey(2), storageAnn("s2 \"quoted\" ünïcode: yes", 9, "n2", furlB))
	tahoe, err := ReadCache("testdata/good/tahoe_cache.yaml")
	if err != nil {
		t.Fatal(err)
	}
	entries := []CacheEntry{{Key: s1.Key, Signed: &s1}, {Signed: &s2}, tahoe.Entries[0]}
	if err := WriteCache(path, entries); err != nil {
		t.Fatal(err)
	}
	c, err := ReadCache(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Entries) != 3 || len(c.Dropped) != 0 {
		t.Fatalf("entries %d dropped %v", len(c.Entries), c.Dropped)
	}
	for i, want := range []struct {
		key      string
		verified bool
		nick     string
	}{{s1.Key, true, "s1"}, {s2.Key, true, "s2 \"quoted\" ünïcode: yes"}, {tahoe.Entries[0].Key, false, "server-1"}} {
		e := c.Entries[i]
		if e.Key != want.key || e.Verified() != want.verified || e.Announcement.Nickname != want.nick {
			t.Errorf("entry %d: %+v", i, e)
		}
	}
	if !bytes.Equal(c.Entries[1].Signed.Msg, s2.Msg) || c.Entries[1].Signed.Sig != s2.Sig {
		t.Error("signed form not preserved byte for byte")
	}
	if !c.Entries[2].Announcement.Equal(tahoe.Entries[0].Announcement) {
		t.Error("unsigned announcement changed in round trip")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v", fi.Mode(), err)
	}
}

func TestTamperedCacheEntryDropped(t *testing.T) {
	s1 := mustSign(t, testKey(1), storageAnn("s1", 3, "n1", furlA))
	s2 := mustSign(t, testKey(2), storageAnn("s2", 4, "n2", furlB))
	data, err := MarshalCache([]CacheEntry{{Signed: &s1}, {Signed: &s2}})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ann edited", func(t *testing.T) {
		// Change the FURL in s2's ann (an attacker redirecting the server)
		// but not the signed msg.
		bad := bytes.Replace(data, []byte("anonymous-storage-FURL: "+furlB), []byte("anonymous-storage-FURL: "+furlA), 1)
		if bytes.Equal(bad, data) {
			t.Fatal("fixture did not change")
		}
		c, err := ParseCache("c.yaml", bad)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Entries) != 1 || c.Entries[0].Key != s1.Key || len(c.Dropped) != 1 {
			t.Fatalf("entries %+v dropped %v", c.Entries, c.Dropped)
		}
		if !errors.Is(c.Dropped[0], ErrBadSignature) || !strings.Contains(c.Dropped[0].Error(), "[1].ann: ann differs from the signed msg") {
			t.Errorf("dropped: %v", c.Dropped[0])
		}
	})
	t.Run("msg edited", func(t *testing.T) {
		bad := bytes.Replace(data, []byte(`"nickname":"s2"`), []byte(`"nickname":"s3"`), 1)
		if bytes.Equal(bad, data) {
			t.Fatalf("fixture did not change:\n%s", data)
		}
		c, err := ParseCache("c.yaml", bad)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Entries) != 1 || len(c.Dropped) != 1 || !errors.Is(c.Dropped[0], ErrBadSignature) {
			t.Fatalf("entries %d dropped %v", len(c.Entries), c.Dropped)
		}
		var fe *FileError
		if !errors.As(c.Dropped[0], &fe) || fe.Line == 0 || fe.Field != "[1].sig" {
			t.Errorf("dropped error %#v should name the line and [1].sig", c.Dropped[0])
		}
	})
	t.Run("bad entries", func(t *testing.T) {
		c, err := ParseCache("c.yaml", []byte("- just a string\n- ann: {}\n- key_s: v0-x\n  ann: {}\n"+
			"- key_s: "+s1.Key+"\n  ann: {seqnum: x}\n- key_s: "+s1.Key+"\n  ann: {}\n  sig: "+s1.Sig+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"config: c.yaml:1: [0]: must be a mapping, not a string",
			"config: c.yaml:2: [1].key_s: entry has no key_s",
			`config: c.yaml:3: [2].key_s: server key "v0-x" is not v0- followed by 52 base32 characters`,
			"config: c.yaml:6: [3].ann.seqnum: must be an integer, not a string",
			"config: c.yaml:9: [4]: entry has only one of msg and sig",
		}
		if len(c.Entries) != 0 || len(c.Dropped) != len(want) {
			t.Fatalf("entries %d dropped %v", len(c.Entries), c.Dropped)
		}
		for i, w := range want {
			if c.Dropped[i].Error() != w {
				t.Errorf("dropped[%d]\n got %v\nwant %s", i, c.Dropped[i], w)
			}
		}
	})
}

func TestMarshalCacheRejects(t *testing.T) {
	s1 := mustSign(t, testKey(1), storageAnn("s1", 3, "n1", furlA))
	other, _ := NewAnnouncement(storageAnn("other", 3, "n1", furlA))
	forged := s1
	forged.Sig = mustSign(t, testKey(1), storageAnn("x", 1, "n", furlA)).Sig
	for name, e := range map[string]CacheEntry{
		"bad signature":    {Signed: &forged},
		"ann differs":      {Signed: &s1, Announcement: other},
		"key differs":      {Key: FormatServerKey(testKey(2).Public().(ed25519.PublicKey)), Signed: &s1},
		"unsigned bad key": {Key: "nope"},
	} {
		if _, err := MarshalCache([]CacheEntry{e}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestWriteCacheAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "introducer_grid_cache.yaml")
	s1 := mustSign(t, testKey(1), storageAnn("old", 1, "n1", furlA))
	s2 := mustSign(t, testKey(1), storageAnn("new", 2, "n2", furlA))
	if err := WriteCache(path, []CacheEntry{{Signed: &s1}}); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path)
	t.Cleanup(func() { testHookBeforeRename = nil })

	t.Run("final name holds old content until rename", func(t *testing.T) {
		var sawTmp string
		testHookBeforeRename = func(tmp string) error {
			sawTmp = tmp
			if filepath.Dir(tmp) != dir {
				t.Errorf("temp file %s not in %s", tmp, dir)
			}
			if cur, _ := os.ReadFile(path); !bytes.Equal(cur, old) {
				t.Error("final name changed before rename")
			}
			if c, err := ReadCache(tmp); err != nil || len(c.Entries) != 1 || c.Entries[0].Announcement.Nickname != "new" {
				t.Errorf("temp file incomplete before rename: %v %v", c, err)
			}
			return nil
		}
		if err := WriteCache(path, []CacheEntry{{Signed: &s2}}); err != nil {
			t.Fatal(err)
		}
		if sawTmp == "" {
			t.Fatal("hook not called")
		}
		if _, err := os.Stat(sawTmp); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("temp file %s still exists: %v", sawTmp, err)
		}
		c, err := ReadCache(path)
		if err != nil || c.Entries[0].Announcement.Nickname != "new" {
			t.Errorf("after write: %v %v", c, err)
		}
	})

	t.Run("failure leaves old content and no temp file", func(t *testing.T) {
		before, _ := os.ReadFile(path)
		boom := errors.New("disk on fire")
		testHookBeforeRename = func(string) error { return boom }
		err := WriteCache(path, []CacheEntry{{Signed: &s1}})
		if !errors.Is(err, boom) {
			t.Fatalf("error %v", err)
		}
		var fe *FileError
		if !errors.As(err, &fe) || fe.Path != path {
			t.Errorf("error %v does not name %s", err, path)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(before, after) {
			t.Error("previous content changed")
		}
		assertOnlyFile(t, dir, filepath.Base(path))
	})

	t.Run("rename failure", func(t *testing.T) {
		testHookBeforeRename = nil
		// A non-empty directory cannot be replaced by rename(2), even by
		// root; the temp file must be cleaned up.
		blocked := filepath.Join(dir, "blocked")
		if err := os.MkdirAll(filepath.Join(blocked, "x"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := WriteCache(blocked, []CacheEntry{{Signed: &s1}}); err == nil {
			t.Fatal("no error")
		}
		if _, err := os.Stat(filepath.Join(blocked, "x")); err != nil {
			t.Errorf("previous content gone: %v", err)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp-") {
				t.Errorf("temp file %s left behind", e.Name())
			}
		}
	})
}

func assertOnlyFile(t *testing.T, dir, name string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != name {
			t.Errorf("unexpected file %s in %s", e.Name(), dir)
		}
	}
}

// TestCacheReadableByTahoe checks with PyYAML (what Tahoe uses) that a
// cache we write loads as Tahoe's _load_announcements expects: a list of
// dicts whose ann and key_s equal ours, and whose extra msg is the exact
// signed JSON.
func TestCacheReadableByTahoe(t *testing.T) {
	py := pyfoolscap.Python(t)
	path := filepath.Join(t.TempDir(), "introducer_grid_cache.yaml")
	s1 := mustSign(t, testKey(1), storageAnn("yes", 3, "on", furlA))
	s2 := mustSign(t, testKey(2), storageAnn("s2 \"q\" ünï: #x", 12345678901, "0o17", furlB))
	if err := WriteCache(path, []CacheEntry{{Signed: &s1}, {Signed: &s2}}); err != nil {
		t.Fatal(err)
	}
	script := `
import json, sys, yaml
servers = yaml.safe_load(open(sys.argv[1]))
assert isinstance(servers, list), servers
for s in servers:
    assert isinstance(s, dict)
    assert s["key_s"].startswith("v0-")
    assert json.loads(s["msg"]) == s["ann"], (s["msg"], s["ann"])
    print(s["key_s"], s["ann"]["nickname"], s["ann"]["seqnum"], json.dumps(s["msg"]))
`
	out, err := exec.Command(py, "-c", script, path).CombinedOutput()
	if err != nil {
		t.Fatalf("PyYAML could not load our cache: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], s1.Key+" yes 3 ") || !strings.HasPrefix(lines[1], s2.Key+` s2 "q" ünï: #x 12345678901 `) {
		t.Errorf("PyYAML read:\n%s", out)
	}
}
