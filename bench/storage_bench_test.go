package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/tubfarm/tubfarm/foolscap"
	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/httpstorage"
	"github.com/tubfarm/tubfarm/internal/memstore"
	"github.com/tubfarm/tubfarm/storage"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// The storage benchmarks run the in-memory server (both protocols on one
// port) in this process on 127.0.0.1. Compare the sub-benchmarks of one
// run with each other; figures of different runs are not comparable on a
// shared machine.

func startStore(b *testing.B) *memstore.Server {
	b.Helper()
	s, err := memstore.Start(context.Background(), memstore.Config{Capacity: 1 << 40}, foolscap.ListenConfig{
		ConnConfig: foolscap.ConnConfig{Limits: foolscap.Limits{MaxStringLength: storage.MaxChunk}},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// foolscapSession connects to s over Foolscap with identity id.
func foolscapSession(ctx context.Context, s *memstore.Server, id *tubtls.Identity) (*foolscap.Conn, storage.Server, error) {
	furl, err := hints.ParseFURL(s.FURL)
	if err != nil {
		return nil, nil, err
	}
	h, _ := hints.ParseHint(furl.Hints[0])
	conn, _, err := foolscap.Dial(ctx, foolscap.DialConfig{
		Identity: id, TubID: furl.TubID,
		Targets: []foolscap.Target{{Hint: h.Raw, Addr: h.Addr(), Host: h.Host, Handler: "tcp"}},
	})
	if err != nil {
		return nil, nil, err
	}
	ref, err := conn.GetReference(ctx, furl.Name)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, storage.NewFoolscap(ref), nil
}

// BenchmarkStorageConnectVersion: a new session and one get_version, over
// HTTPS storage and over Foolscap (identity made beforehand: the broker
// makes one per attempt for either protocol).
func BenchmarkStorageConnectVersion(b *testing.B) {
	s := startStore(b)
	ctx := context.Background()
	id, err := tubtls.NewEphemeral()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("https", func(b *testing.B) {
		for b.Loop() {
			c := httpstorage.New(s.NURL, httpstorage.Config{Dial: hints.DirectTCP(nil)})
			if _, err := c.GetVersion(ctx); err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
	b.Run("foolscap", func(b *testing.B) {
		for b.Loop() {
			conn, st, err := foolscapSession(ctx, s, id)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := st.GetVersion(ctx); err != nil {
				b.Fatal(err)
			}
			conn.Close()
		}
	})
}

const shareSize = 64 << 20

// BenchmarkShare64MiB uploads and downloads a 64 MiB immutable share
// through the typed API, in 1 MiB writes and reads (Tahoe's block-sized
// requests), over both protocols, beside the bare TLS throughput of the
// same loopback (tls-upload, tls-download).
func BenchmarkShare64MiB(b *testing.B) {
	s := startStore(b)
	ctx := context.Background()
	id, err := tubtls.NewEphemeral()
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), shareSize/16)
	lease := storage.LeaseSecrets{}
	conn, fs, err := foolscapSession(ctx, s, id)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	hs := httpstorage.New(s.NURL, httpstorage.Config{Dial: hints.DirectTCP(nil)})
	defer hs.Close()
	n := 0
	for _, p := range []storage.Server{hs, fs} {
		b.Run(p.Protocol()+"-upload", func(b *testing.B) {
			b.SetBytes(shareSize)
			for b.Loop() {
				n++
				si := storage.Index{byte(n), byte(n >> 8), 1}
				a, err := p.AllocateBuckets(ctx, si, lease, []storage.ShareNum{0}, shareSize)
				if err != nil {
					b.Fatal(err)
				}
				w := a.Writers[0]
				for off := 0; off < shareSize; off += storage.MaxChunk {
					if err := w.Write(ctx, uint64(off), data[off:off+storage.MaxChunk]); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(ctx); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				s.Store.Drop(si) // keep memory flat
				b.StartTimer()
			}
		})
	}
	// One share to download, written once.
	si := storage.Index{0xff}
	a, err := hs.AllocateBuckets(ctx, si, lease, []storage.ShareNum{0}, shareSize)
	if err != nil {
		b.Fatal(err)
	}
	if err := writeAll(ctx, a.Writers[0], data); err != nil {
		b.Fatal(err)
	}
	for _, p := range []storage.Server{hs, fs} {
		b.Run(p.Protocol()+"-download", func(b *testing.B) {
			b.SetBytes(shareSize)
			rs, err := p.GetBuckets(ctx, si)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				for off := uint64(0); off < shareSize; off += storage.MaxChunk {
					got, err := rs[0].Read(ctx, off, storage.MaxChunk)
					if err != nil || len(got) != storage.MaxChunk {
						b.Fatalf("read at %d: %d bytes, %v", off, len(got), err)
					}
				}
			}
		})
	}
	b.Run("tls-upload", func(b *testing.B) { benchTLS(b, data, true) })
	b.Run("tls-download", func(b *testing.B) { benchTLS(b, data, false) })
}

func writeAll(ctx context.Context, w storage.BucketWriter, data []byte) error {
	for off := 0; off < len(data); off += storage.MaxChunk {
		if err := w.Write(ctx, uint64(off), data[off:off+storage.MaxChunk]); err != nil {
			return err
		}
	}
	return w.Close(ctx)
}

// benchTLS moves 64 MiB over one TLS 1.3 connection on loopback in 1 MiB
// writes, and waits for a one-byte acknowledgement: the ceiling for both
// protocols.
func benchTLS(b *testing.B, data []byte, up bool) {
	id, err := tubtls.NewEphemeral()
	if err != nil {
		b.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{id.Certificate}})
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 1)
		for {
			if up {
				if _, err := io.CopyN(io.Discard, c, shareSize); err != nil {
					return
				}
				c.Write(buf)
				continue
			}
			if _, err := c.Read(buf); err != nil {
				return
			}
			for off := 0; off < shareSize; off += storage.MaxChunk {
				if _, err := c.Write(data[off : off+storage.MaxChunk]); err != nil {
					return
				}
			}
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(shareSize)
	ack := make([]byte, 1)
	for b.Loop() {
		if up {
			for off := 0; off < shareSize; off += storage.MaxChunk {
				if _, err := c.Write(data[off : off+storage.MaxChunk]); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := io.ReadFull(c, ack); err != nil {
				b.Fatal(err)
			}
			continue
		}
		c.Write(ack)
		if _, err := io.CopyN(io.Discard, c, shareSize); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	wg.Wait()
}

// BenchmarkTransports100: one get_version to each of 100 HTTPS storage
// servers, with a transport of its own per server (httpstorage, as the
// broker does) against one http.Transport shared by all (the linkable
// alternative). "cold" makes the clients anew each time, so it includes
// 100 TLS handshakes; "warm" reuses their idle connections.
func BenchmarkTransports100(b *testing.B) {
	const n = 100
	servers := make([]*memstore.Server, n)
	for i := range servers {
		servers[i] = startStore(b)
	}
	ctx := context.Background()
	perServer := func() []*httpstorage.Client {
		cs := make([]*httpstorage.Client, n)
		for i, s := range servers {
			cs[i] = httpstorage.New(s.NURL, httpstorage.Config{Dial: hints.DirectTCP(nil)})
		}
		return cs
	}
	own := func(cs []*httpstorage.Client) {
		for _, c := range cs {
			if _, err := c.GetVersion(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	shared := newSharedClient(servers)
	for _, mode := range []string{"cold", "warm"} {
		b.Run("per-server/"+mode, func(b *testing.B) {
			cs := perServer()
			for b.Loop() {
				if mode == "cold" {
					cs = perServer()
				}
				own(cs)
				if mode == "cold" {
					for _, c := range cs {
						c.Close()
					}
				}
			}
			for _, c := range cs {
				c.Close()
			}
		})
		b.Run("shared/"+mode, func(b *testing.B) {
			for b.Loop() {
				if mode == "cold" {
					shared.tr.CloseIdleConnections()
				}
				for _, s := range servers {
					if err := shared.version(ctx, s); err != nil {
						b.Fatal(err)
					}
				}
			}
			shared.tr.CloseIdleConnections()
		})
	}
}

// sharedClient is the baseline of BenchmarkTransports100: one Transport
// for every server, pinning each server's certificate by its address.
type sharedClient struct {
	tr   *http.Transport
	hc   *http.Client
	pins map[string]hints.NURL
}

func newSharedClient(servers []*memstore.Server) *sharedClient {
	sc := &sharedClient{pins: map[string]hints.NURL{}}
	for _, s := range servers {
		sc.pins[s.NURL.Addr()] = s.NURL
	}
	sc.tr = &http.Transport{
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		MaxIdleConnsPerHost: httpstorage.MaxIdleConns,
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			raw, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			c := tls.Client(raw, httpstorage.TLSConfig(sc.pins[addr]))
			if err := c.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, err
			}
			return c, nil
		},
	}
	sc.hc = &http.Client{Transport: sc.tr}
	return sc
}

func (sc *sharedClient) version(ctx context.Context, s *memstore.Server) error {
	req, err := http.NewRequestWithContext(ctx, "GET", "https://"+s.NURL.Addr()+"/storage/v1/version", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", httpstorage.AuthorizationValue(s.Swiss))
	req.Header.Set("Accept", "application/cbor")
	resp, err := sc.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	_, err = httpstorage.DecodeVersion(b)
	return err
}
