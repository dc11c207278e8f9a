package config

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tubfarm/tubfarm/internal/nodefile"
)

// DefaultMaxFileSize is the default of [MaxFileSize].
const DefaultMaxFileSize int64 = 64 << 20

// MaxFileSize bounds every file this package reads (tahoe.cfg,
// introducers.yaml, each introducer cache, servers.yaml). A larger file is
// an error of class [ErrTooLarge] naming it; nothing of it is read. The
// default, 64 MiB, holds a servers.yaml of about 250 000 entries. Set it
// before loading a node; it is read, never written, by this package.
var MaxFileSize = DefaultMaxFileSize

// readFile reads a node file through [nodefile.Read]: only a regular file
// (a FIFO, a device or a directory put in its place is [ErrNotRegular], at
// once, without blocking), at most MaxFileSize bytes. A missing file is
// an error matching fs.ErrNotExist.
func readFile(path string) ([]byte, error) {
	return nodefile.Read(path, MaxFileSize)
}

// removeStaleTemps removes the temporary files [WriteCache] leaves in
// NODEDIR/private when the process is killed between creating and renaming
// them, and those of node.pem's writer (they hold a private key) once they
// are an hour old, since another process may be creating node.pem right
// now. Only regular files of the writers' own name patterns are removed.
func removeStaleTemps(nodeDir string) {
	dir := filepath.Join(nodeDir, "private")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		switch {
		case strings.HasPrefix(name, ".introducer_") && strings.Contains(name, "_cache.yaml.tmp-"):
		case strings.HasPrefix(name, ".node-pem-"):
			if fi, err := e.Info(); err != nil || time.Since(fi.ModTime()) < time.Hour {
				continue
			}
		default:
			continue
		}
		os.Remove(filepath.Join(dir, name))
	}
}
