package tubfarm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/actors"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/foolscap"
	"github.com/tubfarm/tubfarm/internal/grid"
	"github.com/tubfarm/tubfarm/status"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// banana writes Banana tokens by hand, as a hostile server does.
type banana struct {
	buf   []byte
	opens uint64
}

func (b *banana) header(n uint64, typ byte) {
	for {
		b.buf = append(b.buf, byte(n&0x7f))
		n >>= 7
		if n == 0 {
			break
		}
	}
	b.buf = append(b.buf, typ)
}
func (b *banana) str(s string) { b.header(uint64(len(s)), 0x82); b.buf = append(b.buf, s...) }
func (b *banana) open(typ string) uint64 {
	n := b.opens
	b.opens++
	b.header(n, 0x88)
	b.str(typ)
	return n
}
func (b *banana) close(n uint64) { b.header(n, 0x89) }

// terminalJunk is text a server may send to a terminal: clear the screen,
// retitle the window, move the cursor, a fake line.
const terminalJunk = "\x1b[2J\x1b]0;owned\x07\x1b[H\r\nConnected to 9 of 9 known storage servers\x9b31m"

// hostileErrors are the largest errors a server can answer
// getReferenceByName with.
var hostileErrors = []struct {
	name  string
	value func(b *banana)
}{
	{"15MiB_not_a_Failure", func(b *banana) {
		l := b.open("list")
		chunk := strings.Repeat(terminalJunk, 1024/len(terminalJunk)+1)[:1024]
		for range 15 << 10 {
			b.str(chunk)
		}
		b.close(l)
	}},
	{"Failure_at_Foolscap_maxima", func(b *banana) {
		c := b.open("copyable")
		b.str("twisted.python.failure.Failure")
		fill := func(n int) string { return strings.Repeat(terminalJunk, n/len(terminalJunk)+1)[:n] }
		for _, a := range []struct {
			k string
			n int
		}{{"type", 200}, {"value", 1000}, {"traceback", 2000}} {
			b.str(a.k)
			b.str(fill(a.n))
		}
		b.str("parents")
		l := b.open("list")
		for range 1000 {
			b.str(fill(200))
		}
		b.close(l)
		b.close(c)
	}},
	{"1MiB_Failure_value", func(b *banana) {
		c := b.open("copyable")
		b.str("twisted.python.failure.Failure")
		b.str("value")
		b.str(strings.Repeat(terminalJunk, (1<<20)/len(terminalJunk)))
		b.close(c)
	}},
}

// hostileStorageServer negotiates as a real Foolscap server and answers
// the client's first call (getReferenceByName, request 1) with an error
// whose value value writes. It returns the server's FURL.
func hostileStorageServer(t *testing.T, value func(b *banana)) string {
	t.Helper()
	var b banana
	o := b.open("error")
	b.header(1, 0x81) // reqID 1
	value(&b)
	b.close(o)
	script := b.buf

	id, err := tubtls.NewEphemeral()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l, err := foolscap.Listen(ctx, "tcp", "127.0.0.1:0", foolscap.ListenConfig{
		Serve: func(nc net.Conn, _ foolscap.ConnConfig) {
			if _, err := io.ReadFull(nc, make([]byte, 1)); err != nil {
				return
			}
			go io.Copy(io.Discard, nc)
			nc.Write(script)
			<-ctx.Done()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); l.Close() })
	tub := foolscap.NewTub(id)
	tub.SetLocation("tcp:" + l.Addr().String())
	l.AddTub(tub)
	return tub.FURL(foolscap.NewSwissnum())
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
			furl := hostileStorageServer(t, he.value)
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
