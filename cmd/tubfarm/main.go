// Command tubfarm is an operator's tool for a Tahoe-LAFS node directory:
// see what the introducers announced, pin a server into
// private/servers.yaml with its own hints and connection rules, check every
// file, and watch the connections.
//
// Usage:
//
//	tubfarm servers [-d NODEDIR] [--json]
//	tubfarm pin     [-d NODEDIR] SERVER [--hint HINT]... [--connections TYPE=HANDLER]... [--nickname NAME]
//	tubfarm unpin   [-d NODEDIR] SERVER
//	tubfarm check   [-d NODEDIR] [--json]
//	tubfarm status  [-d NODEDIR] [--once] [--timeout D] [--http ADDR] [--json]
//	tubfarm version
//
// -d defaults to ~/.tahoe. Exit status: 0 success, 1 failure (check: errors
// found; status --once: not every server connected), 2 bad usage. The
// manual is docs/cli.md; the code is in internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tubfarm/tubfarm/internal/cli"
	"github.com/tubfarm/tubfarm/internal/liveview"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, TTY: liveview.IsTerminal(os.Stdout)})
	stop()
	os.Exit(code)
}
