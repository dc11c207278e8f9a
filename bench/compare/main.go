// Command compare measures tubfarm against Python Foolscap side by side, in
// one run on one machine, and prints one table with the ratios:
//
//	go run ./bench/compare -servers 100
//
// It starts N real Foolscap servers in one Python process (N Tubs on N
// loopback ports, each with an RSA-2048 certificate as Foolscap makes them;
// -py-procs spreads them over several processes)
// and N tubfarm servers in a Go process (one shared listener), and then
// runs each client in a child process of its own, one after the other:
//
//   - Python Foolscap with a new Tub for every server (what one identity
//     per server costs in Foolscap), and with one Tub for all servers;
//   - tubfarm with an identity per server, and with one shared identity,
//     against the Foolscap servers and against the Go servers.
//
// For each it reports identity creation (p50, p95 of Foolscap's Tub() or
// tubfarm's tubtls.NewEphemeral, made one after another before the
// connections), the time from a cold start until every server is connected
// and has answered get_version, and the client's peak resident memory
// (ru_maxrss of the child). The tubfarm clients, which take well under a
// second each, run -rounds times, interleaved, and report the median. It
// needs Debian's python3-foolscap under
// /usr/bin/python3 and fails if it is missing.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/tubfarm/tubfarm/bench/internal/gridproc"
)

func main() {
	gridproc.MaybeServe()
	maybeClient()
	ctx := context.Background()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	servers     int
	pyProcs     int
	rounds      int
	idSamples   int
	pyIDSamples int
	serverKey   string
	python      string
	timeout     time.Duration
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.servers, "servers", 100, "number of servers of each kind")
	fs.IntVar(&c.pyProcs, "py-procs", 1, "Python processes the Foolscap servers are spread over (Twisted uses one core each)")
	fs.IntVar(&c.rounds, "rounds", 3, "runs of each tubfarm client, interleaved; the median is reported")
	fs.IntVar(&c.idSamples, "id-samples", 200, "tubfarm identities timed one after another, per client")
	fs.IntVar(&c.pyIDSamples, "py-id-samples", 10, "Foolscap Tub() constructions timed one after another, per client")
	fs.StringVar(&c.serverKey, "server-key", "rsa", "key of the Foolscap servers' certificates: rsa (RSA-2048, as Foolscap makes them) or ecdsa (P-256, quicker to start)")
	fs.StringVar(&c.python, "python", "/usr/bin/python3", "Python interpreter with python3-foolscap")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Minute, "bound on the whole run")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.servers < 1:
		return c, fmt.Errorf("-servers %d: want at least 1", c.servers)
	case c.pyProcs < 1:
		return c, fmt.Errorf("-py-procs %d: want at least 1", c.pyProcs)
	case c.rounds < 1:
		return c, fmt.Errorf("-rounds %d: want at least 1", c.rounds)
	case c.idSamples < 1 || c.pyIDSamples < 1:
		return c, fmt.Errorf("-id-samples %d, -py-id-samples %d: want at least 1 each", c.idSamples, c.pyIDSamples)
	case c.serverKey != "rsa" && c.serverKey != "ecdsa":
		return c, fmt.Errorf("-server-key %q: want rsa or ecdsa", c.serverKey)
	}
	return c, nil
}
