package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/internal/liveview"
	"github.com/tubfarm/tubfarm/internal/termsafe"
	"github.com/tubfarm/tubfarm/status"
)

type statusOpts struct {
	once        bool
	timeout     time.Duration
	http        string
	logLevel    string
	introducers bool
}

var statusCmd = &command{
	name: "status",
	args: "[--once] [--timeout D] [--http ADDR] [--introducers] [--json]",
	summary: "Run the broker on the node directory: a live status table until interrupted, or with --once\n" +
		"the JSON status report once every server is connected or --timeout passes.\n" +
		"Without --introducers it writes nothing in the node directory (node.pem is not created).\n" +
		"Exit status with --once: 0 only if every server connected.",
	example: "  tubfarm status -d ~/.tahoe --http 127.0.0.1:8080\n  tubfarm status --once --timeout 20s | jq .summary",
	nodeDir: true,
	setFlags: func(fs *flag.FlagSet, c *cmdContext) {
		o := &statusOpts{}
		c.opts = o
		fs.BoolVar(&o.once, "once", false, "wait until every server is connected or --timeout passes, print the JSON report on stdout")
		fs.BoolVar(&c.json, "json", false, "same as --once")
		fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait for every server to connect")
		fs.StringVar(&o.http, "http", "", "serve the status page, its JSON and /metrics on `ADDR` (e.g. 127.0.0.1:8080)")
		fs.StringVar(&o.logLevel, "log", "error", "broker log `level` on stderr: debug, info, warn or error")
		fs.BoolVar(&o.introducers, "introducers", false, "also subscribe to the node's introducers, and rewrite their caches with what they announce, as Tahoe does (by default only the cached announcements are used, and nothing is written)")
	},
	run: runStatus,
}

func runStatus(ctx context.Context, c *cmdContext) int {
	o := c.opts.(*statusOpts)
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(c.stderr, "tubfarm status: --log %q: want debug, info, warn or error\n", o.logLevel)
		return ExitUsage
	}
	if o.timeout <= 0 {
		fmt.Fprintf(c.stderr, "tubfarm status: --timeout %v: must be positive\n", o.timeout)
		return ExitUsage
	}
	once := o.once || c.json
	started := time.Now()
	node, err := loadNode(c.dir)
	if err != nil {
		return c.fail("%s", termsafe.Error(err))
	}
	reg := prometheus.NewRegistry()
	b, err := tubfarm.New(node, tubfarm.Options{
		Logger:     slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level})),
		Registerer: reg,
		// Subscribing to introducers rewrites their caches: only on request.
		Introducers: tubfarm.IntroducerOptions{Disabled: !o.introducers},
	})
	if err != nil {
		return c.fail("%s", termsafe.Error(err))
	}
	defer b.Close()
	handler := status.NewHandler(b, status.Options{Node: node.Config.Nickname, Gatherer: reg})

	out, tty := c.stdout, c.env.TTY
	if once {
		out, tty = c.stderr, false // stdout carries only the JSON
	}
	url := ""
	if o.http != "" {
		var stop func()
		url, stop, err = liveview.Serve(o.http, handler)
		if err != nil {
			return c.fail("%v", err)
		}
		defer stop()
	}
	fmt.Fprintf(out, "tubfarm status of %s", c.dir)
	if node.Config.Nickname != "" {
		fmt.Fprintf(out, " (node %s)", termsafe.Clip(node.Config.Nickname, 40))
	}
	fmt.Fprintln(out)
	for _, w := range node.Warnings {
		fmt.Fprintf(out, "  warning: %s\n", termsafe.Error(w))
	}
	if url != "" {
		fmt.Fprintf(out, "  status page: %s  (JSON: %sstatus?t=json, metrics: %smetrics)\n", url, url, url)
	}
	view := &liveview.View{Broker: b, Handler: handler, Out: out, TTY: tty, Title: "tubfarm status",
		Dir: c.dir, URL: url, Started: started}
	total := len(b.Servers())
	if total == 0 {
		fmt.Fprintf(out, "warning: the node directory defines no storage servers (no servers.yaml entries, no cached announcements)\n")
	}
	all := view.WaitConnected(ctx, total, o.timeout)
	if once {
		rep := handler.Report()
		if err := writeJSON(c.stdout, rep); err != nil {
			return c.fail("%v", err)
		}
		if !all || total == 0 {
			return c.fail("%d of %d servers connected after %v", rep.Connected, rep.Total, o.timeout)
		}
		return ExitOK
	}
	if ctx.Err() != nil {
		return ExitOK
	}
	if !all {
		fmt.Fprintf(out, "not every server connected within %v; carrying on\n", o.timeout)
	}
	view.Live(ctx)
	return ExitOK
}
