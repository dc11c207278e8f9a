package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/tubfarm/tubfarm/bench/internal/gridproc"
	"github.com/tubfarm/tubfarm/bench/internal/measure"
	"github.com/tubfarm/tubfarm/bench/internal/refid"
	"github.com/tubfarm/tubfarm/internal/grid"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// row is one client run.
type row struct {
	client  string // who connects
	servers string // to whom
	ids     []time.Duration
	connect time.Duration
	maxRSS  int64 // bytes
}

// Row labels, also used to find rows for the ratios.
const (
	fsPerTub    = "Foolscap, new Tub per server"
	fsShared    = "Foolscap, one Tub"
	tfPerServer = "tubfarm, identity per server"
	tfShared    = "tubfarm, one shared identity"
	srvFoolscap = "Foolscap (Python)"
	srvGo       = "tubfarm (Go)"
)

// run is the command: parse args, measure, print the table to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	if err := checkPython(ctx, cfg.python); err != nil {
		return err
	}
	if _, err := measure.RaiseNOFILE(); err != nil {
		return err
	}
	machineBefore := measure.ReadMachine()
	tmp, err := os.MkdirTemp("", "tubfarm-compare-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "compare: "+format+"\n", a...) }

	// Servers: N Foolscap Tubs in one Python process, and N Go servers.
	logf("making %d %s server certificates", cfg.servers, cfg.serverKey)
	pems, err := serverPEMs(cfg.servers, cfg.serverKey)
	if err != nil {
		return err
	}
	logf("starting %d Foolscap servers in %d Python process(es)", cfg.servers, cfg.pyProcs)
	var furls []string
	for i, part := range split(pems, cfg.pyProcs) {
		py, f, err := startPyServers(ctx, cfg.python, filepath.Join(tmp, fmt.Sprintf("server-pems-%d.json", i)), part)
		if err != nil {
			return err
		}
		defer py.stop()
		furls = append(furls, f...)
	}
	pyDir := filepath.Join(tmp, "node-foolscap")
	if err := writeNodeDir(pyDir, furls); err != nil {
		return err
	}
	furlsPath := filepath.Join(tmp, "furls.json")
	if err := writeJSON(furlsPath, furls); err != nil {
		return err
	}
	logf("starting %d Go servers", cfg.servers)
	gp, err := gridproc.Start(ctx, cfg.servers, filepath.Join(tmp, "node-go"))
	if err != nil {
		return err
	}
	defer gp.Close()

	// Clients, one child process each, one after another. The Foolscap
	// clients run once (a Tub per server takes about a minute per 200
	// servers); the tubfarm clients run -rounds times, interleaved, and
	// report their median.
	type scenario struct {
		client, servers string
		run             func() (row, error)
	}
	var rows []row
	measure1 := func(c scenario) (row, error) {
		logf("running %s against %s servers", c.client, c.servers)
		r, err := c.run()
		if err != nil {
			return row{}, fmt.Errorf("%s against %s servers: %w", c.client, c.servers, err)
		}
		r.client, r.servers = c.client, c.servers
		return r, nil
	}
	for _, c := range []scenario{
		{fsPerTub, srvFoolscap, func() (row, error) { return runPyClient(ctx, cfg, "pertub", furlsPath) }},
		{fsShared, srvFoolscap, func() (row, error) { return runPyClient(ctx, cfg, "shared", furlsPath) }},
	} {
		r, err := measure1(c)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	goScenarios := []scenario{
		{tfPerServer, srvFoolscap, func() (row, error) { return runGoClient(ctx, cfg, "per_server", pyDir) }},
		{tfShared, srvFoolscap, func() (row, error) { return runGoClient(ctx, cfg, "shared", pyDir) }},
		{tfPerServer, srvGo, func() (row, error) { return runGoClient(ctx, cfg, "per_server", gp.Dir) }},
		{tfShared, srvGo, func() (row, error) { return runGoClient(ctx, cfg, "shared", gp.Dir) }},
	}
	rounds := make([][]row, len(goScenarios))
	for range cfg.rounds {
		for i, c := range goScenarios {
			r, err := measure1(c)
			if err != nil {
				return err
			}
			rounds[i] = append(rounds[i], r)
		}
	}
	for _, rs := range rounds {
		rows = append(rows, median(rs))
	}
	printReport(stdout, cfg, machineBefore, measure.ReadMachine(), rows)
	return nil
}

// median merges rounds of one scenario: the median time until all
// connected, every identity sample, and the highest peak RSS.
func median(rs []row) row {
	m := rs[0]
	m.ids = nil
	var connects []time.Duration
	for _, r := range rs {
		connects = append(connects, r.connect)
		m.ids = append(m.ids, r.ids...)
		m.maxRSS = max(m.maxRSS, r.maxRSS)
	}
	m.connect = measure.Percentile(connects, 50)
	return m
}

// checkPython fails clearly when Foolscap cannot be imported.
func checkPython(ctx context.Context, python string) error {
	out, err := exec.CommandContext(ctx, python, "-c", "import foolscap, twisted; print(foolscap.__version__)").CombinedOutput()
	if err != nil {
		return fmt.Errorf("python3-foolscap is required under %s (on Debian: apt-get install python3-foolscap): %v: %s",
			python, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// serverPEMs makes n server identities in parallel and returns them as
// Foolscap certData PEM texts.
func serverPEMs(n int, kind string) ([]string, error) {
	make1 := tubtls.NewEphemeral
	if kind == "rsa" {
		make1 = refid.NewRSA2048
	}
	pems := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.NumCPU() {
		wg.Go(func() {
			for i := range next {
				id, err := make1()
				if err == nil {
					var b []byte
					b, err = id.MarshalPEM()
					pems[i] = string(b)
				}
				errs[i] = err
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return pems, errors.Join(errs...)
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// writeNodeDir writes a client node directory whose servers.yaml lists the
// FURLs.
func writeNodeDir(dir string, furls []string) error {
	if err := grid.WriteNodeDir(dir, grid.NodeDir{}); err != nil {
		return err
	}
	var sb strings.Builder
	sb.WriteString("storage:\n")
	for i, f := range furls {
		fmt.Fprintf(&sb, "  py-%d:\n    ann:\n      nickname: py-%d\n      anonymous-storage-FURL: %s\n", i, i, f)
	}
	return os.WriteFile(filepath.Join(dir, "private", "servers.yaml"), []byte(sb.String()), 0o600)
}

// pyProc is the Python server process.
type pyProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *pyProc) stop() {
	p.cmd.Process.Kill()
	<-p.done
}

// split cuts s into at most n contiguous parts of nearly equal length.
func split[T any](s []T, n int) [][]T {
	n = min(n, len(s))
	var parts [][]T
	for i := range n {
		parts = append(parts, s[i*len(s)/n:(i+1)*len(s)/n])
	}
	return parts
}

// startPyServers starts one Python process serving a Foolscap Tub for each
// PEM (written to pemPath for it) and returns their FURLs.
func startPyServers(ctx context.Context, python, pemPath string, pems []string) (*pyProc, []string, error) {
	if err := writeJSON(pemPath, pems); err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(python, "-u", "-W", "ignore::DeprecationWarning", "-c", pyServers, pemPath)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("starting Foolscap servers: %w", err)
	}
	p := &pyProc{cmd: cmd, done: make(chan struct{})}
	lines := make(chan string)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
			}
		}
		close(lines)
		io.Copy(io.Discard, stdout)
		cmd.Wait()
	}()
	furls := make([]string, len(pems))
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				p.stop()
				return nil, nil, errors.New("the Foolscap server process exited before READY (see its stderr above)")
			}
			if line == "READY" {
				for i, f := range furls {
					if f == "" {
						p.stop()
						return nil, nil, fmt.Errorf("the Foolscap server %d printed no FURL", i)
					}
				}
				return p, furls, nil
			}
			var i int
			var furl string
			if _, err := fmt.Sscanf(line, "FURL %d %s", &i, &furl); err != nil || i < 0 || i >= len(furls) {
				p.stop()
				return nil, nil, fmt.Errorf("unexpected line from the Foolscap servers: %q", line)
			}
			furls[i] = furl
		case <-ctx.Done():
			p.stop()
			return nil, nil, fmt.Errorf("waiting for the Foolscap servers: %w", ctx.Err())
		}
	}
}

// pyReport is what pyClient prints.
type pyReport struct {
	IDs      []float64 `json:"ids_s"`
	Connect  float64   `json:"connect_s"`
	MaxRSS   int64     `json:"maxrss_kib"`
	ErrorMsg string    `json:"error"`
}

func runPyClient(ctx context.Context, cfg config, mode, furlsPath string) (row, error) {
	cmd := exec.CommandContext(ctx, cfg.python, "-u", "-c", pyClient, mode, furlsPath, fmt.Sprint(cfg.pyIDSamples))
	var rep pyReport
	ps, err := runChild(cmd, &rep)
	if err != nil {
		return row{}, err
	}
	if rep.ErrorMsg != "" {
		return row{}, fmt.Errorf("the Python Foolscap client failed: %s", rep.ErrorMsg)
	}
	r := row{connect: seconds(rep.Connect), maxRSS: measure.ChildMaxRSS(ps)}
	for _, s := range rep.IDs {
		r.ids = append(r.ids, seconds(s))
	}
	return r, nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func runGoClient(ctx context.Context, cfg config, mode, dir string) (row, error) {
	exe, err := os.Executable()
	if err != nil {
		return row{}, err
	}
	spec, err := json.Marshal(clientSpec{Dir: dir, Servers: cfg.servers, Mode: mode, IDSamples: cfg.idSamples})
	if err != nil {
		return row{}, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), envClient+"="+string(spec))
	var rep clientReport
	ps, err := runChild(cmd, &rep)
	if err != nil {
		return row{}, err
	}
	if rep.Error != "" {
		return row{}, fmt.Errorf("tubfarm client: %s", rep.Error)
	}
	r := row{connect: time.Duration(rep.ConnectNS), maxRSS: measure.ChildMaxRSS(ps)}
	for _, ns := range rep.IDsNS {
		r.ids = append(r.ids, time.Duration(ns))
	}
	return r, nil
}

// runChild runs cmd, decodes the last line of its standard output as JSON
// into v, and returns its process state (for ru_maxrss).
func runChild(cmd *exec.Cmd, v any) (*os.ProcessState, error) {
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	if err != nil {
		return nil, fmt.Errorf("%s: %w (output %q)", filepath.Base(cmd.Path), err, truncate(out.String(), 400))
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		return nil, fmt.Errorf("%s printed %q: %w", filepath.Base(cmd.Path), truncate(out.String(), 400), err)
	}
	return cmd.ProcessState, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// printReport prints the machine, the table, the ratios and the goals.
func printReport(w io.Writer, cfg config, before, after measure.Machine, rows []row) {
	fmt.Fprintf(w, "tubfarm vs Foolscap, %d servers of each kind, one run on one machine\n", cfg.servers)
	fmt.Fprintf(w, "machine: %s; load at end %q\n", before, after.Load)
	fmt.Fprintf(w, "identity samples: %d Foolscap Tub(), %d tubfarm NewEphemeral per client run\n", cfg.pyIDSamples, cfg.idSamples)
	fmt.Fprintf(w, "Foolscap servers: %s certificates, in %d Python process(es)\n", cfg.serverKey, cfg.pyProcs)
	fmt.Fprintf(w, "Foolscap clients ran once; tubfarm clients %d times, interleaved (median time, highest RSS)\n\n", cfg.rounds)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "client\tservers\tidentity p50\tidentity p95\tall connected\tpeak RSS\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", r.client, r.servers,
			dur(measure.Percentile(r.ids, 50)), dur(measure.Percentile(r.ids, 95)), dur(r.connect), mib(r.maxRSS))
	}
	tw.Flush()

	find := func(client, servers string) *row {
		for i := range rows {
			if rows[i].client == client && rows[i].servers == servers {
				return &rows[i]
			}
		}
		return nil
	}
	fsT, fsS := find(fsPerTub, srvFoolscap), find(fsShared, srvFoolscap)
	tfP, tfS := find(tfPerServer, srvFoolscap), find(tfShared, srvFoolscap)
	goP, goS := find(tfPerServer, srvGo), find(tfShared, srvGo)
	p50 := func(r *row) time.Duration { return measure.Percentile(r.ids, 50) }

	fmt.Fprintf(w, "\nratios (same run):\n")
	tw = tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	ratio := func(what string, num, den float64, goal string, met bool) {
		verdict := ""
		if goal != "" {
			verdict = "goal " + goal + ": " + map[bool]string{true: "met", false: "MISSED"}[met]
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", what, times(num/den), verdict)
	}
	idRatio := float64(p50(fsT)) / float64(p50(goP))
	ratio("identity creation, Foolscap Tub() / tubfarm (p50)", float64(p50(fsT)), float64(p50(goP)), "≥ 1000×", idRatio >= 1000)
	allRatio := float64(fsT.connect) / float64(tfP.connect)
	ratio(fmt.Sprintf("%d servers connected, Foolscap Tub per server / tubfarm per server (Foolscap servers)", cfg.servers),
		float64(fsT.connect), float64(tfP.connect), "≥ 100×", allRatio >= 100)
	ratio("all connected, Foolscap one Tub / tubfarm shared identity (Foolscap servers)", float64(fsS.connect), float64(tfS.connect), "", false)
	ratio("all connected, Foolscap Tub per server / Foolscap one Tub", float64(fsT.connect), float64(fsS.connect), "", false)
	ratio("all connected, tubfarm per server / shared identity (Go servers)", float64(goP.connect), float64(goS.connect),
		"≤ 1.2×", float64(goP.connect) <= 1.2*float64(goS.connect))
	ratio("all connected, tubfarm per server / shared identity (Foolscap servers)", float64(tfP.connect), float64(tfS.connect),
		"≤ 1.2×", float64(tfP.connect) <= 1.2*float64(tfS.connect))
	ratio("peak RSS, Foolscap Tub per server / tubfarm per server (Foolscap servers)", float64(fsT.maxRSS), float64(tfP.maxRSS), "", false)
	tw.Flush()
}

func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func times(x float64) string {
	if x >= 10 {
		return fmt.Sprintf("%.0f×", x)
	}
	return fmt.Sprintf("%.2f×", x)
}
