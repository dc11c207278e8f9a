package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/actors"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/foolscap"
	"github.com/tubfarm/tubfarm/internal/grid"
	"github.com/tubfarm/tubfarm/internal/introducerserver"
	"github.com/tubfarm/tubfarm/introducer"
	"github.com/tubfarm/tubfarm/messages"
)

func wireItem(s config.Signed) foolscap.Tuple {
	return foolscap.Tuple{s.Msg, []byte(s.Sig), []byte(s.Key)}
}

func hostileKey(t *testing.T) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// signWith signs fields as server s would, after edit.
func signWith(t *testing.T, priv ed25519.PrivateKey, s *grid.Server, seq int64, edit func(map[string]any)) config.Signed {
	t.Helper()
	f := s.Announcement(seq)
	if edit != nil {
		edit(f)
	}
	signed, err := config.Sign(priv, f)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// TestHostileIntroducer feeds each kind of bad input through a live
// introducer, next to one good announcement. Each case checks the count
// of its result, the cap that applied, that the good server still
// connects, and that the cache written in the end holds only the good,
// verified entry.
func TestHostileIntroducer(t *testing.T) {
	g := startGrid(t, 1)
	good := g.Servers[0]
	limits := introducer.Limits{MaxSetSize: 1000, MaxServers: 50, MaxNicknameBytes: 1024, MaxDepth: 8, MaxHints: 64}
	cases := []struct {
		name   string
		items  func() []any
		result introducer.Result
		count  uint64
	}{
		{"bad signature", func() []any {
			s := signWith(t, good.Key, good, 2, nil)
			s.Msg = []byte(strings.Replace(string(s.Msg), good.Nickname, "mallory", 1))
			return []any{wireItem(s)}
		}, introducer.BadSignature, 1},
		{"key that does not match", func() []any {
			s := signWith(t, hostileKey(t), good, 2, nil)
			s.Key = good.ID
			return []any{wireItem(s)}
		}, introducer.BadSignature, 1},
		{"unsigned", func() []any {
			s := signWith(t, good.Key, good, 2, nil)
			return []any{foolscap.Tuple{s.Msg, []byte(""), []byte("")}}
		}, introducer.Unsigned, 1},
		{"older seqnum (replay)", func() []any {
			return []any{wireItem(signWith(t, good.Key, good, 0, nil))}
		}, introducer.StaleSeqnum, 1},
		{"other service", func() []any {
			return []any{wireItem(signWith(t, good.Key, good, 2, func(f map[string]any) { f["service-name"] = "helper" }))}
		}, introducer.WrongService, 1},
		{"megabyte nickname", func() []any {
			return []any{wireItem(signWith(t, good.Key, good, 2, func(f map[string]any) { f["nickname"] = strings.Repeat("n", 2000) }))}
		}, introducer.OverLimit, 1},
		{"half-megabyte message", func() []any {
			// (A message beyond 1 MiB is refused by Foolscap's string
			// limit before it reaches the subscriber, with its whole set.)
			return []any{wireItem(signWith(t, good.Key, good, 2, func(f map[string]any) { f["junk"] = strings.Repeat("j", 512<<10) }))}
		}, introducer.OverLimit, 1},
		{"deeply nested JSON", func() []any {
			return []any{wireItem(signWith(t, good.Key, good, 2, func(f map[string]any) {
				var v any = 1
				for range 50 {
					v = []any{v}
				}
				f["deep"] = v
			}))}
		}, introducer.OverLimit, 1},
		{"non-JSON message", func() []any {
			msg := []byte("{not json")
			sig := ed25519.Sign(good.Key, msg)
			return []any{foolscap.Tuple{msg, []byte("v0-" + b32(sig)), []byte(good.ID)}}
		}, introducer.Invalid, 1},
		{"not a triple", func() []any { return []any{foolscap.Tuple{[]byte("x")}, "text"} }, introducer.Invalid, 2},
		{"FURL with thousands of hints", func() []any {
			return []any{wireItem(signWith(t, good.Key, good, 2, func(f map[string]any) {
				furl := f["anonymous-storage-FURL"].(string)
				at := strings.Index(furl, "@")
				var hs []string
				for i := range 3000 {
					hs = append(hs, fmt.Sprintf("tcp:h%d.example:1", i))
				}
				f["anonymous-storage-FURL"] = furl[:at+1] + strings.Join(hs, ",") + furl[strings.LastIndex(furl, "/"):]
			}))}
		}, introducer.OverLimit, 1},
		{"more servers than the cap", func() []any {
			var out []any
			for range 60 {
				out = append(out, wireItem(signWith(t, hostileKey(t), good, 1, nil)))
			}
			return out
		}, introducer.OverLimit, 11}, // 50 held: the good one and 49 others
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			items := tc.items()
			in := startIntroducer(t, introducerserver.Options{Initial: func() []any {
				return append([]any{wireItem(signWith(t, good.Key, good, 1, nil))}, items...)
			}})
			dir := t.TempDir()
			if err := grid.WriteNodeDir(dir, grid.NodeDir{IntroducerFURLs: map[string]string{"evil": in.FURL}}); err != nil {
				t.Fatal(err)
			}
			b := openBroker(t, dir, tubfarm.Options{WatchInterval: -1, Introducers: tubfarm.IntroducerOptions{Limits: limits}})
			ctx := testCtx(t)
			if err := b.WhenIntroducersAnswered(ctx); err != nil {
				t.Fatal(err)
			}
			if err := b.WhenConnected(ctx, 1); err != nil {
				t.Fatal(err)
			}
			st := b.Introducers()[0]
			if got := st.Announcements[tc.result.String()]; got != tc.count {
				t.Errorf("%s counted %d, want %d (all: %v)", tc.result, got, tc.count, st.Announcements)
			}
			b.Close()
			c, err := config.ReadCache(config.CachePath(dir, "evil"))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range c.Entries {
				if !e.Verified() {
					t.Errorf("unverified entry %s in the cache", e.Key)
				}
				if e.Key == good.ID && (e.Announcement.Seqnum != 1 || e.Announcement.Nickname != good.Nickname) {
					t.Errorf("good server's entry replaced: %v", e.Announcement.Fields())
				}
			}
			if tc.name != "more servers than the cap" && len(c.Entries) != 1 {
				t.Errorf("cache holds %d entries, want the good one only", len(c.Entries))
			}
			if tc.name == "more servers than the cap" && len(c.Entries) != limits.MaxServers {
				t.Errorf("cache holds %d entries, want the cap, %d", len(c.Entries), limits.MaxServers)
			}
			if len(c.Dropped) != 0 {
				t.Errorf("cache has bad entries: %v", c.Dropped)
			}
		})
	}
}

// TestHostileIntroducerSets: a set larger than MaxSetSize is refused whole
// and each of its items counted; one beyond Foolscap's item limit (100 000)
// is refused by the decoder before its items are read: the call fails on
// the wire, the set counts once as over_limit, nothing is stored, and the
// connection stays up.
func TestHostileIntroducerSets(t *testing.T) {
	g := startGrid(t, 1)
	good := g.Servers[0]
	in := startIntroducer(t, introducerserver.Options{})
	publish(t, in, good, 1)
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{IntroducerFURLs: map[string]string{"evil": in.FURL}}); err != nil {
		t.Fatal(err)
	}
	b := openBroker(t, dir, tubfarm.Options{WatchInterval: -1,
		Introducers: tubfarm.IntroducerOptions{Limits: introducer.Limits{MaxSetSize: 100}}})
	ctx := testCtx(t)
	if err := b.WhenIntroducersAnswered(ctx); err != nil {
		t.Fatal(err)
	}
	item := wireItem(signWith(t, good.Key, good, 2, nil))
	set := make(foolscap.Set, 0, 150)
	for i := range 150 {
		// Distinct items: a set holds each once.
		set = append(set, foolscap.Tuple{item[0], item[1], []byte(fmt.Sprintf("%s-%d", item[2], i))})
	}
	in.PushRaw(set)
	waitIntros(t, b, "the over-limit set to be counted", func(st []messages.IntroducerStatus) bool {
		return st[0].Announcements["over_limit"] == 150
	})
	huge := make(foolscap.Set, 0, 100_000)
	for i := range 100_000 {
		huge = append(huge, int64(i))
	}
	in.PushRaw(huge)
	in.PushRaw(foolscap.Set{wireItem(signWith(t, good.Key, good, 3, nil))}) // after the huge one, in order
	waitIntros(t, b, "the announcement after the huge set", func(st []messages.IntroducerStatus) bool {
		return st[0].Announcements["accepted"] == 2
	})
	if n := b.Introducers()[0].Announcements["over_limit"]; n != 151 {
		t.Errorf("over_limit = %d, want 150 + 1 for the huge set", n)
	}
	st := b.Introducers()[0]
	if !st.Connected || st.Servers != 1 {
		t.Errorf("after the huge set: connected %t, %d servers", st.Connected, st.Servers)
	}
	total := uint64(0)
	for _, n := range st.Announcements {
		total += n
	}
	if total != 153 { // 1 + 150 over_limit + 1 over_limit (the huge set) + 1
		t.Errorf("announcements %v", st.Announcements)
	}
}

// TestHostileIntroducerNeverAnswers: an introducer that delivers its set
// but never answers subscribe_v2 costs one connection attempt per
// ConnectTimeout; what it delivered was verified and is used, and the
// broker stays responsive.
func TestHostileIntroducerNeverAnswers(t *testing.T) {
	g := startGrid(t, 1)
	good := g.Servers[0]
	in := startIntroducer(t, introducerserver.Options{Stall: true})
	publish(t, in, good, 1)
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{IntroducerFURLs: map[string]string{"slow": in.FURL}}); err != nil {
		t.Fatal(err)
	}
	b := openBroker(t, dir, tubfarm.Options{WatchInterval: -1, ConnectTimeout: 300 * time.Millisecond, Backoff: fastBackoff})
	ctx := testCtx(t)
	if err := b.WhenConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	waitIntro(t, b, "the stalled subscription to time out", func() bool {
		return b.Introducers()[0].State == actors.WaitingToRetry
	})
	st := b.Introducers()[0]
	if st.Subscribed || st.Announcements["accepted"] != 1 {
		t.Errorf("status %+v", st)
	}
	if err := b.Reload(); err != nil { // the broker still answers
		t.Fatal(err)
	}
}

func waitIntros(t *testing.T, b *tubfarm.Broker, what string, cond func([]messages.IntroducerStatus) bool) {
	t.Helper()
	if err := b.WhenIntroducers(testCtx(t), cond); err != nil {
		t.Fatalf("waiting for %s: %v (%+v)", what, err, b.Introducers())
	}
}

func b32(b []byte) string {
	return base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding).EncodeToString(b)
}
