package storage_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tubfarm/tubfarm/foolscap"
	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/internal/pyfoolscap"
	"github.com/tubfarm/tubfarm/storage"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pyStorage is a storage server shaped like Tahoe's, on the real Python
// Foolscap: the method names, argument shapes and answer types of
// RIStorageServer, RIBucketWriter and RIBucketReader, backed by dicts.
const pyStorage = `
from twisted.internet import reactor
from foolscap.api import Tub, Referenceable

complete = {}   # (si, shnum) -> bytes
slots = {}      # si -> {shnum: bytearray}
advice = []

class BucketWriter(Referenceable):
    def __init__(self, key, size):
        self.key, self.data = key, bytearray(size)
    def remote_write(self, offset, data):
        if offset + len(data) > len(self.data):
            raise ValueError("write past the allocated size")
        self.data[offset:offset+len(data)] = data
    def remote_close(self):
        complete[self.key] = bytes(self.data)
    def remote_abort(self):
        pass

class BucketReader(Referenceable):
    def __init__(self, key):
        self.key = key
    def remote_read(self, offset, length):
        return complete[self.key][offset:offset+length]
    def remote_advise_corrupt_share(self, reason):
        advice.append(reason)

class Storage(Referenceable):
    def remote_get_version(self):
        return {b"application-version": b"tahoe-lafs/1.20.0",
                b"http://allmydata.org/tahoe/protocols/storage/v1": {
                    b"maximum-immutable-share-size": 2**64,
                    b"maximum-mutable-share-size": 69105000000000000,
                    b"available-space": 123456789,
                    b"tolerates-immutable-read-overrun": True,
                    b"delete-mutable-shares-with-zero-length-writev": True,
                    b"fills-holes-with-zero-bytes": True,
                    b"prevents-read-past-end-of-share-data": True}}
    def remote_allocate_buckets(self, si, renew, cancel, sharenums, size, canary):
        assert len(si) == 16 and len(renew) == 32 and len(cancel) == 32
        assert isinstance(sharenums, (set, frozenset)), type(sharenums)
        have = set(n for n in sharenums if (si, n) in complete)
        return have, {n: BucketWriter((si, n), size) for n in sharenums if n not in have}
    def remote_get_buckets(self, si):
        return {n: BucketReader((s, n)) for (s, n) in complete if s == si}
    def remote_add_lease(self, si, renew, cancel):
        return None
    def remote_advise_corrupt_share(self, share_type, si, shnum, reason):
        advice.append(reason)
    def remote_slot_readv(self, si, shares, readv):
        slot = slots.get(si, {})
        return {n: [bytes(slot[n][o:o+l]) for (o, l) in readv]
                for n in (shares or slot) if n in slot}
    def remote_slot_testv_and_readv_and_writev(self, si, secrets, tw, readv):
        slot = slots.setdefault(si, {})
        reads = {n: [bytes(d[o:o+l]) for (o, l) in readv] for n, d in slot.items()}
        for n, (testv, writev, newlen) in tw.items():
            for (o, l, op, specimen) in testv:
                assert op == b"eq", op
                if bytes(slot.get(n, b"")[o:o+l]) != specimen:
                    return False, reads
        for n, (testv, writev, newlen) in tw.items():
            d = slot.setdefault(n, bytearray())
            for (o, data) in writev:
                if len(d) < o + len(data):
                    d.extend(b"\0" * (o + len(data) - len(d)))
                d[o:o+len(data)] = data
        return True, reads
    def remote_advice(self):
        return advice

tub = Tub()
tub.startService()
l = tub.listenOn("tcp:0:interface=127.0.0.1")
tub.setLocation("tcp:127.0.0.1:%d" % l.getPortnum())
print(tub.registerReference(Storage()), flush=True)
reactor.run()
`

func TestFoolscapAgainstPython(t *testing.T) {
	py := pyfoolscap.Start(t, pyStorage)
	furl, err := hints.ParseFURL(py.Line(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, _ := hints.ParseHint(furl.Hints[0])
	id, err := tubtls.NewEphemeral()
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := foolscap.Dial(ctx, foolscap.DialConfig{
		Identity: id, TubID: furl.TubID,
		Targets: []foolscap.Target{{Hint: h.Raw, Addr: h.Addr(), Host: h.Host, Handler: "tcp"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ref, err := conn.GetReference(ctx, furl.Name)
	if err != nil {
		t.Fatal(err)
	}
	s := storage.NewFoolscap(ref)

	v, err := s.GetVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.MaxImmutableShareSize != math.MaxUint64 || v.AvailableSpace != 123456789 || v.ApplicationVersion != "tahoe-lafs/1.20.0" || !v.FillsHolesWithZeroBytes {
		t.Fatalf("version %+v", v)
	}

	var si storage.Index
	copy(si[:], "0123456789abcdef")
	lease := storage.LeaseSecrets{Renew: storage.Secret{1}, Cancel: storage.Secret{2}}
	data := bytes.Repeat([]byte("tubfarm!"), 512)
	a, err := s.AllocateBuckets(ctx, si, lease, []storage.ShareNum{0, 5}, uint64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.AlreadyHave) != 0 || len(a.Writers) != 2 {
		t.Fatalf("allocation %+v", a)
	}
	for _, w := range a.Writers {
		if err := w.Write(ctx, 0, data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Writers[0].Write(ctx, uint64(len(data)), []byte("x")); !storage.Refused(err) {
		t.Fatalf("write past the end: %v, want refusal", err)
	} else if se := new(storage.ServerError); !errors.As(err, &se) || !strings.Contains(se.Type, "ValueError") {
		t.Fatalf("refusal %+v", se)
	}
	a, err = s.AllocateBuckets(ctx, si, lease, []storage.ShareNum{0, 5, 6}, uint64(len(data)))
	if err != nil || !slices.Equal(a.AlreadyHave, []storage.ShareNum{0, 5}) || len(a.Writers) != 1 {
		t.Fatalf("re-allocation %+v, %v", a, err)
	}
	rs, err := s.GetBuckets(ctx, si)
	if err != nil || len(rs) != 2 {
		t.Fatalf("%d buckets, %v", len(rs), err)
	}
	got, err := rs[5].Read(ctx, 10, 100)
	if err != nil || !bytes.Equal(got, data[10:110]) {
		t.Fatalf("read: %q, %v", got, err)
	}
	if err := rs[5].AdviseCorrupt(ctx, "reader advice"); err != nil {
		t.Fatal(err)
	}
	if err := s.AdviseCorruptShare(ctx, storage.Immutable, si, 0, "server advice"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddLease(ctx, si, lease); err != nil {
		t.Fatal(err)
	}
	adv, err := ref.Call(ctx, "advice", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := adv.([]any); !ok || len(l) != 2 || string(l[0].([]byte)) != "reader advice" || string(l[1].([]byte)) != "server advice" {
		t.Fatalf("advice as Python saw it: %#v", adv)
	}

	sec := storage.WriteSecrets{WriteEnabler: storage.Secret{3}, LeaseSecrets: lease}
	ok, _, err := s.SlotTestvAndReadvAndWritev(ctx, si, sec, map[storage.ShareNum]storage.TestWrite{
		1: {Tests: []storage.TestVector{{Offset: 0, Size: 1}}, Writes: []storage.WriteVector{{Offset: 2, Data: []byte("hi")}}},
	}, nil)
	if err != nil || !ok {
		t.Fatalf("write: %v %v", ok, err)
	}
	reads, err := s.SlotReadv(ctx, si, nil, []storage.ReadVector{{Offset: 0, Size: 10}})
	if err != nil || len(reads) != 1 || !bytes.Equal(reads[1][0], []byte("\x00\x00hi")) {
		t.Fatalf("slot_readv: %q, %v", reads, err)
	}
	ok, reads, err = s.SlotTestvAndReadvAndWritev(ctx, si, sec, map[storage.ShareNum]storage.TestWrite{
		1: {Tests: []storage.TestVector{{Offset: 0, Size: 4, Specimen: []byte("nope")}}},
	}, []storage.ReadVector{{Offset: 2, Size: 2}})
	if err != nil || ok || !bytes.Equal(reads[1][0], []byte("hi")) {
		t.Fatalf("failing test: %v %q %v", ok, reads, err)
	}
}
