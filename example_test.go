package tubfarm_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/foolscap"
	"github.com/tubfarm/tubfarm/internal/grid"
	"github.com/tubfarm/tubfarm/status"
)

// Example embeds the broker in a program: open a Tahoe node directory, wait
// until every storage server is connected (each through its own ephemeral
// identity), call one, and mount the status page, its JSON and the metrics
// on the program's HTTP mux. README.md shows this code.
func Example() {
	dir, stop := exampleNodeDir() // a node directory pointing at three storage servers on 127.0.0.1
	defer stop()

	reg := prometheus.NewRegistry()
	b, err := tubfarm.Open(dir, tubfarm.Options{Registerer: reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.WhenConnected(ctx, len(b.Servers())); err != nil {
		log.Fatal(err)
	}
	clients := map[string]bool{}
	for _, s := range b.Servers() {
		v, err := s.Call(ctx, "get_version")
		if err != nil {
			log.Fatalf("%s: %v", s.Nickname(), err)
		}
		app, _ := v.(foolscap.Dict).GetString("application-version")
		fmt.Printf("%s runs %s\n", s.Nickname(), app)
		clients[s.Status().TubID] = true
	}
	fmt.Printf("%d servers saw %d different client TubIDs\n", len(b.Servers()), len(clients))

	page := status.NewHandler(b, status.Options{Node: "example", Gatherer: reg})
	mux := http.NewServeMux()
	mux.Handle("/tubfarm/", http.StripPrefix("/tubfarm", page)) // then http.ListenAndServe("127.0.0.1:8080", mux)
	fmt.Println(page.Report().Summary)
	// Unordered output:
	// storage-1 runs tahoe-lafs/1.20.0
	// storage-2 runs tahoe-lafs/1.20.0
	// storage-3 runs tahoe-lafs/1.20.0
	// 3 servers saw 3 different client TubIDs
	// Connected to 3 of 3 known storage servers
}

// exampleNodeDir starts three storage servers and writes a node directory
// that lists them in servers.yaml. stop shuts the servers down and removes
// the directory.
func exampleNodeDir() (dir string, stop func()) {
	g, err := grid.Start(context.Background(), 3, "storage", grid.Options{})
	if err != nil {
		log.Fatal(err)
	}
	dir, err = os.MkdirTemp("", "tubfarm-example-")
	if err == nil {
		err = grid.WriteNodeDir(dir, grid.NodeDir{Static: g.Servers})
	}
	if err != nil {
		g.Close()
		log.Fatal(err)
	}
	return dir, func() {
		g.Close()
		os.RemoveAll(dir)
	}
}
