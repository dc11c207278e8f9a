package e2e

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/internal/grid"
)

// TestHostileServersFile replaces servers.yaml, under a running broker that
// watches it, by a FIFO nobody writes to, a symlink to /dev/zero and a 1 GB
// sparse file. Each is refused at once with an error naming the file and
// what is wrong; the running map stays; Close returns.
func TestHostileServersFile(t *testing.T) {
	g := startGrid(t, 2)
	for _, tc := range []struct {
		name  string
		make  func(path string) error
		class error
		text  string
	}{
		{"fifo", func(path string) error { return syscall.Mkfifo(path, 0o600) }, config.ErrNotRegular, "a FIFO"},
		{"dev_zero", func(path string) error { return os.Symlink("/dev/zero", path) }, config.ErrNotRegular, "a character device"},
		{"sparse_1GB", func(path string) error {
			f, err := os.Create(path)
			if err != nil {
				return err
			}
			defer f.Close()
			return f.Truncate(1 << 30)
		}, config.ErrTooLarge, "1073741824 bytes, the limit is 67108864"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := grid.WriteNodeDir(dir, grid.NodeDir{Static: g.Servers}); err != nil {
				t.Fatal(err)
			}
			reloads := make(chan error, 16)
			b, err := tubfarm.Open(dir, tubfarm.Options{
				Logger:        quiet(),
				WatchInterval: 5 * time.Millisecond,
				OnReload: func(err error) {
					select {
					case reloads <- err:
					default:
					}
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			closed := false
			t.Cleanup(func() {
				if !closed {
					b.Close()
				}
			})
			if err := b.WhenConnected(testCtx(t), 2); err != nil {
				t.Fatal(err)
			}

			path := config.ServersPath(dir)
			tmp := filepath.Join(dir, "private", "hostile")
			if err := tc.make(tmp); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
			check := func(err error) {
				t.Helper()
				var fe *config.FileError
				if !errors.As(err, &fe) || fe.Path != path || !errors.Is(err, tc.class) || !strings.Contains(err.Error(), tc.text) {
					t.Fatalf("reload: %v; want a *config.FileError naming %s, class %v, saying %q", err, path, tc.class, tc.text)
				}
			}
			check(b.Reload())
			// The watch sees the new inode and reports the same error.
			select {
			case err := <-reloads:
				check(err)
			case <-testCtx(t).Done():
				t.Fatal("the watch never reloaded")
			}
			if n := len(b.Servers()); n != 2 {
				t.Fatalf("after a refused reload the broker has %d servers, want the running 2", n)
			}
			for _, s := range b.Servers() {
				if !s.Connected() {
					t.Errorf("%s disconnected by a refused reload", s.ID())
				}
			}
			done := make(chan struct{})
			go func() { b.Close(); close(done) }()
			select {
			case <-done:
				closed = true
			case <-testCtx(t).Done():
				t.Fatal("Close did not return")
			}
		})
	}
}

// TestOpenRemovesStaleCacheTemps: a cache write killed half-way leaves
// ".introducer_<petname>_cache.yaml.tmp-*" in private/; Open removes it and
// nothing else.
func TestOpenRemovesStaleCacheTemps(t *testing.T) {
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{}); err != nil {
		t.Fatal(err)
	}
	priv := filepath.Join(dir, "private")
	stale := filepath.Join(priv, ".introducer_default_cache.yaml.tmp-123456")
	keep := filepath.Join(priv, "notes.tmp-1")
	for _, p := range []string{stale, keep} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b := openBroker(t, dir, tubfarm.Options{})
	b.Close()
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale cache temporary file still there: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("Open removed a file that is not its own: %v", err)
	}
}
