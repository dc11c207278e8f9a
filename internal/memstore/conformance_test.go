package memstore_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tubfarm/tubfarm/foolscap"
	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/httpstorage"
	"github.com/tubfarm/tubfarm/internal/memstore"
	"github.com/tubfarm/tubfarm/storage"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// dialFoolscap connects to srv over Foolscap and returns the typed API.
func dialFoolscap(t testing.TB, srv *memstore.Server) storage.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	furl, err := hints.ParseFURL(srv.FURL)
	if err != nil {
		t.Fatal(err)
	}
	h, err := hints.ParseHint(furl.Hints[0])
	if err != nil {
		t.Fatal(err)
	}
	id, err := tubtls.NewEphemeral()
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := foolscap.Dial(ctx, foolscap.DialConfig{
		Identity: id,
		TubID:    furl.TubID,
		Targets:  []foolscap.Target{{Hint: h.Raw, Addr: h.Addr(), Host: h.Host, Handler: "tcp", Dial: hints.DirectTCP(nil)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ref, err := conn.GetReference(ctx, furl.Name)
	if err != nil {
		t.Fatal(err)
	}
	return storage.NewFoolscap(ref)
}

func dialHTTPS(t testing.TB, srv *memstore.Server) storage.Server {
	c := httpstorage.New(srv.NURL, httpstorage.Config{Dial: hints.DirectTCP(nil)})
	t.Cleanup(func() { c.Close() })
	return c
}

func startServer(t testing.TB) *memstore.Server {
	t.Helper()
	srv, err := memstore.Start(context.Background(), memstore.Config{Capacity: 1 << 20}, foolscap.ListenConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

var protocols = []struct {
	name string
	dial func(testing.TB, *memstore.Server) storage.Server
}{
	{"foolscap", dialFoolscap},
	{"https", dialHTTPS},
}

func si(b byte) storage.Index {
	var s storage.Index
	for i := range s {
		s[i] = b + byte(i)
	}
	return s
}

var lease = storage.LeaseSecrets{Renew: storage.Secret{1}, Cancel: storage.Secret{2}}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func u64(n uint64) *uint64 { return &n }

// upload allocates, writes and closes shares of si.
func upload(t *testing.T, ctx context.Context, s storage.Server, idx storage.Index, data []byte, shares ...storage.ShareNum) {
	t.Helper()
	a, err := s.AllocateBuckets(ctx, idx, lease, shares, uint64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Writers) != len(shares) {
		t.Fatalf("allocated %d writers, want %d", len(a.Writers), len(shares))
	}
	for _, w := range a.Writers {
		if err := w.Write(ctx, 0, data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// The same expectations hold over both protocols.
var conformance = []struct {
	name string
	run  func(t *testing.T, ctx context.Context, s storage.Server, st *memstore.Store)
}{
	{"version", func(t *testing.T, ctx context.Context, s storage.Server, st *memstore.Store) {
		v, err := s.GetVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := st.Version()
		if v != want {
			t.Fatalf("version %+v, want %+v", v, want)
		}
		if !v.ToleratesImmutableReadOverrun || !v.FillsHolesWithZeroBytes || !v.DeleteMutableSharesWithZeroLengthWritev || !v.PreventsReadPastEndOfShareData {
			t.Fatalf("flags not all set: %+v", v)
		}
	}},
	{"immutable round trip", func(t *testing.T, ctx context.Context, s storage.Server, st *memstore.Store) {
		data := pattern(1000, 3)
		a, err := s.AllocateBuckets(ctx, si(1), lease, []storage.ShareNum{0, 1, 7}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.AlreadyHave) != 0 || len(a.Writers) != 3 {
			t.Fatalf("allocation %v, %d writers", a.AlreadyHave, len(a.Writers))
		}
		for _, w := range a.Writers {
			if err := w.Write(ctx, 600, data[600:]); err != nil {
				t.Fatal(err)
			}
			if err := w.Write(ctx, 0, data[:600]); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
		}
		rs, err := s.GetBuckets(ctx, si(1))
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Sorted(mapKeys(rs)); !slices.Equal(got, []storage.ShareNum{0, 1, 7}) {
			t.Fatalf("buckets %v", got)
		}
		for _, tc := range []struct{ off, n, want uint64 }{{0, 1000, 1000}, {990, 100, 10}, {1000, 10, 0}, {5000, 10, 0}, {10, 0, 0}} {
			got, err := rs[7].Read(ctx, tc.off, tc.n)
			if err != nil {
				t.Fatalf("read(%d, %d): %v", tc.off, tc.n, err)
			}
			if uint64(len(got)) != tc.want || !bytes.Equal(got, data[min(tc.off, 1000):min(tc.off+tc.want, 1000)]) {
				t.Fatalf("read(%d, %d) = %d bytes, want %d", tc.off, tc.n, len(got), tc.want)
			}
		}
		a, err = s.AllocateBuckets(ctx, si(1), lease, []storage.ShareNum{1, 2}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(a.AlreadyHave, []storage.ShareNum{1}) || len(a.Writers) != 1 || a.Writers[2] == nil {
			t.Fatalf("re-allocation: have %v, writers %d", a.AlreadyHave, len(a.Writers))
		}
		if err := a.Writers[2].Abort(ctx); err != nil {
			t.Fatal(err)
		}
	}},
	{"share still uploading is in neither list", func(t *testing.T, ctx context.Context, s storage.Server, st *memstore.Store) {
		a, err := s.AllocateBuckets(ctx, si(2), lease, []storage.ShareNum{0}, 10)
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.AllocateBuckets(ctx, si(2), lease, []storage.ShareNum{0}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.AlreadyHave) != 0 || len(b.Writers) != 0 {
			t.Fatalf("second allocation: have %v, %d writers", b.AlreadyHave, len(b.Writers))
		}
		a.Writers[0].Abort(ctx)
	}},
	{"bad writes are refused", func(t *testing.T, ctx context.Context, s storage.Server, st *memstore.Store) {
		a, err := s.AllocateBuckets(ctx, si(3), lease, []storage.ShareNum{4}, 10)
		if err != nil {
			t.Fatal(err)
		}
		w := a.Writers[4]
		if err := w.Write(ctx, 5, pattern(10, 1)); !storage.Refused(err) {
			t.Fatalf("write past the allocated size: %v, want refusal", err)
		}
		if err := w.Write(ctx, 0, []byte("abcde")); err != nil {
			t.Fatal(err)
		}
		if err := w.Write(ctx, 2, []byte("XY")); !storage.Refused(err) {
			t.Fatalf("conflicting write: %v, want refusal", err)
		}
		if err := w.Close(ctx); err == nil {
			t.Fatal("close of an incomplete share succeeded")
		}
		if err := w.Abort(ctx); err != nil {
			t.Fatal(err)
		}
		if rs, err := s.GetBuckets(ctx, si(3)); err != nil || len(rs) != 0 {
			t.Fatalf("after abort: %d buckets, %v", len(rs), err)
		}
	}},
	{"no buckets", func(t *testing.T, ctx context.Context, s storage.Server, st *memstore.Store) {
		rs, err := s.GetBuckets(ctx, si(99))
		if err != nil || len(rs) != 0 {
			t.Fatalf("%d buckets, %v", len(rs), err)
		}
	}},
	{"mutable", func(t *testing.T, ctx context.Context, s storage.Server, st *memstore.Store) {
		sec := storage.WriteSecrets{WriteEnabler: storage.Secret{9}, LeaseSecrets: lease}
		create := map[storage.ShareNum]storage.TestWrite{
			0: {Tests: []storage.TestVector{{Offset: 0, Size: 1}}, Writes: []storage.WriteVector{{Offset: 0, Data: []byte("hello")}}},
			3: {Writes: []storage.WriteVector{{Offset: 4, Data: []byte("xy")}}}, // a hole, zero-filled
		}
		ok, reads, err := s.SlotTestvAndReadvAndWritev(ctx, si(4), sec, create, []storage.ReadVector{{Offset: 0, Size: 3}})
		if err != nil || !ok || len(reads) != 0 {
			t.Fatalf("create: %v %v %v", ok, reads, err)
		}
		got, err := s.SlotReadv(ctx, si(4), nil, []storage.ReadVector{{Offset: 0, Size: 3}, {Offset: 3, Size: 100}})
		if err != nil {
			t.Fatal(err)
		}
		want := map[storage.ShareNum][][]byte{0: {[]byte("hel"), []byte("lo")}, 3: {{0, 0, 0}, {0, 'x', 'y'}}}
		if !equalReads(got, want) {
			t.Fatalf("slot_readv all = %q, want %q", got, want)
		}
		got, err = s.SlotReadv(ctx, si(4), []storage.ShareNum{0, 5}, []storage.ReadVector{{Offset: 1, Size: 2}})
		if err != nil || !equalReads(got, map[storage.ShareNum][][]byte{0: {[]byte("el")}}) {
			t.Fatalf("slot_readv with a missing share = %q, %v", got, err)
		}
		// A failing test applies nothing and still returns the reads.
		ok, reads, err = s.SlotTestvAndReadvAndWritev(ctx, si(4), sec, map[storage.ShareNum]storage.TestWrite{
			0: {Tests: []storage.TestVector{{Offset: 0, Size: 5, Specimen: []byte("HELLO")}}, Writes: []storage.WriteVector{{Offset: 0, Data: []byte("bye")}}},
		}, []storage.ReadVector{{Offset: 0, Size: 5}})
		if err != nil || ok || !equalReads(reads, map[storage.ShareNum][][]byte{0: {[]byte("hello")}, 3: {{0, 0, 0, 0, 'x'}}}) {
			t.Fatalf("failing test: %v %q %v", ok, reads, err)
		}
		bad := sec
		bad.WriteEnabler = storage.Secret{8}
		if _, _, err := s.SlotTestvAndReadvAndWritev(ctx, si(4), bad, create, nil); !storage.Refused(err) {
			t.Fatalf("wrong write enabler: %v, want refusal", err)
		}
		ok, _, err = s.SlotTestvAndReadvAndWritev(ctx, si(4), sec, map[storage.ShareNum]storage.TestWrite{3: {NewLength: u64(0)}, 0: {NewLength: u64(2)}}, nil)
		if err != nil || !ok {
			t.Fatalf("truncate: %v %v", ok, err)
		}
		got, err = s.SlotReadv(ctx, si(4), nil, []storage.ReadVector{{Offset: 0, Size: 10}})
		if err != nil || !equalReads(got, map[storage.ShareNum][][]byte{0: {[]byte("he")}}) {
			t.Fatalf("after truncation = %q, %v", got, err)
		}
	}},
	{"leases", func(t *testing.T, ctx context.Context, s storage.Server, st *memstore.Store) {
		if err := s.AddLease(ctx, si(5), lease); err != nil {
			t.Fatalf("lease on nothing: %v", err)
		}
		upload(t, ctx, s, si(5), []byte("data"), 0)
		before := st.Leases(si(5))
		if err := s.AddLease(ctx, si(5), lease); err != nil {
			t.Fatal(err)
		}
		if st.Leases(si(5)) != before+1 {
			t.Fatalf("leases %d, want %d", st.Leases(si(5)), before+1)
		}
	}},
	{"corruption advisories", func(t *testing.T, ctx context.Context, s storage.Server, st *memstore.Store) {
		upload(t, ctx, s, si(6), []byte("data"), 2)
		if err := s.AdviseCorruptShare(ctx, storage.Immutable, si(6), 2, "bad hash"); err != nil {
			t.Fatal(err)
		}
		if err := s.AdviseCorruptShare(ctx, storage.Immutable, si(6), 3, "no such share"); err != nil {
			t.Fatalf("advice on a missing share: %v", err)
		}
		rs, err := s.GetBuckets(ctx, si(6))
		if err != nil {
			t.Fatal(err)
		}
		if err := rs[2].AdviseCorrupt(ctx, "bad block"); err != nil {
			t.Fatal(err)
		}
		var reasons []string
		for _, a := range st.Advisories() {
			if a.Index == si(6) {
				reasons = append(reasons, a.Reason)
			}
		}
		if !slices.Equal(reasons, []string{"bad hash", "bad block"}) {
			t.Fatalf("advisories %q", reasons)
		}
		if err := s.AdviseCorruptShare(ctx, storage.Immutable, si(6), 2, ""); !errors.Is(err, storage.ErrBadArgument) {
			t.Fatalf("empty reason: %v", err)
		}
	}},
	{"arguments over the caps", func(t *testing.T, ctx context.Context, s storage.Server, st *memstore.Store) {
		upload(t, ctx, s, si(7), []byte("data"), 0)
		rs, _ := s.GetBuckets(ctx, si(7))
		if _, err := rs[0].Read(ctx, 0, storage.MaxReadLength+1); !errors.Is(err, storage.ErrBadArgument) {
			t.Fatalf("oversized read: %v", err)
		}
		if _, err := s.SlotReadv(ctx, si(7), nil, make([]storage.ReadVector, storage.MaxVectors+1)); !errors.Is(err, storage.ErrBadArgument) {
			t.Fatalf("too many read vectors: %v", err)
		}
		if _, err := s.AllocateBuckets(ctx, si(7), lease, []storage.ShareNum{1, 1}, 4); !errors.Is(err, storage.ErrBadArgument) {
			t.Fatalf("repeated share: %v", err)
		}
	}},
	{"cancelled context", func(t *testing.T, ctx context.Context, s storage.Server, st *memstore.Store) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.GetVersion(cctx)
		var ce *storage.ConnError
		if !errors.As(err, &ce) || !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled: %v, want a ConnError wrapping context.Canceled", err)
		}
	}},
}

func TestConformance(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			for _, tc := range conformance {
				t.Run(tc.name, func(t *testing.T) {
					srv := startServer(t)
					s := p.dial(t, srv)
					if s.Protocol() != p.name {
						t.Fatalf("protocol %q", s.Protocol())
					}
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					tc.run(t, ctx, s, srv.Store)
				})
			}
		})
	}
}

// One server holds the same state whichever protocol wrote it.
func TestCrossProtocol(t *testing.T) {
	srv := startServer(t)
	ctx := context.Background()
	fs, hs := dialFoolscap(t, srv), dialHTTPS(t, srv)
	data := pattern(3000, 5)
	a, err := hs.AllocateBuckets(ctx, si(8), lease, []storage.ShareNum{1}, 3000)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Writers[1].Write(ctx, 0, data); err != nil {
		t.Fatal(err)
	}
	if err := a.Writers[1].Close(ctx); err != nil {
		t.Fatal(err)
	}
	rs, err := fs.GetBuckets(ctx, si(8))
	if err != nil {
		t.Fatal(err)
	}
	got, err := rs[1].Read(ctx, 0, 3000)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read over foolscap what https wrote: %d bytes, %v", len(got), err)
	}
}

func mapKeys[V any](m map[storage.ShareNum]V) func(func(storage.ShareNum) bool) {
	return func(yield func(storage.ShareNum) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func equalReads(a, b map[storage.ShareNum][][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for n, ra := range a {
		rb, ok := b[n]
		if !ok || len(ra) != len(rb) {
			return false
		}
		for i := range ra {
			if !bytes.Equal(ra[i], rb[i]) {
				return false
			}
		}
	}
	return true
}
