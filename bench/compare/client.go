package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/actors"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// envClient, when set to a JSON clientSpec, makes this executable run one
// tubfarm client measurement and print a clientReport.
const envClient = "TUBFARM_COMPARE_CLIENT"

// clientSpec tells the child what to measure.
type clientSpec struct {
	Dir       string // node directory listing the servers
	Servers   int    // how many to wait for
	Mode      string // "per_server" or "shared"
	IDSamples int    // identities to time first
}

// clientReport is the child's answer, one JSON line.
type clientReport struct {
	IDsNS     []int64
	ConnectNS int64
	Error     string `json:",omitempty"`
}

// maybeClient runs the client measurement and exits if this process is a
// client child; otherwise it returns at once.
func maybeClient() {
	s, ok := os.LookupEnv(envClient)
	if !ok {
		return
	}
	var spec clientSpec
	rep := clientReport{}
	if err := json.Unmarshal([]byte(s), &spec); err != nil {
		rep.Error = fmt.Sprintf("%s: %v", envClient, err)
	} else if err := measureClient(spec, &rep); err != nil {
		rep.Error = err.Error()
	}
	json.NewEncoder(os.Stdout).Encode(rep)
	os.Exit(0)
}

// measureClient times spec.IDSamples identities one after another, then
// opens a broker on spec.Dir from a cold start and waits until every server
// is connected (each has answered get_version).
func measureClient(spec clientSpec, rep *clientReport) error {
	for range spec.IDSamples {
		t := time.Now()
		if _, err := tubtls.NewEphemeral(); err != nil {
			return err
		}
		rep.IDsNS = append(rep.IDsNS, int64(time.Since(t)))
	}
	opts := tubfarm.Options{
		Logger:        slog.New(slog.DiscardHandler),
		Identity:      actors.PerServer,
		WatchInterval: -1,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	t0 := time.Now()
	if spec.Mode == "shared" {
		id, err := tubtls.NewEphemeral()
		if err != nil {
			return err
		}
		opts.TestHooks = &tubfarm.TestHooks{ActorOptions: []actors.Option{actors.WithIdentitySource(func() (*tubtls.Identity, error) { return id, nil })}}
	}
	b, err := tubfarm.Open(spec.Dir, opts)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.WhenConnected(ctx, spec.Servers); err != nil {
		return fmt.Errorf("waiting for %d servers: %w", spec.Servers, err)
	}
	rep.ConnectNS = int64(time.Since(t0))
	return nil
}
