package nodefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(regular, link); err != nil {
		t.Fatal(err)
	}
	sparse := filepath.Join(dir, "sparse")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()

	for _, tc := range []struct {
		path string
		max  int64
		want string
		err  error
		msg  string
	}{
		{path: regular, max: 5, want: "hello"},
		{path: link, max: 5, want: "hello"},
		{path: regular, max: 4, err: ErrTooLarge, msg: "5 bytes, the limit is 4"},
		{path: fifo, max: 1 << 20, err: ErrNotRegular, msg: "a FIFO"},
		{path: zero, max: 1 << 20, err: ErrNotRegular, msg: "a character device"},
		{path: dir, max: 1 << 20, err: ErrNotRegular, msg: "a directory"},
		{path: sparse, max: 64 << 20, err: ErrTooLarge, msg: "1073741824 bytes"},
		{path: filepath.Join(dir, "missing"), max: 10, err: fs.ErrNotExist},
	} {
		got, err := Read(tc.path, tc.max)
		if tc.err != nil {
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Read(%s, %d) = %v, want %v containing %q", filepath.Base(tc.path), tc.max, err, tc.err, tc.msg)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("Read(%s) = %q, %v; want %q", filepath.Base(tc.path), got, err, tc.want)
		}
	}
}

// TestReadAllocatesTheFileNotTheCap: a small file under a large cap costs
// its own size.
func TestReadAllocatesTheFileNotTheCap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, make([]byte, 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	var n int
	allocs := testing.AllocsPerRun(10, func() {
		b, err := Read(path, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		n = cap(b)
	})
	if n > 2048 || allocs > 10 {
		t.Errorf("reading 1000 bytes under a 1 GiB cap: buffer %d bytes, %v allocations", n, allocs)
	}
}
