// Command demo runs a tubfarm broker and shows what it does: a live status
// table in the terminal, and a status page, its JSON and Prometheus metrics
// over HTTP on 127.0.0.1.
//
// With no arguments it builds a throwaway Tahoe node directory pointing at a
// small grid of storage servers it runs itself on 127.0.0.1 (each with its
// own persistent identity, serving Tahoe's storage API in memory over HTTPS
// storage and Foolscap on one port), announced through two introducers it
// also runs (overlapping sets, signed announcements, no pre-written caches),
// and a servers.yaml that overrides one server. It starts the broker on that
// directory, writes and reads back a small share on every server, shows what
// identified the client to each server, and then keeps running until
// interrupted, stopping and restarting a server or an introducer now and
// then so that backoff and reconnection can be watched.
//
// With -node-dir it runs the broker on an existing Tahoe node directory
// instead (it creates private/node.pem there if it is missing, and writes
// the caches of the introducers it subscribes to, as Tahoe does; nothing
// else).
//
// Usage:
//
//	go run ./cmd/demo [flags]
//
// Flags:
//
//	-node-dir DIR   use an existing node directory instead of the demo grid
//	-http ADDR      status page address (default 127.0.0.1:0, a free port)
//	-once           wait until every server is connected or -timeout passes,
//	                print the JSON status on stdout, and exit 0 only if all
//	                connected (no HTTP server unless -http is given)
//	-timeout D      how long to wait for every server (default 30s)
//	-servers N      demo grid size (default 6)
//	-chaos D        demo grid: stop one server every D on average (default 20s; 0 never)
//	-downtime D     demo grid: how long a stopped server stays down (default 6s)
//	-foolscap       demo grid: force_foolscap = true, so servers are reached over Foolscap
//	-seed N         demo grid: seed of the choice of servers to stop (default: the clock)
//	-log LEVEL      broker log level on stderr: debug, info, warn, error (default error)
//
// Exit status: 0 on success or interruption (SIGINT, SIGTERM), 1 when a
// node directory cannot be used or -once finds a server not connected, 2
// for bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tubfarm/tubfarm/internal/liveview"
	"github.com/tubfarm/tubfarm/internal/termsafe"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, liveview.IsTerminal(os.Stdout))
	stop()
	os.Exit(code)
}

// options are the parsed command-line flags.
type options struct {
	nodeDir  string
	http     string
	httpSet  bool
	once     bool
	timeout  time.Duration
	servers  int
	chaos    time.Duration
	downtime time.Duration
	seed     int64
	seedSet  bool
	foolscap bool
	logLevel slog.Level
}

// usageError is a bad command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: demo [flags]\n\n"+
			"Runs a tubfarm broker on a demo grid of storage servers (or on -node-dir),\n"+
			"with a live status table and a status page on 127.0.0.1.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.nodeDir, "node-dir", "", "use the existing Tahoe node directory `DIR` instead of the demo grid")
	fs.StringVar(&o.http, "http", "127.0.0.1:0", "listen `address` of the status page, JSON and metrics")
	fs.BoolVar(&o.once, "once", false, "wait until all servers are connected or -timeout passes, print the JSON status, exit 0 only if all connected")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait for every server to connect")
	fs.IntVar(&o.servers, "servers", 6, "number of storage servers in the demo grid (1 to 100)")
	fs.DurationVar(&o.chaos, "chaos", 20*time.Second, "demo grid: stop one server every `interval` on average (0: never)")
	fs.DurationVar(&o.downtime, "downtime", 6*time.Second, "demo grid: how long a stopped server stays down")
	fs.BoolVar(&o.foolscap, "foolscap", false, "demo grid: write \"[client] force_foolscap = true\" into the node directory, so the servers are reached over Foolscap instead of HTTPS storage")
	fs.Int64Var(&o.seed, "seed", 0, "demo grid: seed for choosing which server to stop (default: from the clock)")
	level := fs.String("log", "error", "broker log `level` on stderr: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &usageError{err.Error()} // the flag package has printed the usage
	}
	if fs.NArg() > 0 {
		return nil, &usageError{fmt.Sprintf("unexpected argument %q (flags only; see -h)", fs.Arg(0))}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o.httpSet, o.seedSet = set["http"], set["seed"]
	if err := o.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return nil, &usageError{fmt.Sprintf("-log %q: want debug, info, warn or error", *level)}
	}
	switch {
	case o.timeout <= 0:
		return nil, &usageError{fmt.Sprintf("-timeout %v: must be positive", o.timeout)}
	case o.servers < 1 || o.servers > 100:
		return nil, &usageError{fmt.Sprintf("-servers %d: must be between 1 and 100", o.servers)}
	case o.chaos < 0:
		return nil, &usageError{fmt.Sprintf("-chaos %v: must not be negative", o.chaos)}
	case o.downtime <= 0:
		return nil, &usageError{fmt.Sprintf("-downtime %v: must be positive", o.downtime)}
	case o.http == "":
		return nil, &usageError{"-http: empty address"}
	}
	if o.nodeDir != "" {
		for _, name := range []string{"servers", "chaos", "downtime", "seed"} {
			if set[name] {
				return nil, &usageError{fmt.Sprintf("-%s applies to the demo grid and cannot be used with -node-dir", name)}
			}
		}
	}
	if !o.seedSet {
		o.seed = time.Now().UnixNano()
	}
	return o, nil
}

// run is the whole program; it returns the exit status. stdout gets the
// status table (or, with -once, only the JSON); stderr the logs and errors.
// tty enables in-place redrawing and colour on stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, tty bool) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 2
	}
	if o.once {
		tty = false // stdout carries only the JSON
	}
	d := &demo{opts: o, stdout: stdout, stderr: stderr, tty: tty}
	if err := d.run(ctx); err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "demo: ") {
			msg = "demo: " + msg
		}
		fmt.Fprintln(stderr, termsafe.Clip(msg, 2048)) // it may quote a server
		return 1
	}
	return 0
}
