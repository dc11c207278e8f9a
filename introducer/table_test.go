package introducer

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"strings"
	"testing"

	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/foolscap"
)

type testServer struct {
	priv ed25519.PrivateKey
	key  string
}

func newTestServer(t testing.TB) testServer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testServer{priv: priv, key: config.FormatServerKey(pub)}
}

func (s testServer) fields(seq int64) map[string]any {
	return map[string]any{
		"service-name":           "storage",
		"nickname":               "n",
		"seqnum":                 seq,
		"nonce":                  "x",
		"anonymous-storage-FURL": "pb://cthq7pfeqthwzluohq7d6dvyvop3vi6p@tcp:127.0.0.1:1/swiss",
	}
}

func (s testServer) sign(t testing.TB, f map[string]any) config.Signed {
	t.Helper()
	signed, err := config.Sign(s.priv, f)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func b32(b []byte) string {
	return base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding).EncodeToString(b)
}

func wire(s config.Signed) foolscap.Tuple {
	return foolscap.Tuple{s.Msg, []byte(s.Sig), []byte(s.Key)}
}

func TestTableRules(t *testing.T) {
	a := newTestServer(t)
	tab := NewTable(Limits{}, nil)
	offer := func(s config.Signed) Result {
		r, _, _ := tab.OfferWire(wire(s))
		return r
	}
	s5 := a.sign(t, a.fields(5))
	if r := offer(s5); r != Accepted {
		t.Fatalf("first: %v", r)
	}
	if r := offer(s5); r != Duplicate {
		t.Errorf("same again: %v, want duplicate", r)
	}
	// Re-encoded with the same dict (different bytes, same JSON value) is
	// still a duplicate: dicts are compared, not bytes.
	msg := []byte(strings.ReplaceAll(string(s5.Msg), ",", ", "))
	re := config.Signed{Msg: msg, Sig: "v0-" + b32(ed25519.Sign(a.priv, msg)), Key: a.key}
	if r := offer(re); r != Duplicate {
		t.Errorf("same dict re-signed: %v, want duplicate", r)
	}
	f := a.fields(5)
	f["nonce"] = "other"
	if r := offer(a.sign(t, f)); r != StaleSeqnum {
		t.Errorf("different dict, same seqnum: %v, want stale_seqnum", r)
	}
	if r := offer(a.sign(t, a.fields(4))); r != StaleSeqnum {
		t.Errorf("older: %v, want stale_seqnum", r)
	}
	if r := offer(a.sign(t, a.fields(6))); r != Accepted {
		t.Errorf("newer: %v, want accepted", r)
	}
	w := a.fields(7)
	w["service-name"] = "introducer"
	if r := offer(a.sign(t, w)); r != WrongService {
		t.Errorf("other service: %v", r)
	}
	unsigned := a.sign(t, a.fields(8))
	unsigned.Sig = ""
	if r := offer(unsigned); r != Unsigned {
		t.Errorf("no sig: %v", r)
	}
	forged := a.sign(t, a.fields(8))
	forged.Key = newTestServer(t).key // a key that does not match
	if r := offer(forged); r != BadSignature {
		t.Errorf("wrong key: %v", r)
	}
	if r, _, _ := tab.OfferWire(foolscap.Tuple{[]byte("x"), []byte("y")}); r != Invalid {
		t.Errorf("pair: %v", r)
	}
	if r, _, _ := tab.OfferWire(foolscap.Tuple{"x", "y", "z"}); r != Invalid {
		t.Errorf("text instead of bytes: %v", r)
	}
	if got := tab.Entries(); len(got) != 1 || got[0].Announcement.Seqnum != 6 {
		t.Fatalf("entries %+v", got)
	}
	want := map[Result]uint64{Accepted: 2, Duplicate: 2, StaleSeqnum: 2, WrongService: 1, Unsigned: 1, BadSignature: 1, Invalid: 2}
	for r, n := range want {
		if got := tab.Counts()[r]; got != n {
			t.Errorf("%v counted %d, want %d", r, got, n)
		}
	}
}

// A replay after a restart (the table seeded from its cache) is refused;
// through another introducer it is kept as that introducer's but marked
// superseded. Tahoe would accept both.
func TestReplayAcrossIntroducers(t *testing.T) {
	a := newTestServer(t)
	seq := NewSeqnums()
	t1, t2 := NewTable(Limits{}, seq), NewTable(Limits{}, seq)
	if r, _, _ := t1.Offer(a.sign(t, a.fields(9))); r != Accepted {
		t.Fatal(r)
	}
	if r, _, _ := t2.Offer(a.sign(t, a.fields(8))); r != Superseded {
		t.Fatalf("older through another introducer: %v", r)
	}
	if r, _, _ := t2.Offer(a.sign(t, a.fields(9))); r != Accepted {
		t.Fatalf("the same seqnum through another introducer: %v", r)
	}
	if hi, _ := seq.Highest(a.key); hi != 9 {
		t.Fatalf("highest %d", hi)
	}
	// After a restart: a fresh Seqnums seeded from t1's cache entries.
	seq2 := NewSeqnums()
	t3 := NewTable(Limits{}, seq2)
	if n := t3.Seed(t1.Entries()); n != 1 {
		t.Fatalf("seeded %d", n)
	}
	if r, _, _ := t3.Offer(a.sign(t, a.fields(3))); r != StaleSeqnum {
		t.Fatalf("replay after restart: %v", r)
	}
	t4 := NewTable(Limits{}, seq2)
	if r, _, _ := t4.Offer(a.sign(t, a.fields(3))); r != Superseded {
		t.Fatalf("replay after restart through another introducer: %v", r)
	}
	t4 = NewTable(Limits{}, seq2)
	// Unsigned cache entries (written by Tahoe) never seed.
	n := t4.Seed([]config.CacheEntry{{Key: a.key, Announcement: t1.Entries()[0].Announcement}})
	if n != 0 || t4.Len() != 0 {
		t.Fatalf("unsigned entry seeded: %d", n)
	}
}

func TestLimits(t *testing.T) {
	a := newTestServer(t)
	l := Limits{MaxServers: 2, MaxMessageBytes: 2000, MaxDepth: 4, MaxNicknameBytes: 10, MaxHints: 3}
	tab := NewTable(l, nil)
	cases := []struct {
		name string
		f    func(map[string]any)
	}{
		{"megabyte nickname", func(f map[string]any) { f["nickname"] = strings.Repeat("n", 11) }},
		{"deep JSON", func(f map[string]any) { f["x"] = []any{[]any{[]any{[]any{1}}}} }},
		{"big message", func(f map[string]any) { f["x"] = strings.Repeat("a", 2000) }},
		{"many hints", func(f map[string]any) {
			f["anonymous-storage-FURL"] = "pb://cthq7pfeqthwzluohq7d6dvyvop3vi6p@tcp:a:1,tcp:b:1,tcp:c:1,tcp:d:1/swiss"
		}},
	}
	for _, c := range cases {
		f := a.fields(1)
		c.f(f)
		if r, _, err := tab.Offer(a.sign(t, f)); r != OverLimit {
			t.Errorf("%s: %v (%v), want over_limit", c.name, r, err)
		}
	}
	for range 2 {
		s := newTestServer(t)
		if r, _, err := tab.Offer(s.sign(t, s.fields(1))); r != Accepted {
			t.Fatal(r, err)
		}
	}
	s := newTestServer(t)
	if r, _, _ := tab.Offer(s.sign(t, s.fields(1))); r != OverLimit {
		t.Errorf("third server with MaxServers 2: %v", r)
	}
	if got := tab.Counts()[OverLimit]; got != 5 {
		t.Errorf("over_limit counted %d, want 5", got)
	}
	if tab.Len() != 2 {
		t.Errorf("holding %d servers", tab.Len())
	}
}

func TestJSONDepth(t *testing.T) {
	for in, want := range map[string]int{
		`{}`: 1, `{"a": [1, {"b": 2}]}`: 3, `{"a": "[[[["}`: 1, `{"a": "\"[["}`: 1, `[]`: 1, `1`: 0,
	} {
		if got := jsonDepth([]byte(in)); got != want {
			t.Errorf("jsonDepth(%s) = %d, want %d", in, got, want)
		}
	}
}

// OfferAll gives each item of a set the result OfferWire would, in order.
func TestOfferAllMatchesOfferWire(t *testing.T) {
	var items []any
	for i := range 300 {
		s := newTestServer(t)
		signed := s.sign(t, s.fields(int64(i)))
		switch i % 5 {
		case 1:
			signed.Sig = ""
		case 2:
			signed.Msg = append([]byte(nil), signed.Msg...)
			signed.Msg[len(signed.Msg)-2] ^= 1
		}
		items = append(items, wire(signed))
		if i%7 == 0 {
			items = append(items, wire(signed)) // duplicates within the set
		}
	}
	items = append(items, "not a tuple")
	a, b := NewTable(Limits{MaxServers: 100}, nil), NewTable(Limits{MaxServers: 100}, nil)
	got := a.OfferAll(items)
	for i, it := range items {
		r, _, _ := b.OfferWire(it)
		if got[i].Result != r {
			t.Fatalf("item %d: OfferAll %v, OfferWire %v", i, got[i].Result, r)
		}
		if r.Stored() != (got[i].Entry != nil) {
			t.Fatalf("item %d: entry %v for %v", i, got[i].Entry, r)
		}
	}
	for r, n := range b.Counts() {
		if a.Counts()[r] != n {
			t.Errorf("%v: OfferAll counted %d, OfferWire %d", r, a.Counts()[r], n)
		}
	}
	if a.Counts()[OverLimit] == 0 || a.Counts()[Duplicate] == 0 {
		t.Errorf("the test did not reach the limit or duplicates: %v", a.Counts())
	}
}
