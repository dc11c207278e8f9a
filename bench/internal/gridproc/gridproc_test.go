package gridproc

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/actors"
)

func TestMain(m *testing.M) {
	MaybeServe()
	goleak.VerifyTestMain(m)
}

// TestStartConnectDrop starts three servers in a child process, connects a
// broker to them through the node directory the child wrote, drops every
// connection, and sees all three come back.
func TestStartConnectDrop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	p, err := Start(ctx, 3, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	}()
	if !strings.HasPrefix(p.Addr, "127.0.0.1:") {
		t.Errorf("Addr = %q, want a 127.0.0.1 address", p.Addr)
	}
	yml, err := os.ReadFile(filepath.Join(dir, "private", "servers.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(yml), "anonymous-storage-FURL: pb://"); got != 3 {
		t.Fatalf("servers.yaml lists %d FURLs, want 3:\n%s", got, yml)
	}
	if got := strings.Count(string(yml), "@tcp:"+p.Addr+"/"); got != 3 {
		t.Errorf("%d FURLs point at %s, want 3", got, p.Addr)
	}

	b, err := tubfarm.Open(dir, tubfarm.Options{
		Logger:        slog.New(slog.DiscardHandler),
		WatchInterval: -1,
		Backoff:       actors.Backoff{BaseDelay: 10 * time.Millisecond, Multiplier: 2, Jitter: 0.2, MaxDelay: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.WhenConnected(ctx, 3); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	events, stop := b.Subscribe()
	defer stop()
	if err := p.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	// Every server must be lost and then connected again after the drop.
	back := map[string]bool{}
	lost := map[string]bool{}
	for len(back) < 3 {
		select {
		case ev := <-events:
			switch {
			case ev.From == actors.Connected:
				lost[ev.ServerID] = true
			case ev.To == actors.Connected && lost[ev.ServerID]:
				back[ev.ServerID] = true
			}
		case <-ctx.Done():
			t.Fatalf("after the drop, %d of 3 servers were lost and %d came back", len(lost), len(back))
		}
	}
	for _, st := range b.Statuses() {
		if !st.Connected || !st.LastConnected.After(before) {
			t.Errorf("%s: connected %v, last connected %v, dropped at %v", st.Nickname, st.Connected, st.LastConnected, before)
		}
	}
}

// TestServeErrors covers what Serve refuses.
func TestServeErrors(t *testing.T) {
	ctx := context.Background()
	if err := Serve(ctx, 1, "", strings.NewReader(""), &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "no node directory") {
		t.Errorf("Serve without a directory: %v", err)
	}
	var out strings.Builder
	err := Serve(ctx, 1, t.TempDir(), strings.NewReader("reboot\n"), &out)
	if err == nil || !strings.Contains(err.Error(), `unknown command "reboot"`) {
		t.Errorf("Serve with a bad command: %v", err)
	}
	if !strings.HasPrefix(out.String(), "READY 127.0.0.1:") {
		t.Errorf("Serve printed %q before the bad command, want READY <addr>", out.String())
	}
}
