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
	"time"

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
// HTTPS storage and over Foolscap, interleaved in every iteration (the
// identity is made beforehand: the broker makes one per attempt for either
// protocol). It reports each one's time and https/foolscap.
func BenchmarkStorageConnectVersion(b *testing.B) {
	s := startStore(b)
	ctx := context.Background()
	id, err := tubtls.NewEphemeral()
	if err != nil {
		b.Fatal(err)
	}
	var dh, df time.Duration
	for b.Loop() {
		start := time.Now()
		c := httpstorage.New(s.NURL, httpstorage.Config{Dial: hints.DirectTCP(nil)})
		if _, err := c.GetVersion(ctx); err != nil {
			b.Fatal(err)
		}
		c.Close()
		dh += time.Since(start)

		start = time.Now()
		conn, st, err := foolscapSession(ctx, s, id)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.GetVersion(ctx); err != nil {
			b.Fatal(err)
		}
		conn.Close()
		df += time.Since(start)
	}
	b.ReportMetric(float64(dh.Microseconds())/float64(b.N), "https-µs/op")
	b.ReportMetric(float64(df.Microseconds())/float64(b.N), "foolscap-µs/op")
	b.ReportMetric(dh.Seconds()/df.Seconds(), "https/foolscap")
}

const shareSize = 64 << 20

// BenchmarkShare64MiB uploads and downloads a 64 MiB immutable share
// through the typed API, in 1 MiB writes and reads (Tahoe's block-sized
// requests), over HTTPS storage and over Foolscap, and moves 64 MiB over a
// bare TLS connection of the same loopback in the same 1 MiB writes. The
// three are interleaved in every iteration, so that they share the
// machine's state (heap, load); each reports its own MB/s, and the ratios
// to bare TLS are reported as https/tls and foolscap/tls.
func BenchmarkShare64MiB(b *testing.B) {
	s := startStore(b)
	ctx := context.Background()
	id, err := tubtls.NewEphemeral()
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), shareSize/16)
	conn, fs, err := foolscapSession(ctx, s, id)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	hs := httpstorage.New(s.NURL, httpstorage.Config{Dial: hints.DirectTCP(nil)})
	defer hs.Close()
	raw := startTLSPipe(b, data)
	defer raw.close()
	protos := []storage.Server{hs, fs}

	n := 0
	upload := func(p storage.Server) error {
		n++
		si := storage.Index{byte(n), byte(n >> 8), 1}
		a, err := p.AllocateBuckets(ctx, si, storage.LeaseSecrets{}, []storage.ShareNum{0}, shareSize)
		if err != nil {
			return err
		}
		if err := writeAll(ctx, a.Writers[0], data); err != nil {
			return err
		}
		s.Store.Drop(si) // keep memory flat
		return nil
	}
	b.Run("upload", func(b *testing.B) {
		var d [3]time.Duration
		for b.Loop() {
			start := time.Now()
			if err := raw.up(); err != nil {
				b.Fatal(err)
			}
			d[0] += time.Since(start)
			for i, p := range protos {
				start := time.Now()
				if err := upload(p); err != nil {
					b.Fatal(err)
				}
				d[i+1] += time.Since(start)
			}
		}
		reportShare(b, d)
	})

	si := storage.Index{0xff} // one share to download, written once
	a, err := hs.AllocateBuckets(ctx, si, storage.LeaseSecrets{}, []storage.ShareNum{0}, shareSize)
	if err != nil {
		b.Fatal(err)
	}
	if err := writeAll(ctx, a.Writers[0], data); err != nil {
		b.Fatal(err)
	}
	var readers []storage.BucketReader
	for _, p := range protos {
		rs, err := p.GetBuckets(ctx, si)
		if err != nil {
			b.Fatal(err)
		}
		readers = append(readers, rs[0])
	}
	b.Run("download", func(b *testing.B) {
		var d [3]time.Duration
		for b.Loop() {
			start := time.Now()
			if err := raw.down(); err != nil {
				b.Fatal(err)
			}
			d[0] += time.Since(start)
			for i, r := range readers {
				start := time.Now()
				for off := uint64(0); off < shareSize; off += storage.MaxChunk {
					got, err := r.Read(ctx, off, storage.MaxChunk)
					if err != nil || len(got) != storage.MaxChunk {
						b.Fatalf("read at %d: %d bytes, %v", off, len(got), err)
					}
				}
				d[i+1] += time.Since(start)
			}
		}
		reportShare(b, d)
	})
}

// reportShare reports MB/s of bare TLS, HTTPS and Foolscap, and the two
// ratios to bare TLS.
func reportShare(b *testing.B, d [3]time.Duration) {
	mbs := func(t time.Duration) float64 { return float64(b.N) * shareSize / 1e6 / t.Seconds() }
	b.ReportMetric(mbs(d[0]), "tls-MB/s")
	b.ReportMetric(mbs(d[1]), "https-MB/s")
	b.ReportMetric(mbs(d[2]), "foolscap-MB/s")
	b.ReportMetric(mbs(d[1])/mbs(d[0]), "https/tls")
	b.ReportMetric(mbs(d[2])/mbs(d[0]), "foolscap/tls")
}

func writeAll(ctx context.Context, w storage.BucketWriter, data []byte) error {
	for off := 0; off < len(data); off += storage.MaxChunk {
		if err := w.Write(ctx, uint64(off), data[off:off+storage.MaxChunk]); err != nil {
			return err
		}
	}
	return w.Close(ctx)
}

// tlsPipe is one TLS 1.3 connection on loopback to a server that, on "u",
// reads 64 MiB and acknowledges with one byte, and on "d" sends 64 MiB:
// the ceiling for both protocols.
type tlsPipe struct {
	c    *tls.Conn
	ln   net.Listener
	wg   sync.WaitGroup
	data []byte
}

func startTLSPipe(b *testing.B, data []byte) *tlsPipe {
	id, err := tubtls.NewEphemeral()
	if err != nil {
		b.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{id.Certificate}})
	if err != nil {
		b.Fatal(err)
	}
	p := &tlsPipe{ln: ln, data: data}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		cmd := make([]byte, 1)
		for {
			if _, err := io.ReadFull(c, cmd); err != nil {
				return
			}
			if cmd[0] == 'u' {
				if _, err := io.CopyN(io.Discard, c, shareSize); err != nil {
					return
				}
				c.Write(cmd)
				continue
			}
			for off := 0; off < shareSize; off += storage.MaxChunk {
				if _, err := c.Write(data[off : off+storage.MaxChunk]); err != nil {
					return
				}
			}
		}
	}()
	if p.c, err = tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true}); err != nil {
		b.Fatal(err)
	}
	return p
}

func (p *tlsPipe) up() error {
	if _, err := p.c.Write([]byte("u")); err != nil {
		return err
	}
	for off := 0; off < shareSize; off += storage.MaxChunk {
		if _, err := p.c.Write(p.data[off : off+storage.MaxChunk]); err != nil {
			return err
		}
	}
	_, err := io.ReadFull(p.c, make([]byte, 1))
	return err
}

func (p *tlsPipe) down() error {
	if _, err := p.c.Write([]byte("d")); err != nil {
		return err
	}
	_, err := io.CopyN(io.Discard, p.c, shareSize)
	return err
}

func (p *tlsPipe) close() {
	p.c.Close()
	p.ln.Close()
	p.wg.Wait()
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
		b.Run(mode, func(b *testing.B) {
			cs := perServer()
			var dp, ds time.Duration
			runOwn := func() {
				start := time.Now()
				if mode == "cold" {
					cs = perServer()
				}
				own(cs)
				if mode == "cold" {
					for _, c := range cs {
						c.Close()
					}
				}
				dp += time.Since(start)
			}
			runShared := func() {
				start := time.Now()
				if mode == "cold" {
					shared.tr.CloseIdleConnections()
				}
				for _, s := range servers {
					if err := shared.version(ctx, s); err != nil {
						b.Fatal(err)
					}
				}
				ds += time.Since(start)
			}
			// The two alternate which runs first, so that neither always
			// pays for the garbage the other left.
			for i := 0; b.Loop(); i++ {
				if i%2 == 0 {
					runOwn()
					runShared()
				} else {
					runShared()
					runOwn()
				}
			}
			for _, c := range cs {
				c.Close()
			}
			shared.tr.CloseIdleConnections()
			b.ReportMetric(float64(dp.Milliseconds())/float64(b.N), "per-server-ms/op")
			b.ReportMetric(float64(ds.Milliseconds())/float64(b.N), "shared-ms/op")
			b.ReportMetric(dp.Seconds()/ds.Seconds(), "per-server/shared")
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
