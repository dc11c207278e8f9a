// Package gridproc runs a grid of Go Foolscap storage servers
// (internal/grid, every server behind one shared listener) in a child
// process, so that a benchmark's client measures only itself: its CPU
// time, heap, goroutines and descriptors are not mixed with the servers',
// and 10 000 client connections plus 10 000 server ends fit under the
// descriptor limit of each process.
//
// The child is the running executable itself, re-executed with an
// environment variable set. A test binary (or command) that uses [Start]
// must call [MaybeServe] first thing in TestMain (or main).
//
// The protocol is lines: the child prints "READY <addr>" once its node
// directory is written, answers "drop" (close every connection and the
// listening socket, then listen again on the same port with the same
// Tubs: a restart of every server at once) with "DROPPED", and exits when
// its standard input closes.
package gridproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/tubfarm/tubfarm/bench/internal/measure"
	"github.com/tubfarm/tubfarm/foolscap"
	"github.com/tubfarm/tubfarm/internal/grid"
)

// Environment variables that turn the executable into a grid server.
const (
	envServers = "TUBFARM_GRIDPROC_SERVERS" // number of servers; its presence selects the role
	envDir     = "TUBFARM_GRIDPROC_DIR"     // node directory to write
)

// MaybeServe runs the grid server and exits if this process was started by
// [Start]; otherwise it returns at once.
func MaybeServe() {
	ns, ok := os.LookupEnv(envServers)
	if !ok {
		return
	}
	n, err := strconv.Atoi(ns)
	if err != nil || n < 1 {
		fmt.Fprintf(os.Stderr, "gridproc: %s=%q is not a positive number\n", envServers, ns)
		os.Exit(2)
	}
	if err := Serve(context.Background(), n, os.Getenv(envDir), os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Serve runs n storage servers behind one listener on 127.0.0.1, writes a
// Tahoe node directory at dir whose servers.yaml lists them all, prints
// "READY <addr>" to out, and then obeys the commands read from in (see the
// package documentation) until in ends.
func Serve(ctx context.Context, n int, dir string, in io.Reader, out io.Writer) error {
	if dir == "" {
		return errors.New("gridproc: no node directory given")
	}
	if _, err := measure.RaiseNOFILE(); err != nil {
		return err
	}
	g, err := grid.Start(ctx, n, "bench", grid.Options{Shared: true})
	if err != nil {
		return fmt.Errorf("gridproc: starting %d servers: %w", n, err)
	}
	addr := g.Servers[0].Addr()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{Static: g.Servers}); err != nil {
		g.Close()
		return fmt.Errorf("gridproc: %w", err)
	}
	fmt.Fprintf(out, "READY %s\n", addr)
	closeCurrent := g.Close
	defer func() { closeCurrent() }()
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		switch cmd := strings.TrimSpace(sc.Text()); cmd {
		case "drop":
			closeCurrent()
			ln, err := foolscap.Listen(ctx, "tcp", addr, foolscap.ListenConfig{})
			if err != nil {
				closeCurrent = func() {}
				return fmt.Errorf("gridproc: listening again on %s: %w", addr, err)
			}
			for _, s := range g.Servers {
				ln.AddTub(s.Tub)
			}
			closeCurrent = func() { ln.Close() }
			fmt.Fprintln(out, "DROPPED")
		default:
			return fmt.Errorf("gridproc: unknown command %q", cmd)
		}
	}
	return sc.Err()
}

// Proc is a running grid server process.
type Proc struct {
	// Addr is the shared listener's address; Dir the node directory whose
	// private/servers.yaml lists every server.
	Addr, Dir string

	cmd      *exec.Cmd
	stdin    io.WriteCloser
	lines    chan string
	readDone chan struct{}
}

// Start runs n servers in a child process (this executable, see
// [MaybeServe]) and returns once their node directory is written to dir.
// ctx bounds the start-up only; call Close to stop the child.
func Start(ctx context.Context, n int, dir string) (*Proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("gridproc: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envServers+"="+strconv.Itoa(n), envDir+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("gridproc: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("gridproc: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("gridproc: starting %s: %w", exe, err)
	}
	p := &Proc{Dir: dir, cmd: cmd, stdin: stdin, lines: make(chan string, 4), readDone: make(chan struct{})}
	go func() {
		defer close(p.readDone)
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		io.Copy(io.Discard, stdout)
	}()
	line, err := p.expect(ctx, "READY ")
	if err != nil {
		p.Close()
		return nil, err
	}
	p.Addr = strings.TrimPrefix(line, "READY ")
	return p, nil
}

// expect waits for the next line, which must start with prefix.
func (p *Proc) expect(ctx context.Context, prefix string) (string, error) {
	select {
	case line, ok := <-p.lines:
		if !ok {
			return "", errors.New("gridproc: the server process exited (its errors are on stderr)")
		}
		if !strings.HasPrefix(line, prefix) {
			return "", fmt.Errorf("gridproc: server process said %q, want a line starting with %q", line, prefix)
		}
		return line, nil
	case <-ctx.Done():
		return "", fmt.Errorf("gridproc: waiting for %q: %w", strings.TrimSpace(prefix), ctx.Err())
	}
}

// Drop closes every server's connections and listening socket at once and
// listens again on the same port, as if every server restarted. It returns
// once the servers listen again.
func (p *Proc) Drop(ctx context.Context) error {
	if _, err := io.WriteString(p.stdin, "drop\n"); err != nil {
		return fmt.Errorf("gridproc: %w", err)
	}
	_, err := p.expect(ctx, "DROPPED")
	return err
}

// Close stops the server process and waits for it (killing it if it has
// not exited within ten seconds), and returns its exit error, if any.
func (p *Proc) Close() error {
	p.stdin.Close()
	t := time.AfterFunc(10*time.Second, func() { p.cmd.Process.Kill() })
	defer t.Stop()
	for range p.lines { // drain, so the reader can finish
	}
	<-p.readDone
	if err := p.cmd.Wait(); err != nil {
		return fmt.Errorf("gridproc: server process: %w", err)
	}
	return nil
}
