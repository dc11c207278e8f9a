package status_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/internal/grid"
	"github.com/tubfarm/tubfarm/status"
)

// TestWithBroker serves a real broker connected to a grid of storage
// servers, over HTTP: the JSON reports every server connected through its
// own client TubID (the one the server saw), and the metrics are the
// broker's.
func TestWithBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	g, err := grid.Start(ctx, 3, "storage", grid.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{Static: g.Servers}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	b, err := tubfarm.Open(dir, tubfarm.Options{Logger: slog.New(slog.DiscardHandler), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.WhenConnected(ctx, 3); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(status.NewHandler(b, status.Options{Node: "n", Gatherer: reg}))
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()

	resp, err := srv.Client().Get(srv.URL + "/status?t=json")
	if err != nil {
		t.Fatal(err)
	}
	var rep status.Report
	err = json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Connected != 3 || rep.Total != 3 || rep.States["connected"] != 3 {
		t.Fatalf("report: %d of %d connected, states %v", rep.Connected, rep.Total, rep.States)
	}
	seen := map[string]bool{}
	for _, s := range rep.Servers {
		if !s.Connected || s.ConnectedVia == nil || s.ConnectedVia.Handler != "tcp" || s.Version != "tahoe-lafs/1.20.0" ||
			s.AvailableSpace == nil || *s.AvailableSpace != 1<<30 || s.Protocol != "foolscap" || s.TLSVersion != "TLS 1.3" || !s.RevealsIP {
			t.Errorf("%s: %+v", s.Nickname, s)
		}
		if seen[s.ClientTubID] {
			t.Errorf("%s: client TubID %s shown for two servers", s.Nickname, s.ClientTubID)
		}
		seen[s.ClientTubID] = true
	}
	for _, gs := range g.Servers {
		var shown string
		for _, s := range rep.Servers {
			if s.ID == gs.ID {
				shown = s.ClientTubID
			}
		}
		if clients, _ := gs.WaitClients(ctx, 1); len(clients) != 1 || clients[0] != shown {
			t.Errorf("%s saw clients %v, the status shows %q", gs.Nickname, clients, shown)
		}
	}

	resp, err = srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics: %v, status %d", err, resp.StatusCode)
	}
	if !strings.Contains(string(metrics), `tubfarm_servers{state="connected"} 3`) {
		t.Errorf("metrics lack tubfarm_servers{state=\"connected\"} 3:\n%s", metrics)
	}
}
