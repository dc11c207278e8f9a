package e2e

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/actors"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/internal/grid"
	"github.com/tubfarm/tubfarm/internal/hostile"
	"github.com/tubfarm/tubfarm/status"
)

// hostileErrors are the largest errors a server can answer
// getReferenceByName with.
var hostileErrors = []struct {
	name  string
	value func(b *hostile.Banana)
}{
	{"15MiB_not_a_Failure", func(b *hostile.Banana) {
		l := b.Open("list")
		chunk := hostile.Fill(1024)
		for range 15 << 10 {
			b.Str(chunk)
		}
		b.Close(l)
	}},
	{"Failure_at_Foolscap_maxima", hostile.MaxFailure},
	{"1MiB_Failure_value", func(b *hostile.Banana) {
		c := b.Open("copyable")
		b.Str("twisted.python.failure.Failure")
		b.Str("value")
		b.Str(hostile.Fill(1 << 20))
		b.Close(c)
	}},
}

// syncBuffer is a bytes.Buffer for a slog handler used from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestStatusAfterMaximumError: a server answers with the largest error it
// can send, full of terminal escape sequences. The status kept for it, the
// status JSON and HTML, and every log line stay under their caps.
func TestStatusAfterMaximumError(t *testing.T) {
	for _, he := range hostileErrors {
		t.Run(he.name, func(t *testing.T) {
			var script hostile.Banana
			script.Reply("error", 1, he.value)
			furl := hostile.Server(t, script.Buf)
			dir := t.TempDir()
			if err := grid.WriteNodeDir(dir, grid.NodeDir{}); err != nil {
				t.Fatal(err)
			}
			yaml := "storage:\n  hostile-server:\n    ann:\n      nickname: hostile\n      anonymous-storage-FURL: " + furl + "\n"
			if err := os.WriteFile(config.ServersPath(dir), []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs syncBuffer
			b := openBroker(t, dir, tubfarm.Options{
				Logger:        slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				WatchInterval: -1, Backoff: faultBackoff,
			})
			srv := mustServer(t, b, "hostile-server")
			waitFor(t, b, "a failure", func() bool { return srv.Status().LastFailure != "" })
			st := srv.Status()
			t.Logf("last_failure: %d bytes, %.120q", len(st.LastFailure), st.LastFailure)
			if len(st.LastFailure) > actors.MaxFailureText+64 {
				t.Errorf("last_failure of %d bytes, cap %d", len(st.LastFailure), actors.MaxFailureText)
			}

			h := status.NewHandler(b, status.Options{Node: "n"})
			for _, q := range []string{"/?t=json", "/"} {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", q, nil))
				body := rec.Body.String()
				t.Logf("%s: %d bytes", q, len(body))
				if len(body) > 64<<10 {
					t.Errorf("%s is %d bytes for one server", q, len(body))
				}
				if strings.ContainsAny(body, "\x1b\x07\r") || strings.Contains(body, "\u009b") {
					t.Errorf("%s carries a raw control character from the server", q)
				}
			}
			var rep status.Report
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/?t=json", nil))
			if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil || len(rep.Servers) != 1 || rep.Servers[0].LastFailure == "" {
				t.Fatalf("status JSON: %v, %+v", err, rep)
			}

			b.Close()
			for i, line := range strings.Split(logs.String(), "\n") {
				if len(line) > 2*actors.MaxFailureText+1024 {
					t.Errorf("log line %d is %d bytes: %.200s", i, len(line), line)
				}
			}
		})
	}
}
