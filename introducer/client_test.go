package introducer_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/foolscap"
	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/internal/introducerserver"
	"github.com/tubfarm/tubfarm/introducer"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// dial connects to the introducer FURL and returns the connection and the
// introducer's reference.
func dial(t *testing.T, ctx context.Context, furl string) (*foolscap.Conn, *foolscap.RemoteRef) {
	t.Helper()
	f, err := hints.ParseFURL(furl)
	if err != nil {
		t.Fatal(err)
	}
	id, err := tubtls.NewEphemeral()
	if err != nil {
		t.Fatal(err)
	}
	var targets []foolscap.Target
	for _, raw := range f.Hints {
		addr := strings.TrimPrefix(raw, "tcp:")
		targets = append(targets, foolscap.Target{Hint: raw, Addr: addr, Host: "127.0.0.1", Handler: "tcp"})
	}
	conn, _, err := foolscap.Dial(ctx, foolscap.DialConfig{Identity: id, TubID: f.TubID, Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ref, err := conn.GetReference(ctx, f.Name)
	if err != nil {
		t.Fatal(err)
	}
	return conn, ref
}

func signed(t *testing.T, priv ed25519.PrivateKey, seq int64, nick string) config.Signed {
	t.Helper()
	s, err := config.Sign(priv, map[string]any{
		"service-name": "storage", "nickname": nick, "seqnum": seq, "nonce": "n",
		"anonymous-storage-FURL": "pb://cthq7pfeqthwzluohq7d6dvyvop3vi6p@tcp:127.0.0.1:1/swiss",
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newKey(t *testing.T) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// A subscription receives the introducer's set in one announce_v2 call
// before subscribe_v2 answers, then each new publication as it happens.
func TestSubscribeReceives(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := introducerserver.Start(ctx, introducerserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	k1, k2 := newKey(t), newKey(t)
	if r, err := srv.Publish(signed(t, k1, 1, "one")); r != introducer.Accepted {
		t.Fatal(r, err)
	}

	_, ref := dial(t, ctx, srv.FURL)
	tab := introducer.NewTable(introducer.Limits{}, nil)
	var mu sync.Mutex
	var calls [][]introducer.Entry
	got := make(chan struct{}, 8)
	sub := &introducer.Subscriber{Table: tab, OnAccepted: func(es []introducer.Entry) {
		mu.Lock()
		calls = append(calls, es)
		mu.Unlock()
		got <- struct{}{}
	}}
	if _, err := introducer.Subscribe(ctx, ref, sub, introducer.SubscriberInfo("", "tubfarm")); err != nil {
		t.Fatal(err)
	}
	// The initial set was delivered before subscribe_v2 answered.
	mu.Lock()
	if len(calls) != 1 || len(calls[0]) != 1 || calls[0][0].Announcement.Nickname != "one" {
		t.Fatalf("after subscribe: %+v", calls)
	}
	mu.Unlock()
	<-got
	srv.Publish(signed(t, k2, 1, "two"))
	srv.Publish(signed(t, k1, 2, "one-again"))
	for range 2 {
		select {
		case <-got:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	if tab.Len() != 2 {
		t.Fatalf("table holds %d", tab.Len())
	}
	for _, e := range tab.Entries() {
		if e.Key == config.FormatServerKey(k1.Public().(ed25519.PublicKey)) && e.Announcement.Seqnum != 2 {
			t.Errorf("k1 seqnum %d, want 2", e.Announcement.Seqnum)
		}
	}
	if n := tab.Counts()[introducer.Accepted]; n != 3 {
		t.Errorf("accepted %d, want 3", n)
	}
}

func TestCheckVersion(t *testing.T) {
	good := foolscap.Dict{{Key: []byte(introducer.ProtocolV2), Value: foolscap.Dict{}}, {Key: []byte("application-version"), Value: []byte("x")}}
	if err := introducer.CheckVersion(good); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{
		"v1 only":  foolscap.Dict{{Key: []byte("http://allmydata.org/tahoe/protocols/introducer/v1"), Value: foolscap.Dict{}}},
		"str keys": foolscap.Dict{{Key: introducer.ProtocolV2, Value: foolscap.Dict{}}},
		"not dict": []any{},
	} {
		if err := introducer.CheckVersion(v); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The subscriber serves announce_v2 with Tahoe's argument constraint
// (announcements=SetOf(Any)) and nothing else.
func TestSubscriberArguments(t *testing.T) {
	tab := introducer.NewTable(introducer.Limits{}, nil)
	sub := &introducer.Subscriber{Table: tab}
	ctx := context.Background()
	item := foolscap.Tuple{[]byte("{}"), []byte(""), []byte("")}
	for name, c := range map[string]struct {
		method string
		args   []any
		kwargs map[string]any
		ok     bool
	}{
		"positional set":      {"announce_v2", []any{foolscap.Set{item}}, nil, true},
		"keyword":             {"announce_v2", nil, map[string]any{"announcements": foolscap.Set{item}}, true},
		"frozenset":           {"announce_v2", []any{foolscap.FrozenSet{item}}, nil, true},
		"list, not a set":     {"announce_v2", []any{[]any{item}}, nil, false},
		"wrong keyword":       {"announce_v2", nil, map[string]any{"anns": foolscap.Set{}}, false},
		"two arguments":       {"announce_v2", []any{foolscap.Set{}, foolscap.Set{}}, nil, false},
		"get_version":         {"get_version", nil, nil, false},
		"v1 announce":         {"announce", []any{foolscap.Set{}}, nil, false},
		"set_encoding_params": {"set_encoding_parameters", []any{foolscap.Tuple{int64(3), int64(7), int64(10)}}, nil, false},
	} {
		_, err := sub.CallRemote(ctx, c.method, c.args, c.kwargs)
		if (err == nil) != c.ok {
			t.Errorf("%s: error %v", name, err)
		}
		var re *foolscap.RemoteError
		if err != nil && (!errors.As(err, &re) || re.Type != "foolscap.tokens.Violation") {
			t.Errorf("%s: %v is not a Violation", name, err)
		}
	}
	if n := tab.Counts()[introducer.Unsigned]; n != 3 {
		t.Errorf("unsigned counted %d, want 3 (one per accepted call)", n)
	}
}

// TestSubscriberCallRefused: an announce_v2 call refused by the Foolscap
// decoder counts once, as over_limit when a limit was broken and as invalid
// otherwise, and is logged once per kind; refusals of other methods are not
// counted.
func TestSubscriberCallRefused(t *testing.T) {
	tab := introducer.NewTable(introducer.Limits{}, nil)
	var logs bytes.Buffer
	sub := &introducer.Subscriber{Table: tab, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	tooMany := &foolscap.Violation{Reason: foolscap.ErrTooManyItems, Detail: "set has more than 65536 items"}
	sub.CallRefused("announce_v2", tooMany)
	sub.CallRefused("announce_v2", tooMany)
	sub.CallRefused("announce_v2", &foolscap.Violation{Reason: foolscap.ErrBadValue, Detail: "bad UTF-8"})
	sub.CallRefused("get_version", tooMany)
	c := tab.Counts()
	for r, n := range c {
		want := map[introducer.Result]uint64{introducer.OverLimit: 2, introducer.Invalid: 1}[r]
		if n != want {
			t.Errorf("%s = %d, want %d (counts %v)", r, n, want, c)
		}
	}
	if n := strings.Count(logs.String(), "refused before its set was read"); n != 2 {
		t.Errorf("%d log lines, want one per kind:\n%s", n, logs.String())
	}
}
