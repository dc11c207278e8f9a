// Package pyfoolscap runs the reference peer of tubfarm's interop tests: the
// real Python Foolscap from Debian's python3-foolscap package, under Debian's
// /usr/bin/python3.
//
// Tests that need it call [Python]. When Foolscap cannot be imported the test
// fails (it does not skip): the README's test command installs the package,
// so a missing peer is a broken machine, not a reason to pass.
package pyfoolscap

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Interpreter is Debian's Python, which sees Debian's python3-foolscap. The
// python3 first on PATH may be another one without Debian's packages.
const Interpreter = "/usr/bin/python3"

var (
	checkOnce sync.Once
	checkErr  string
	version   string
)

// Python returns the interpreter path after checking that Foolscap imports,
// and fails t if it does not.
func Python(t testing.TB) string {
	t.Helper()
	checkOnce.Do(func() {
		out, err := exec.Command(Interpreter, "-c", "import foolscap; print(foolscap.__version__)").CombinedOutput()
		if err != nil {
			checkErr = "python3-foolscap is required (apt-get install python3-foolscap; the README test command does this): " +
				err.Error() + ": " + strings.TrimSpace(string(out))
			return
		}
		version = strings.TrimSpace(string(out))
	})
	if checkErr != "" {
		t.Fatal(checkErr)
	}
	return Interpreter
}

// Version returns the Foolscap version found by Python ("" before it ran).
func Version() string { return version }

// Proc is a running Python script.
type Proc struct {
	Cmd    *exec.Cmd
	lines  chan string
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs script (Python source) with args. Its stdout is read line by
// line (see [Proc.Line]); its stderr goes to the test log when the test ends.
// The process is killed and waited for when the test ends, and it is bounded
// by a 5-minute context in any case.
func Start(t testing.TB, script string, args ...string) *Proc {
	t.Helper()
	py := Python(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := exec.CommandContext(ctx, py, append([]string{"-u", "-c", script}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &lockedWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	p := &Proc{Cmd: cmd, lines: make(chan string, 64), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<16), 1<<22)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if s := cmd.Stderr.(*lockedWriter).String(); s != "" {
			t.Logf("python stderr:\n%s", s)
		}
	})
	return p
}

// Line returns the next line the script printed, failing t if none arrives
// within timeout or the script exits first.
func (p *Proc) Line(t testing.TB, timeout time.Duration) string {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("python script exited before printing a line")
		}
		return l
	case <-timer.C:
		t.Fatalf("python script printed nothing within %v", timeout)
	}
	return ""
}

// Stop kills the process and waits for it to exit.
func (p *Proc) Stop() {
	p.cancel()
	<-p.done
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
