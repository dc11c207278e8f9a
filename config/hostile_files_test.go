package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// TestNodeFilesMustBeRegular puts a FIFO, a symlink to /dev/zero and a file
// over MaxFileSize in the place of each file Open reads. Each is refused at
// once with a *FileError (or, for node.pem, a PEMError) naming the file.
func TestNodeFilesMustBeRegular(t *testing.T) {
	t.Cleanup(func() { MaxFileSize = DefaultMaxFileSize })
	MaxFileSize = 1 << 20
	minimal := func(t *testing.T) string {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "private"), 0o700)
		os.WriteFile(TahoeCfgPath(dir), []byte("[node]\nnickname = x\n"), 0o600)
		os.WriteFile(IntroducersPath(dir), []byte("introducers:\n  one:\n    furl: pb://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@tcp:127.0.0.1:1/introducer\n"), 0o600)
		return dir
	}
	files := []struct {
		name string
		path func(dir string) string
	}{
		{"tahoe.cfg", TahoeCfgPath},
		{"introducers.yaml", IntroducersPath},
		{"servers.yaml", ServersPath},
		{"cache", func(dir string) string { return CachePath(dir, "one") }},
		{"node.pem", NodePEMPath},
	}
	hostile := []struct {
		name  string
		make  func(path string) error
		class error
		text  string
	}{
		{"fifo", func(p string) error { return syscall.Mkfifo(p, 0o600) }, ErrNotRegular, "not a regular file (a FIFO)"},
		{"dev_zero", func(p string) error { return os.Symlink("/dev/zero", p) }, ErrNotRegular, "not a regular file (a character device)"},
		{"large", func(p string) error {
			f, err := os.Create(p)
			if err != nil {
				return err
			}
			defer f.Close()
			return f.Truncate(1 << 30)
		}, ErrTooLarge, "file too large: 1073741824 bytes"},
	}
	for _, f := range files {
		for _, h := range hostile {
			t.Run(f.name+"/"+h.name, func(t *testing.T) {
				dir := minimal(t)
				path := f.path(dir)
				os.Remove(path)
				if err := h.make(path); err != nil {
					t.Fatal(err)
				}
				n, err := Open(dir)
				if f.name == "cache" {
					// A cache is regenerable: a warning, not an error.
					if err != nil || n == nil || len(n.Warnings) != 1 {
						t.Fatalf("Open with a hostile cache: %v, warnings %v; want one warning", err, n)
					}
					err = n.Warnings[0]
				}
				if err == nil || !errors.Is(err, h.class) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), h.text) {
					t.Fatalf("Open: %v; want %v naming %s and saying %q", err, h.class, path, h.text)
				}
				var fe *FileError
				if f.name != "node.pem" && (!errors.As(err, &fe) || fe.Path != path) {
					t.Fatalf("Open: %v is not a *FileError for %s", err, path)
				}
			})
		}
	}
}

// TestInterpolationBounded: each [node] value refers fanout times to the
// one before, so the nickname expands to pad*fanout^4 bytes (340 MB from a
// 2.9 KB file with fanout 27). The parse stops at the budget with
// ErrTooLarge, and the bytes it allocates per byte of input stay under a
// constant as the file grows.
func TestInterpolationBounded(t *testing.T) {
	chain := []string{"tempdir", "web.static", "web.port", "log_gatherer.furl", "nickname"}
	bomb := func(pad, fanout int) ([]byte, int) {
		var b strings.Builder
		b.WriteString("[node]\n")
		fmt.Fprintf(&b, "%s = %s\n", chain[0], strings.Repeat("x", pad))
		expanded := pad
		for i := 1; i < len(chain); i++ {
			fmt.Fprintf(&b, "%s = %s\n", chain[i], strings.Repeat("%("+chain[i-1]+")s", fanout))
			expanded *= fanout
		}
		return []byte(b.String()), expanded
	}
	for _, tc := range []struct{ pad, fanout int }{{10, 2}, {100, 27}, {1000, 27}, {100000, 4}, {10, 200}} {
		data, expanded := bomb(tc.pad, tc.fanout)
		var cfg *TahoeConfig
		var err error
		allocs := allocatedBytes(func() { cfg, err = ParseTahoeConfig("tahoe.cfg", data) })
		t.Logf("pad %d, fanout %d: %d bytes in, nickname would be %d bytes; %d bytes allocated (%.0f per input byte); err: %v",
			tc.pad, tc.fanout, len(data), expanded, allocs, float64(allocs)/float64(len(data)), err)
		if expanded > maxInterpolatedSize {
			if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "interpolation expands beyond the limit") {
				t.Errorf("parse: %v, want ErrTooLarge", err)
			}
		} else if err != nil || len(cfg.Nickname) != expanded {
			t.Errorf("parse: %v, nickname of %d bytes, want %d", err, len(cfg.Nickname), expanded)
		}
		if limit := 16 * uint64(maxInterpolatedSize+2*len(data)+1024); allocs > limit {
			t.Errorf("%d bytes allocated for %d input bytes, limit %d", allocs, len(data), limit)
		}
	}
}

// allocatedBytes returns the bytes f allocates on the heap.
func allocatedBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
