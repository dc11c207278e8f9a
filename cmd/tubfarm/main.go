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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, TTY: isTerminal(os.Stdout)})
	stop()
	os.Exit(code)
}

// isTerminal reports whether f is a terminal that takes ANSI escape
// sequences (not TERM=dumb, and NO_COLOR unset).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	return os.Getenv("TERM") != "dumb" && os.Getenv("NO_COLOR") == ""
}
