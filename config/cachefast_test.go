package config

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// WriteVerifiedCache's own encoder gives back, through the YAML reader,
// the announcements it was given, whatever their strings and numbers.
func TestWriteVerifiedCacheRoundTrip(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tricky := []string{"", "plain", "yes", "null", "~", "123", "1e3", "-", "- x", "a: b", "#c", "'q'", "\"dq\"", `back\slash`,
		"tab\there", "nl\nx", "\x00\x01\x7f", "\u0085\u00a0\u2028\ufeff", "é ü 😀", "  lead", "trail  ", "{[,]}", "&a *b !c %d @e `f"}
	var entries []CacheEntry
	for i, s := range tricky {
		f := map[string]any{"service-name": "storage", "nickname": s, "seqnum": int64(i),
			"x-list": []any{s, int64(-7), 1.5, 1e300, 2e-9, true, nil, map[string]any{s: []any{}}}, s + "k": s}
		signed, err := Sign(priv, f)
		if err != nil {
			t.Fatal(err)
		}
		a, err := signed.Verify()
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, CacheEntry{Key: signed.Key, Announcement: a, Signed: &signed})
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	if _, err := WriteVerifiedCache(path, entries); err != nil {
		t.Fatal(err)
	}
	c, err := ReadCache(path)
	if err != nil {
		data, _ := os.ReadFile(path)
		lines := strings.Split(string(data), "\n")
		t.Fatalf("%v\nline 70: %q", err, lines[69])
	}
	if len(c.Dropped) != 0 || len(c.Entries) != len(entries) {
		t.Fatalf("read %d entries, dropped %v", len(c.Entries), c.Dropped)
	}
	for i, e := range c.Entries {
		if !e.Verified() || !e.Announcement.Equal(entries[i].Announcement) {
			t.Errorf("entry %d (%q): got %v", i, tricky[i], e.Announcement.Fields())
		}
	}
}
