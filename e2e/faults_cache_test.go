package e2e

import (
	"errors"
	"os"
	"testing"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/internal/grid"
	"github.com/tubfarm/tubfarm/messages"
)

// TestFaultCorruptCache opens a node whose introducer cache is damaged in
// the ways a crash or a full disk can leave it (config.WriteCache never
// does: see config.TestCrashWriteCache). The broker starts anyway, the
// damage is reported in Node.Warnings as a *config.FileError naming the
// cache file, and the introducer's live announcements still work: Announce
// connects the server and rewrites the cache whole.
func TestFaultCorruptCache(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		kind          error // the config error class, if one applies
	}{
		{"empty", "", config.ErrEmptyDocument},
		{"torn YAML", "- key_s: v0-abc\n  ann: {nickname: \"half", nil},
		{"not a list", "key_s: v0-abc\n", config.ErrType},
		{"binary garbage", "\x00\xff\xfe\x01garbage", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			g := startGrid(t, 1)
			srv := g.Servers[0]
			dir := t.TempDir()
			if err := grid.WriteNodeDir(dir, grid.NodeDir{Introducers: map[string][]*grid.Server{"alpha": {srv}}}); err != nil {
				t.Fatal(err)
			}
			path := config.CachePath(dir, "alpha")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			b := openBroker(t, dir, tubfarm.Options{WatchInterval: -1})
			rec := record(t, b)
			t.Cleanup(func() { b.Close(); <-rec.exited })

			warnings := b.Node().Warnings
			var fe *config.FileError
			if len(warnings) != 1 || !errors.As(warnings[0], &fe) || fe.Path != path {
				t.Fatalf("warnings %v, want one *config.FileError naming %s", warnings, path)
			}
			if tc.kind != nil && !errors.Is(warnings[0], tc.kind) {
				t.Errorf("warning %v, want class %v", warnings[0], tc.kind)
			}
			if n := len(b.Servers()); n != 0 {
				t.Fatalf("%d servers from a corrupt cache", n)
			}

			ann, err := srv.Signed(2)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Announce("alpha", ann); err != nil {
				t.Fatal(err)
			}
			rec.next(0, "connection", to(messages.Connected, ""))
			c, err := config.ReadCache(path)
			if err != nil || len(c.Dropped) != 0 || len(c.Entries) != 1 || c.Entries[0].Key != srv.ID || !c.Entries[0].Verified() {
				t.Fatalf("cache after Announce: %+v, %v", c, err)
			}
			if w := b.Node().Warnings; len(w) != 0 {
				t.Errorf("warnings after the cache was rewritten: %v", w)
			}
		})
	}
}
