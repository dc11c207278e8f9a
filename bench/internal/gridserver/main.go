// Command gridserver runs N Go Foolscap storage servers behind one shared
// listener on 127.0.0.1 and writes a Tahoe node directory listing them, for
// trying a tubfarm client against a large grid by hand:
//
//	go run ./bench/internal/gridserver -n 10000 -dir /tmp/grid
//
// It prints "READY <addr>" when the directory is written. Typing "drop"
// restarts every server at once (all connections close, the port is
// listened on again); end of input stops it. The benchmarks in bench/ run
// the same server (package bench/internal/gridproc) as a child process.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/tubfarm/tubfarm/bench/internal/gridproc"
)

func main() {
	n := flag.Int("n", 100, "number of servers")
	dir := flag.String("dir", "", "node directory to write (required)")
	flag.Parse()
	if *dir == "" || *n < 1 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := gridproc.Serve(context.Background(), *n, *dir, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
