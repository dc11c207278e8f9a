package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/internal/grid"
	"github.com/tubfarm/tubfarm/internal/introducerserver"
	"github.com/tubfarm/tubfarm/introducer"
	"github.com/tubfarm/tubfarm/status"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// goTool returns the go command that runs this test: go test puts its own
// GOROOT/bin first on the test's PATH.
func goTool(t *testing.T) string {
	p, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to build the demo with: %v", err)
	}
	return p
}

// buildDemo builds the demo binary into a temporary directory, with the
// race detector when the tests run with it.
func buildDemo(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "demo")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(testCtx(t), goTool(t), append(args, ".")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startTestGrid starts n storage servers for the test.
func startTestGrid(t *testing.T, n int) *grid.Grid {
	t.Helper()
	g, err := grid.Start(testCtx(t), n, "store", grid.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// TestOnceNodeDir runs the demo binary with -once on a node directory the
// test wrote, pointing at servers the test runs, and checks the JSON it
// prints against what the servers saw.
func TestOnceNodeDir(t *testing.T) {
	bin := buildDemo(t)
	g := startTestGrid(t, 3)
	s := g.Servers
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{
		Introducers: map[string][]*grid.Server{"intro": {s[0], s[1]}},
		Static:      []*grid.Server{s[2]},
	}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(testCtx(t), bin, "-once", "-node-dir", dir, "-timeout", "60s")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo -once: %v\nstderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "connected:  [########################] 3 of 3 servers connected") {
		t.Errorf("stderr lacks the final progress line:\n%s", stderr.String())
	}

	// stdout is exactly one JSON document.
	dec := json.NewDecoder(&stdout)
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("stdout is not JSON: %v", err)
	}
	if dec.More() {
		t.Error("stdout has more than the JSON document")
	}
	var rep status.Report
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Connected != 3 || rep.Total != 3 || rep.Summary != "Connected to 3 of 3 known storage servers" {
		t.Fatalf("report: %q (%d of %d)", rep.Summary, rep.Connected, rep.Total)
	}
	node, err := config.LoadIdentity(dir) // the demo created node.pem
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, gs := range s {
		var srv *status.Server
		for i := range rep.Servers {
			if rep.Servers[i].ID == gs.ID {
				srv = &rep.Servers[i]
			}
		}
		if srv == nil {
			t.Fatalf("%s missing from the JSON", gs.Nickname)
		}
		wantSource := "introducer:intro"
		if gs == s[2] {
			wantSource = "servers.yaml"
		}
		if !srv.Connected || srv.State != "connected" || srv.Nickname != gs.Nickname || srv.Source != wantSource ||
			srv.Version != "tahoe-lafs/1.20.0" || srv.ConnectedVia == nil || srv.ConnectedVia.Hint != "tcp:"+gs.Addr() ||
			srv.ConnectedVia.Handler != "tcp" || srv.Hints["tcp:"+gs.Addr()] != "successful" || srv.LastConnectionTime == nil ||
			srv.LastReceivedTime == nil || srv.NextAttempt != nil || !srv.RevealsIP || srv.ServerTubID != gs.Tub.TubID() {
			t.Errorf("%s: %+v", gs.Nickname, *srv)
		}
		clients, _ := gs.WaitClients(testCtx(t), 1)
		if len(clients) != 1 || clients[0] != srv.ClientTubID {
			t.Errorf("%s saw clients %v, the JSON says %s", gs.Nickname, clients, srv.ClientTubID)
		}
		if other, dup := seen[srv.ClientTubID]; dup {
			t.Errorf("%s and %s saw the same client TubID", other, gs.Nickname)
		}
		seen[srv.ClientTubID] = gs.Nickname
		if srv.ClientTubID == node.TubID {
			t.Errorf("%s saw the node's own TubID", gs.Nickname)
		}
	}
}

// TestOnceNotConnected: a server that is down makes -once exit 1 after the
// timeout, with the JSON still printed and an explanation on stderr.
func TestOnceNotConnected(t *testing.T) {
	bin := buildDemo(t)
	g := startTestGrid(t, 2)
	if err := g.Servers[1].Stop(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{Static: g.Servers}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(testCtx(t), bin, "-once", "-node-dir", dir, "-timeout", "1s")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("demo -once with a server down: %v, want exit status 1\nstderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "demo: 1 of 2 servers connected after 1s") {
		t.Errorf("stderr does not explain:\n%s", stderr.String())
	}
	var rep status.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not the JSON status: %v\n%s", err, stdout.String())
	}
	for _, s := range rep.Servers {
		if want := s.ID == g.Servers[0].ID; s.Connected != want {
			t.Errorf("%s: connected = %v, want %v", s.Nickname, s.Connected, want)
		}
	}
}

// TestOnceGridInProcess runs the whole demo grid mode with -once in this
// process (with the HTTP server on), so that goleak checks that shutdown
// stops every goroutine, and that the temporary node directory is removed.
func TestOnceGridInProcess(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(testCtx(t), []string{"-once", "-servers", "3", "-http", "127.0.0.1:0"}, &stdout, &stderr, true)
	if code != 0 {
		t.Fatalf("exit status %d\nstderr:\n%s", code, stderr.String())
	}
	var rep status.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("stdout: %v\n%s", err, stdout.String())
	}
	if rep.Node != "tubfarm-demo" || rep.Connected != 3 || rep.Total != 3 {
		t.Errorf("report: node %q, %d of %d", rep.Node, rep.Connected, rep.Total)
	}
	sources := map[string]int{}
	for _, s := range rep.Servers {
		sources[s.Source]++
	}
	// storage-1 (alpha), storage-2 (alpha and beta, merged), storage-3
	// (beta, overridden by servers.yaml).
	if sources["servers.yaml"] != 1 || sources["introducer:alpha"]+sources["introducer:beta"] != 2 || sources["introducer:alpha"] == 0 {
		t.Errorf("sources %v, want one servers.yaml override and two from the introducers, at least one from alpha", sources)
	}
	errText := stderr.String()
	for _, want := range []string{"status page:    http://127.0.0.1:", "unlinkable: 3 servers reached over HTTPS storage",
		"storage: wrote and read back a 40-byte share on every server (3 over https)"} {
		if !strings.Contains(errText, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errText)
		}
	}
	if strings.Contains(errText, "\x1b") {
		t.Error("-once wrote ANSI escapes although its output is for scripts")
	}
	m := regexp.MustCompile(`node directory: (\S+)`).FindStringSubmatch(errText)
	if m == nil {
		t.Fatal("no node directory line")
	}
	if _, err := os.Stat(m[1]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary node directory %s still exists: %v", m[1], err)
	}
}

// TestBadCommandLines checks that bad flags and unusable node directories
// give a clear message and a non-zero exit status, in process.
func TestBadCommandLines(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	empty := filepath.Join(tmp, "empty")
	badCfg := filepath.Join(tmp, "badcfg")
	badServers := filepath.Join(tmp, "badservers")
	noServers := filepath.Join(tmp, "noservers")
	for _, d := range []string{empty, badCfg, badServers, noServers} {
		if err := os.MkdirAll(filepath.Join(d, "private"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path, data string) {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(file, "x")
	write(config.TahoeCfgPath(badCfg), "[node]\nnickname = x\nreveal-IP-address = maybe\n")
	write(config.TahoeCfgPath(badServers), grid.DefaultTahoeCfg)
	write(config.ServersPath(badServers), "storage:\n  s1:\n    ann:\n      nickname: no furl\n")
	write(config.TahoeCfgPath(noServers), grid.DefaultTahoeCfg)

	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown flag", []string{"-bogus"}, 2, "flag provided but not defined: -bogus"},
		{"argument", []string{"extra"}, 2, `demo: unexpected argument "extra"`},
		{"servers zero", []string{"-servers", "0"}, 2, "demo: -servers 0: must be between 1 and 100"},
		{"servers too many", []string{"-servers", "101"}, 2, "demo: -servers 101: must be between 1 and 100"},
		{"timeout zero", []string{"-timeout", "0s"}, 2, "demo: -timeout 0s: must be positive"},
		{"bad duration", []string{"-timeout", "soon"}, 2, `invalid value "soon" for flag -timeout`},
		{"negative chaos", []string{"-chaos", "-1s"}, 2, "demo: -chaos -1s: must not be negative"},
		{"log level", []string{"-log", "loud"}, 2, `demo: -log "loud": want debug, info, warn or error`},
		{"empty http", []string{"-http", ""}, 2, "demo: -http: empty address"},
		{"grid flag with node dir", []string{"-node-dir", noServers, "-servers", "3"}, 2, "demo: -servers applies to the demo grid and cannot be used with -node-dir"},
		{"help", []string{"-h"}, 0, "Usage: demo [flags]"},
		{"missing dir", []string{"-node-dir", filepath.Join(tmp, "nope")}, 1, "demo: node directory " + filepath.Join(tmp, "nope") + " does not exist"},
		{"file", []string{"-node-dir", file}, 1, "demo: node directory " + file + " is not a directory"},
		{"not a node dir", []string{"-node-dir", empty}, 1, "is not a Tahoe node directory: " + config.TahoeCfgPath(empty) + " does not exist"},
		{"bad tahoe.cfg", []string{"-node-dir", badCfg}, 1, config.TahoeCfgPath(badCfg) + ":3"},
		{"bad servers.yaml", []string{"-node-dir", badServers}, 1, config.ServersPath(badServers) + ":4: storage.s1.ann.anonymous-storage-FURL"},
		{"no servers", []string{"-once", "-node-dir", noServers}, 1, "defines no storage servers"},
		{"bad listen address", []string{"-once", "-servers", "1", "-http", "127.0.0.1:notaport"}, 1, "demo: status page: listen tcp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(testCtx(t), tc.args, &stdout, &stderr, false)
			if code != tc.code {
				t.Errorf("exit status %d, want %d\nstderr:\n%s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.msg) {
				t.Errorf("stderr lacks %q:\n%s", tc.msg, stderr.String())
			}
			if tc.code != 0 && stdout.Len() != 0 && strings.Contains(strings.Join(tc.args, " "), "-once") {
				t.Errorf("a failed -once printed on stdout:\n%s", stdout.String())
			}
		})
	}
}

// demoProc is a demo process whose stdout lines the test reads as they
// come.
type demoProc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer // read only after done is closed

	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced at each line, and at EOF
	eof     bool

	next    int           // the next line waitLine examines
	done    chan struct{} // closed when the process has exited
	waitErr error
}

func startDemo(t *testing.T, bin string, args ...string) *demoProc {
	t.Helper()
	p := &demoProc{changed: make(chan struct{}), done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stderr = &p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
		p.mu.Lock()
		p.eof = true
		close(p.changed)
		p.mu.Unlock()
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitLine returns the first line from the current position on that
// matches re, and the line's submatches; it fails the test if the process
// ends or ctx expires first.
func (p *demoProc) waitLine(t *testing.T, ctx context.Context, re *regexp.Regexp) []string {
	t.Helper()
	for {
		p.mu.Lock()
		lines, eof, changed := p.lines, p.eof, p.changed
		p.mu.Unlock()
		for ; p.next < len(lines); p.next++ {
			if m := re.FindStringSubmatch(lines[p.next]); m != nil {
				p.next++
				return m
			}
		}
		if eof {
			t.Fatalf("demo ended before printing a line matching %q\nstdout:\n%s", re, p.output())
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("no line matching %q before the deadline\nstdout:\n%s", re, p.output())
		}
	}
}

func (p *demoProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// stop sends sig and returns the exit status.
func (p *demoProc) stop(t *testing.T, ctx context.Context, sig os.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		t.Fatalf("demo did not exit after %v\nstdout:\n%s", sig, p.output())
	}
	var exit *exec.ExitError
	if errors.As(p.waitErr, &exit) {
		return exit.ExitCode()
	}
	if p.waitErr != nil {
		t.Fatal(p.waitErr)
	}
	return 0
}

var (
	readyLine   = regexp.MustCompile(`^ready: status page at (http://127\.0\.0\.1:\d+/) `)
	nodeDirLine = regexp.MustCompile(`^  node directory: (\S+)$`)
)

// TestLiveChaos runs the demo as a person would (stdout not a terminal):
// it prints its table, says it is ready, and its chaos loop stops a server
// that the broker then reconnects to after the restart, each step visible
// as an event line; SIGTERM ends it with status 0 and removes its node
// directory.
func TestLiveChaos(t *testing.T) {
	ctx := testCtx(t)
	p := startDemo(t, buildDemo(t), "-servers", "3", "-chaos", "1s", "-downtime", "200ms", "-seed", "7", "-foolscap")
	dir := p.waitLine(t, ctx, nodeDirLine)[1]
	p.waitLine(t, ctx, regexp.MustCompile(`^connected:  \[#+\] 3 of 3 servers connected`))
	p.waitLine(t, ctx, regexp.MustCompile(`^unlinkable: 3 servers saw 3 different client TubIDs`))
	p.waitLine(t, ctx, regexp.MustCompile(`^storage: wrote and read back a \d+-byte share on every server \(3 over foolscap\)$`))
	p.waitLine(t, ctx, regexp.MustCompile(`^Connected to 3 of 3 known storage servers$`))
	p.waitLine(t, ctx, readyLine)
	victim := p.waitLine(t, ctx, regexp.MustCompile(`^\d\d:\d\d:\d\d  chaos: stopped (storage-\d)`))[1]
	p.waitLine(t, ctx, regexp.MustCompile(`^\d\d:\d\d:\d\d  `+victim+` +connected → waiting_to_retry, next attempt in \S+ \(`))
	p.waitLine(t, ctx, regexp.MustCompile(`^\d\d:\d\d:\d\d  chaos: restarted `+victim+` on 127\.0\.0\.1:\d+$`))
	p.waitLine(t, ctx, regexp.MustCompile(`^\d\d:\d\d:\d\d  `+victim+` +connected to tcp:127\.0\.0\.1:\d+ via tcp, as client [a-z2-7]{8}…$`))

	if code := p.stop(t, ctx, syscall.SIGTERM); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0\nstderr:\n%s", code, p.stderr.String())
	}
	out := p.output()
	if !strings.HasSuffix(out, "shutting down") {
		t.Errorf("output does not end with the shutdown line:\n%s", out)
	}
	if strings.Contains(out, "\x1b") {
		t.Error("ANSI escapes on a stdout that is not a terminal")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("node directory %s left behind: %v", dir, err)
	}
}

// TestOnceLiveIntroducer runs the demo on a node directory whose tahoe.cfg
// names a live introducer ([client] introducer.furl, petname "default") and
// that has no cache: the servers come from its announcements alone.
func TestOnceLiveIntroducer(t *testing.T) {
	bin := buildDemo(t)
	g := startTestGrid(t, 2)
	in, err := introducerserver.Start(testCtx(t), introducerserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Close)
	for _, s := range g.Servers {
		signed, err := s.Signed(1)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := in.Publish(signed); r != introducer.Accepted {
			t.Fatal(r, err)
		}
	}
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{TahoeCfg: grid.DefaultTahoeCfg + "[client]\nintroducer.furl = " + in.FURL + "\n"}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(testCtx(t), bin, "-once", "-node-dir", dir, "-timeout", "60s")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo -once: %v\nstderr:\n%s", err, stderr.String())
	}
	var rep status.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Connected != 2 || len(rep.Introducers) != 1 {
		t.Fatalf("report: %d connected, introducers %+v", rep.Connected, rep.Introducers)
	}
	if in0 := rep.Introducers[0]; in0.Petname != "default" || !in0.Subscribed || in0.Announcements.Accepted != 2 {
		t.Errorf("introducer %+v", in0)
	}
	for _, s := range rep.Servers {
		if len(s.Introducers) != 1 || s.Introducers[0] != "default" {
			t.Errorf("%s announced by %v", s.Nickname, s.Introducers)
		}
	}
	if c, err := config.ReadCache(config.CachePath(dir, "default")); err != nil || len(c.Entries) != 2 {
		t.Errorf("cache after the run: %v, %v", c, err)
	}
}
