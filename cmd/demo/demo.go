package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/actors"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/internal/grid"
	"github.com/tubfarm/tubfarm/internal/introducerserver"
	"github.com/tubfarm/tubfarm/internal/liveview"
	"github.com/tubfarm/tubfarm/internal/termsafe"
	"github.com/tubfarm/tubfarm/introducer"
	"github.com/tubfarm/tubfarm/messages"
	"github.com/tubfarm/tubfarm/status"
	"github.com/tubfarm/tubfarm/storage"
)

// demoNickname is the [node] nickname of the demo grid's node directory.
const demoNickname = "tubfarm-demo"

// demoBackoff reconnects quickly so that a stopped server's return is seen
// within seconds (the default caps at five minutes).
var demoBackoff = actors.Backoff{
	BaseDelay:   500 * time.Millisecond,
	Multiplier:  2,
	Jitter:      0.2,
	MaxDelay:    4 * time.Second,
	StableAfter: 5 * time.Second,
}

// demo is one run of the program.
type demo struct {
	opts           *options
	stdout, stderr io.Writer
	tty            bool

	out     io.Writer // human-readable output: stdout, or stderr with -once
	grid    *grid.Grid
	intros  []*introducerserver.Server // alpha, beta
	dir     string                     // node directory
	tempDir bool                       // dir is ours to remove
	broker  *tubfarm.Broker
	handler *status.Handler
	url     string // status page URL, if served
	started time.Time
	view    *liveview.View
}

func (d *demo) run(ctx context.Context) (err error) {
	d.out = d.stdout
	if d.opts.once {
		d.out = d.stderr
	}
	d.started = time.Now()
	log := slog.New(slog.NewTextHandler(d.stderr, &slog.HandlerOptions{Level: d.opts.logLevel}))

	if d.opts.nodeDir == "" {
		if err := d.startGrid(ctx); err != nil {
			return err
		}
	} else {
		if err := config.CheckNodeDir(d.opts.nodeDir); err != nil {
			return err
		}
		d.dir = d.opts.nodeDir
	}
	defer d.closeGrid()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	bopts := tubfarm.Options{Logger: log, Registerer: reg}
	if d.grid != nil {
		bopts.Backoff = demoBackoff
		bopts.HTTPSPoll = time.Second // as Tahoe, so the chaos loop's stops show at once
	}
	d.broker, err = tubfarm.Open(d.dir, bopts)
	if err != nil {
		return fmt.Errorf("node directory %s: %w", d.dir, err)
	}
	defer d.broker.Close()
	node := d.broker.Node()
	d.handler = status.NewHandler(d.broker, status.Options{Node: node.Config.Nickname, Gatherer: reg})

	if !d.opts.once || d.opts.httpSet {
		stop, err := d.serveHTTP()
		if err != nil {
			return err
		}
		defer stop()
	}
	d.printHeader(node)
	d.view = &liveview.View{Broker: d.broker, Handler: d.handler, Out: d.out, TTY: d.tty,
		Title: "tubfarm demo", Dir: d.dir, URL: d.url, Started: d.started}

	if len(node.Introducers) > 0 {
		// The servers come from the introducers' announcements: wait
		// until each has answered or failed a first attempt (or the
		// timeout), then count them.
		wctx, cancel := context.WithTimeout(ctx, d.opts.timeout)
		err := d.broker.WhenIntroducers(wctx, func(sts []messages.IntroducerStatus) bool {
			for _, st := range sts {
				if !st.Subscribed && st.Error == "" && st.State != actors.WaitingToRetry {
					return false
				}
			}
			return true
		})
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			fmt.Fprintf(d.out, "warning: not every introducer answered or failed within %v\n", d.opts.timeout)
		}
	}
	total := len(d.broker.Servers())
	if total == 0 {
		if d.opts.once {
			return fmt.Errorf("node directory %s defines no storage servers (no servers.yaml entries, no announcements from introducers or their caches)", d.dir)
		}
		fmt.Fprintf(d.out, "warning: the node directory defines no storage servers yet\n")
	}
	all := d.view.WaitConnected(ctx, total, d.opts.timeout)
	if ctx.Err() != nil {
		return nil // interrupted during start-up
	}
	var linkErr, storeErr error
	if d.grid != nil && all {
		linkErr = d.printUnlinkability()
	}
	if all {
		storeErr = d.exchange(ctx)
	}

	if d.opts.once {
		rep := d.handler.Report()
		out, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		// Servers' text may hold characters JSON keeps raw but a
		// terminal acts on.
		if _, err := d.stdout.Write(append(termsafe.JSON(out), '\n')); err != nil {
			return err
		}
		switch {
		case !all:
			return fmt.Errorf("%d of %d servers connected after %v", rep.Connected, rep.Total, d.opts.timeout)
		case linkErr != nil:
			return linkErr
		case storeErr != nil:
			return storeErr
		}
		return nil
	}
	if linkErr != nil {
		fmt.Fprintf(d.out, "warning: %s\n", termsafe.Error(linkErr))
	}
	if storeErr != nil {
		fmt.Fprintf(d.out, "warning: %s\n", termsafe.Error(storeErr))
	}
	if !all {
		fmt.Fprintf(d.out, "not every server connected within %v; carrying on\n", d.opts.timeout)
	}
	d.live(ctx)
	return nil
}

// startGrid starts the demo's storage servers and two introducers, and
// writes a node directory for them with no caches: the servers publish
// signed announcements to introducer "alpha" (the first two thirds,
// seqnum 1) and "beta" (the last two thirds, seqnum 2, as a server bumps
// its seqnum for each introducer), and servers.yaml overrides the last
// server.
func (d *demo) startGrid(ctx context.Context) error {
	g, err := grid.Start(ctx, d.opts.servers, "storage", grid.Options{HTTPS: true})
	if err != nil {
		return fmt.Errorf("starting the demo grid: %w", err)
	}
	d.grid = g
	for range 2 {
		in, err := introducerserver.Start(ctx, introducerserver.Options{})
		if err != nil {
			return fmt.Errorf("starting the demo introducers: %w", err)
		}
		d.intros = append(d.intros, in)
	}
	dir, err := os.MkdirTemp("", "tubfarm-demo-")
	if err != nil {
		return err
	}
	d.dir, d.tempDir = dir, true
	n := len(g.Servers)
	alpha := g.Servers[:(2*n+2)/3]
	beta := g.Servers[n/3:]
	last := g.Servers[n-1]
	cfg := "[node]\nnickname = " + demoNickname + "\ntub.port = disabled\ntub.location = disabled\nreveal-IP-address = true\n\n[connections]\ntcp = tcp\n"
	if d.opts.foolscap {
		cfg += "\n[client]\nforce_foolscap = true\n"
	}
	for i, set := range [][]*grid.Server{alpha, beta} {
		for _, s := range set {
			signed, err := s.Signed(int64(i + 1))
			if err != nil {
				return err
			}
			if r, err := d.intros[i].Publish(signed); r != introducer.Accepted {
				return fmt.Errorf("publishing %s: %s %v", s.Nickname, r, err)
			}
		}
	}
	return grid.WriteNodeDir(dir, grid.NodeDir{
		TahoeCfg:        cfg,
		IntroducerFURLs: map[string]string{"alpha": d.intros[0].FURL, "beta": d.intros[1].FURL},
		Static:          []*grid.Server{last},
		Connections:     map[string]map[string]string{last.ID: {"tcp": "tcp"}},
	})
}

func (d *demo) closeGrid() {
	for _, in := range d.intros {
		in.Close()
	}
	if d.grid != nil {
		d.grid.Close()
	}
	if d.tempDir {
		os.RemoveAll(d.dir)
	}
}

// serveHTTP starts the status server and returns a function that shuts it
// down.
func (d *demo) serveHTTP() (stop func(), err error) {
	d.url, stop, err = liveview.Serve(d.opts.http, d.handler)
	return stop, err
}

func (d *demo) printHeader(node *config.Node) {
	w := d.out
	fmt.Fprintf(w, "tubfarm demo\n")
	if d.grid != nil {
		n := len(d.grid.Servers)
		fmt.Fprintf(w, "  grid:           %d storage servers on 127.0.0.1, each with its own port and identity\n", n)
		fmt.Fprintf(w, "  introducers:    two Go introducers on 127.0.0.1: alpha announces %s, beta announces %s (no caches: discovered live)\n",
			nickRange(d.grid.Servers[:(2*n+2)/3]), nickRange(d.grid.Servers[n/3:]))
		fmt.Fprintf(w, "  servers.yaml:   overrides %s\n", d.grid.Servers[n-1].Nickname)
		if !d.opts.once && d.opts.chaos > 0 {
			fmt.Fprintf(w, "  chaos:          one server (now and then an introducer) stopped every ~%v for %v (seed %d)\n", d.opts.chaos, d.opts.downtime, d.opts.seed)
		}
	}
	fmt.Fprintf(w, "  node directory: %s\n", d.dir)
	if id := node.Identity; id != nil {
		fmt.Fprintf(w, "  node TubID:     %s (node.pem; never shown to a storage server)\n", id.TubID)
	}
	for _, warn := range node.Warnings {
		fmt.Fprintf(w, "  warning:        %s\n", termsafe.Error(warn))
	}
	if d.url != "" {
		fmt.Fprintf(w, "  status page:    %s  (JSON: %sstatus?t=json, metrics: %smetrics)\n", d.url, d.url, d.url)
	}
}

func nickRange(ss []*grid.Server) string {
	if len(ss) == 1 {
		return ss[0].Nickname
	}
	return ss[0].Nickname + " to " + ss[len(ss)-1].Nickname
}

// printUnlinkability shows which client TubID each server saw, and checks
// that no two servers saw the same one and none saw the node's own. Over
// HTTPS storage the client presents no certificate at all.
func (d *demo) printUnlinkability() error {
	https := 0
	for _, s := range d.broker.Servers() {
		if s.Status().Protocol == "https" {
			https++
		}
	}
	if https == len(d.grid.Servers) {
		fmt.Fprintf(d.out, "unlinkable: %d servers reached over HTTPS storage, with no client certificate and a transport and SOCKS credentials of their own each\n", https)
		return nil
	}
	var nodeID string
	if id := d.broker.Identity(); id != nil {
		nodeID = id.TubID
	}
	owner := map[string]string{}
	var problems []string
	fmt.Fprintf(d.out, "client TubIDs seen by each server:\n")
	servers := append([]*grid.Server(nil), d.grid.Servers...)
	sort.Slice(servers, func(i, j int) bool { return servers[i].Nickname < servers[j].Nickname })
	// Each server records its client in its own goroutine, a moment after
	// the client sees the connection up: wait for the records.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, gs := range servers {
		seen, _ := gs.WaitClients(ctx, 1)
		fmt.Fprintf(d.out, "  %-12s saw %s\n", gs.Nickname, strings.Join(seen, ", "))
		for _, c := range seen {
			if other, dup := owner[c]; dup && other != gs.Nickname {
				problems = append(problems, fmt.Sprintf("%s and %s saw the same client TubID %s", other, gs.Nickname, c))
			}
			owner[c] = gs.Nickname
			if c == nodeID {
				problems = append(problems, fmt.Sprintf("%s saw the node's own TubID %s", gs.Nickname, c))
			}
		}
	}
	if len(problems) > 0 {
		return errors.New("linkable: " + strings.Join(problems, "; "))
	}
	fmt.Fprintf(d.out, "unlinkable: %d servers saw %d different client TubIDs, none of them the node's own\n", len(servers), len(owner))
	return nil
}

// live shows the status until ctx ends (see liveview.View.Live) and, in
// demo grid mode, runs the chaos loop.
func (d *demo) live(ctx context.Context) {
	var wg sync.WaitGroup
	chaosCtx, stopChaos := context.WithCancel(ctx)
	defer func() {
		stopChaos()
		wg.Wait()
	}()
	if d.grid != nil && d.opts.chaos > 0 {
		wg.Go(func() { d.chaos(chaosCtx) })
	}
	d.view.Live(ctx)
}

// event adds a line to the live view.
func (d *demo) event(line string) { d.view.Event(line) }

// chaos stops a random server every opts.chaos on average, and restarts it
// opts.downtime later on the same port with the same identity.
func (d *demo) chaos(ctx context.Context) {
	rng := rand.New(rand.NewPCG(uint64(d.opts.seed), 0x7475626661726d))
	for {
		wait := time.Duration(float64(d.opts.chaos) * (0.5 + rng.Float64()))
		if !sleep(ctx, wait) {
			return
		}
		if rng.IntN(4) == 0 {
			// Now and then an introducer goes away: its servers stay
			// connected, and the broker subscribes again when it is back.
			in := d.intros[rng.IntN(len(d.intros))]
			in.Stop()
			d.event(fmt.Sprintf("chaos: stopped introducer %s; restarting it in %s", in.Addr(), status.Human(d.opts.downtime)))
			if !sleep(ctx, d.opts.downtime) {
				return
			}
			if err := in.Restart(ctx); err != nil {
				d.event(fmt.Sprintf("chaos: restarting introducer %s failed: %v", in.Addr(), err))
				continue
			}
			d.event(fmt.Sprintf("chaos: restarted introducer %s", in.Addr()))
			continue
		}
		s := d.grid.Servers[rng.IntN(len(d.grid.Servers))]
		if err := s.Stop(); err != nil {
			d.event(fmt.Sprintf("chaos: stopping %s failed: %v", s.Nickname, err))
			continue
		}
		d.event(fmt.Sprintf("chaos: stopped %s; restarting it in %s", s.Nickname, status.Human(d.opts.downtime)))
		if !sleep(ctx, d.opts.downtime) {
			// Shutting down: Grid.Close closes the listener already
			// closed; nothing to restart.
			return
		}
		if err := s.Restart(ctx); err != nil {
			d.event(fmt.Sprintf("chaos: restarting %s failed: %v", s.Nickname, err))
			continue
		}
		d.event(fmt.Sprintf("chaos: restarted %s on %s", s.Nickname, s.Addr()))
	}
}

// sleep waits for d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// exchange uploads a small immutable share to every server through the
// typed storage API and reads it back, so that the demo shows storage
// working, not only connections.
func (d *demo) exchange(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	protocols := map[string]int{}
	var size int
	for _, srv := range d.broker.Servers() {
		data := []byte("hello from the tubfarm demo to " + srv.Nickname())
		size = len(data)
		sum := sha256.Sum256([]byte("tubfarm demo " + srv.ID()))
		var si storage.Index
		copy(si[:], sum[:])
		if err := putGet(ctx, srv.Storage(), si, data); err != nil {
			return fmt.Errorf("storage exchange with %s: %w", srv.Nickname(), err)
		}
		protocols[srv.Status().Protocol]++
	}
	var parts []string
	for _, p := range []string{"https", "foolscap"} {
		if protocols[p] > 0 {
			parts = append(parts, fmt.Sprintf("%d over %s", protocols[p], p))
		}
	}
	fmt.Fprintf(d.out, "storage: wrote and read back a %d-byte share on every server (%s)\n", size, strings.Join(parts, ", "))
	return nil
}

// putGet stores data as share 0 of si (unless the server has it already)
// and checks that it reads back the same.
func putGet(ctx context.Context, st storage.Server, si storage.Index, data []byte) error {
	lease := storage.LeaseSecrets{Renew: storage.RandomSecret(), Cancel: storage.RandomSecret()}
	a, err := st.AllocateBuckets(ctx, si, lease, []storage.ShareNum{0}, uint64(len(data)))
	if err != nil {
		return err
	}
	if w := a.Writers[0]; w != nil {
		if err := w.Write(ctx, 0, data); err != nil {
			return err
		}
		if err := w.Close(ctx); err != nil {
			return err
		}
	}
	rs, err := st.GetBuckets(ctx, si)
	if err != nil {
		return err
	}
	r, ok := rs[0]
	if !ok {
		return errors.New("share 0 is not there after the upload")
	}
	got, err := r.Read(ctx, 0, uint64(len(data)))
	if err != nil {
		return err
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("read back %q, wrote %q", got, data)
	}
	return nil
}
