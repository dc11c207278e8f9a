package httpstorage_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/httpstorage"
	"github.com/tubfarm/tubfarm/storage"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const swiss = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

// hostile starts an HTTPS server with its own certificate that answers
// every request with h, and returns a client pinned to that certificate
// (or, if wrongPin, to another one).
func hostile(t *testing.T, cfg httpstorage.Config, wrongPin bool, h http.HandlerFunc) *httpstorage.Client {
	t.Helper()
	id, err := tubtls.NewEphemeral()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{id.Certificate}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pin := id.Certificate.Leaf
	if wrongPin {
		other, err := tubtls.NewEphemeral()
		if err != nil {
			t.Fatal(err)
		}
		pin = other.Certificate.Leaf
	}
	n, err := hints.FormatNURL(pin, "tcp:"+srv.Listener.Addr().String(), swiss)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dial == nil {
		cfg.Dial = hints.DirectTCP(nil)
	}
	c := httpstorage.New(n, cfg)
	t.Cleanup(func() { c.Close() })
	return c
}

func cborAnswer(status int, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/cbor")
		w.WriteHeader(status)
		w.Write(body)
	}
}

func TestHostileServers(t *testing.T) {
	nested := append(bytes.Repeat([]byte{0x81}, 100), 0x00) // [[[...[0]...]]]
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stall := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/cbor")
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		w.Write([]byte{0xa1})
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	stallHeaders := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	short := httpstorage.Config{HeaderTimeout: 300 * time.Millisecond, BodyTimeout: 300 * time.Millisecond, MaxCBOR: 1024}
	for _, tc := range []struct {
		name     string
		wrongPin bool
		h        http.HandlerFunc
		check    func(error) bool
	}{
		{"wrong certificate", true, cborAnswer(200, nil), func(err error) bool {
			var ce *storage.ConnError
			var mm *tubtls.MismatchError
			return errors.As(err, &ce) && errors.As(err, &mm)
		}},
		{"CBOR over the cap", false, cborAnswer(200, append([]byte{0x5a, 0, 0, 0x10, 0}, make([]byte, 4096)...)), func(err error) bool {
			return isProto(err) && errors.Is(err, storage.ErrTooLarge)
		}},
		{"deeply nested CBOR", false, cborAnswer(200, nested), isProto},
		{"not CBOR", false, cborAnswer(200, []byte("\xff\xff")), isProto},
		{"wrong content type", false, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html>"))
		}, isProto},
		{"2xx without a body", false, cborAnswer(200, nil), isProto},
		{"slow body", false, stall, func(err error) bool {
			var ce *storage.ConnError
			var ne net.Error
			return errors.As(err, &ce) && errors.As(err, &ne) && ne.Timeout()
		}},
		{"no headers", false, stallHeaders, func(err error) bool {
			var ce *storage.ConnError
			return errors.As(err, &ce) && strings.Contains(err.Error(), "timeout")
		}},
		{"huge error body", false, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			w.Write(bytes.Repeat([]byte("x"), 1<<20))
		}, func(err error) bool {
			var se *storage.ServerError
			return errors.As(err, &se) && se.Status == 500 && len(se.Msg) <= httpstorage.MaxErrorBody
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := hostile(t, short, tc.wrongPin, tc.h)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := c.GetVersion(ctx)
			if !tc.check(err) {
				t.Fatalf("got %T %v", err, err)
			}
		})
	}
}

func isProto(err error) bool {
	var pe *storage.ProtocolError
	return errors.As(err, &pe)
}

// Range reads: an answer longer than asked, or for another range, or of
// the wrong type, is refused.
func TestHostileReads(t *testing.T) {
	var si storage.Index
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
	}{
		{"more than asked", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Range", "bytes 0-9/*")
			w.WriteHeader(206)
			w.Write(make([]byte, 1000))
		}},
		{"another range", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Range", "bytes 5-9/*")
			w.WriteHeader(206)
			w.Write(make([]byte, 5))
		}},
		{"wrong type", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/cbor")
			w.Header().Set("Content-Range", "bytes 0-9/*")
			w.WriteHeader(206)
			w.Write(make([]byte, 10))
		}},
		{"200 to a range", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(make([]byte, 10))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := hostile(t, httpstorage.Config{}, false, func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/shares") {
					cborAnswer(200, []byte{0xd9, 0x01, 0x02, 0x81, 0x00})(w, r) // 258([0])
					return
				}
				tc.h(w, r)
			})
			ctx := context.Background()
			rs, err := c.GetBuckets(ctx, si)
			if err != nil || len(rs) != 1 {
				t.Fatalf("%d buckets, %v", len(rs), err)
			}
			if _, err := rs[0].Read(ctx, 0, 10); !isProto(err) {
				t.Fatalf("got %T %v", err, err)
			}
		})
	}
}

// A set must carry tag 258.
func TestSetWithoutTag(t *testing.T) {
	c := hostile(t, httpstorage.Config{}, false, cborAnswer(200, []byte{0x81, 0x00}))
	if _, err := c.GetBuckets(context.Background(), storage.Index{}); !isProto(err) {
		t.Fatalf("got %T %v", err, err)
	}
}
