package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tubfarm/tubfarm/config"
)

// BenchmarkPin pins one server into a servers.yaml of n entries (and takes
// it out again): the lock, loading the node, the edit, validating the
// result and the atomic write. The cost should grow linearly with n.
func BenchmarkPin(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			dir := filepath.Join(b.TempDir(), "node")
			if err := os.CopyFS(dir, os.DirFS("testdata/node")); err != nil {
				b.Fatal(err)
			}
			var sb strings.Builder
			sb.WriteString("storage:\n")
			for i := range n {
				fmt.Fprintf(&sb, "  # server %d\n  s%05d:\n    ann:\n      nickname: s%d\n      anonymous-storage-FURL: pb://aaaa@tor:s%d.example:3457/swiss\n", i, i, i, i)
			}
			if err := os.WriteFile(config.ServersPath(dir), []byte(sb.String()), 0o600); err != nil {
				b.Fatal(err)
			}
			var out bytes.Buffer
			env := Env{Stdout: &out, Stderr: &out}
			b.ReportAllocs()
			for b.Loop() {
				if code := Run(context.Background(), []string{"pin", "-d", dir, idStorage1}, env); code != ExitOK {
					b.Fatalf("pin: exit %d: %s", code, out.String())
				}
				if code := Run(context.Background(), []string{"unpin", "-d", dir, idStorage1}, env); code != ExitOK {
					b.Fatalf("unpin: exit %d: %s", code, out.String())
				}
				out.Reset()
			}
		})
	}
}
