//go:build unix

package cli

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm/config"
)

// TestNodeFileFIFO puts a FIFO in place of private/servers.yaml: every
// command that reads it fails at once with exit code 1 and an error naming
// the file, instead of blocking on an open or a read that no writer ends.
func TestNodeFileFIFO(t *testing.T) {
	for _, args := range [][]string{
		{"check", "-d", "NODEDIR"},
		{"check", "--json", "-d", "NODEDIR"},
		{"pin", "-d", "NODEDIR", "nas", "--hint", "tcp:192.168.1.20:3457"},
		{"pin", "-d", "NODEDIR", "storage-1", "--dry-run"},
		{"unpin", "-d", "NODEDIR", "storage-1"},
		{"servers", "-d", "NODEDIR"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dir := goldenNode(t)
			path := config.ServersPath(dir)
			os.Remove(path)
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
			r := runUnblocking(t, path, dir, args...)
			if r.code != ExitFailure {
				t.Errorf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", args[0], r.code, ExitFailure, r.stdout, r.stderr)
			}
			out := r.stdout + r.stderr
			if !strings.Contains(out, "NODEDIR/private/servers.yaml") || !strings.Contains(out, "not a regular file") {
				t.Errorf("%s: the output does not name the FIFO servers.yaml as not a regular file:\nstdout: %s\nstderr: %s",
					args[0], r.stdout, r.stderr)
			}
			if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
				t.Errorf("%s: the FIFO was replaced: %v, %v", args[0], fi.Mode(), err)
			}
		})
	}
}

// runUnblocking is run, with a safety net for a command that blocks on the
// FIFO at fifo: after a minute the test fails and opens the FIFO for
// writing, which ends the blocked open or read, so that the test returns.
func runUnblocking(t *testing.T, fifo, dir string, args ...string) result {
	t.Helper()
	done := make(chan result, 1)
	go func() { done <- run(t, dir, args...) }()
	select {
	case r := <-done:
		return r
	case <-time.After(time.Minute):
		t.Errorf("%s is blocked on the FIFO", args[0])
		if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			w.Close()
		}
		return <-done
	}
}

// TestCheckFIFONodeFiles puts a FIFO in place of each of the other files
// check reads: it names the file without blocking, and exits 1, except for
// an introducer cache, which the node rewrites and check only warns about.
func TestCheckFIFONodeFiles(t *testing.T) {
	for _, c := range []struct {
		rel, line string
		code      int
	}{
		{"tahoe.cfg", "NODEDIR/tahoe.cfg: not a regular file", ExitFailure},
		{"private/introducers.yaml", "NODEDIR/private/introducers.yaml: not a regular file", ExitFailure},
		{"private/node.pem", "NODEDIR/private/node.pem: not a regular file", ExitFailure},
		{"private/introducer_alpha_cache.yaml", "NODEDIR/private/introducer_alpha_cache.yaml: warning: not a regular file", ExitOK},
	} {
		t.Run(c.rel, func(t *testing.T) {
			dir := goldenNode(t)
			path := dir + "/" + c.rel
			os.Remove(path)
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
			r := runUnblocking(t, path, dir, "check", "-d", "NODEDIR")
			if r.code != c.code || !strings.Contains(r.stdout+r.stderr, c.line) {
				t.Errorf("exit %d, want %d and the line %q\nstdout: %s\nstderr: %s", r.code, c.code, c.line, r.stdout, r.stderr)
			}
		})
	}
}
