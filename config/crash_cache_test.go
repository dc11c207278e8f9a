package config

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashWriterEnv, when set to a cache path, turns the test binary into the
// child of TestCrashWriteCache: it rewrites that cache in a loop, cycling
// through crashVersions, until it is killed.
const crashWriterEnv = "TUBFARM_CRASH_CACHE_WRITER"

// crashVersions are the cache contents the child cycles through: version 0
// is written by the parent before the child starts, 1..n by the child. They
// differ in size (1 to 400 entries, up to about 150 KB), so that a kill can
// land in a short write or in a long one.
func crashVersions(t testing.TB) [][]CacheEntry {
	sizes := []int{3, 1, 40, 400, 7}
	out := make([][]CacheEntry, len(sizes))
	for v, n := range sizes {
		for i := range n {
			seed := sha256.Sum256([]byte(fmt.Sprintf("crash-%d", i)))
			pub := ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
			a, err := newAnnouncement(map[string]any{
				"anonymous-storage-FURL": "pb://" + strings.Repeat("a", 32) + "@tcp:10.0.0." + strconv.Itoa(i%250) + ":3457/swiss" + strconv.Itoa(i),
				"nickname":               fmt.Sprintf("v%d-server-%d", v, i),
				"seqnum":                 int64(v),
				"service-name":           "storage",
			})
			if err != nil {
				t.Fatal(err)
			}
			out[v] = append(out[v], CacheEntry{Key: FormatServerKey(pub), Announcement: a})
		}
	}
	return out
}

// TestCrashWriteCache kills (SIGKILL) a process that rewrites an
// introducer cache in a loop, many times at random points, and checks after
// each kill that the file holds, byte for byte, one complete version the
// child could have written — never a torn, empty or mixed file — and that
// ReadCache loads it with every entry and nothing dropped.
func TestCrashWriteCache(t *testing.T) {
	if path := os.Getenv(crashWriterEnv); path != "" {
		crashWriter(t, path)
		return
	}
	versions := crashVersions(t)
	want := make([][]byte, len(versions))
	for i, v := range versions {
		b, err := MarshalCache(v)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = b
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "introducer_alpha_cache.yaml")
	if err := WriteCache(path, versions[0]); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A safety bound, not a timing: 60 starts of a race-enabled test binary
	// take minutes on a loaded two-core machine.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	const kills = 60
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 8))
	seen := make([]int, len(versions))
	midWrite := 0
	for k := range kills {
		cmd := exec.CommandContext(ctx, exe, "-test.run=^TestCrashWriteCache$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashWriterEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until the child has completed a few writes, then kill it
		// at a random moment of the following ones.
		br := bufio.NewReader(out)
		skip := 1 + rng.IntN(4)
		for range skip {
			if _, err := br.ReadString('\n'); err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("kill %d: the writer stopped before %d writes: %v (context: %v)", k, skip, err, ctx.Err())
			}
		}
		delay := time.Duration(rng.Int64N(int64(3 * time.Millisecond)))
		timer := time.NewTimer(delay) // a random kill point, not a wait for a state
		select {
		case <-timer.C:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("kill %d: the writer ended with %v, not by SIGKILL", k, err)
		}

		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("kill %d: %v", k, err)
		}
		v := -1
		for i, w := range want {
			if bytes.Equal(got, w) {
				v = i
			}
		}
		if v < 0 {
			t.Fatalf("kill %d: the cache is none of the versions (%d bytes):\n%.400s", k, len(got), got)
		}
		seen[v]++
		c, err := ReadCache(path)
		if err != nil || len(c.Dropped) != 0 || len(c.Entries) != len(versions[v]) {
			t.Fatalf("kill %d: ReadCache: err %v, %d entries (want %d), dropped %v", k, err, len(c.Entries), len(versions[v]), c.Dropped)
		}
		// A kill between creating the temporary file and renaming it
		// leaves the temporary file behind; clear it for the next round.
		tmps, _ := filepath.Glob(filepath.Join(dir, ".introducer_alpha_cache.yaml.tmp-*"))
		if len(tmps) > 0 {
			midWrite++
		}
		for _, tmp := range tmps {
			os.Remove(tmp)
		}
	}
	t.Logf("%d kills: versions found %v; %d kills landed inside a write (temporary file left)", kills, seen, midWrite)
	if midWrite == 0 {
		t.Errorf("no kill landed inside a write; the test did not exercise torn writes")
	}
}

// crashWriter is the child: it rewrites path through versions 1..n in a
// loop and reports each completed write on stdout, until killed.
func crashWriter(t *testing.T, path string) {
	versions := crashVersions(t)
	for i := 0; ; i++ {
		v := 1 + i%(len(versions)-1)
		if err := WriteCache(path, versions[v]); err != nil {
			fmt.Fprintln(os.Stderr, "crash writer:", err)
			os.Exit(3)
		}
		fmt.Println("wrote", v)
	}
}
