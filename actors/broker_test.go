package actors

import (
	"context"
	"errors"
	"fmt"
	"github.com/asynkron/protoactor-go/actor"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tubfarm/tubfarm/messages"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

func crashChild(b *Broker, id string) {
	b.sys.Root.Send(b.sys.NewLocalPID("broker/"+id), &crash{reason: "boom " + id})
}

// drainChild returns once server id's child has handled every message
// queued for it so far, failing the test after waitTimeout.
func drainChild(t *testing.T, b *Broker, id string) {
	t.Helper()
	m := &barrier{done: make(chan struct{})}
	b.sys.Root.Send(b.sys.NewLocalPID("broker/"+id), m)
	select {
	case <-m.done:
	case <-time.After(waitTimeout):
		t.Fatalf("%s: the child did not handle a message within %v", id, waitTimeout)
	}
}

// TestPanicStorm spawns 1 000 servers and makes half of them panic three
// times in a row, then all of them once more. The broker's server set and
// the servers that did not panic are untouched; every panicking server
// comes back after its (growing) restart delay.
func TestPanicStorm(t *testing.T) {
	const n = 1000
	conn := newMemConnector()
	b, clk := newTestBroker(t, Config{Connector: conn, IsolatedBackoff: true, SubscriberBuffer: 1 << 16})
	rec := newRecorder(t, b)
	specs := make([]messages.ServerSpec, n)
	ids := make([]string, n)
	for i := range specs {
		ids[i] = fmt.Sprintf("srv-%04d", i)
		specs[i] = spec(ids[i], "k")
	}
	if err := b.Apply(specs); err != nil {
		t.Fatal(err)
	}
	if err := b.WhenConnected(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	rec.until(func() bool { return rec.totals[Connected] == n })

	// Round 1: even servers panic three times in a row.
	const repeats = 3
	for i := 0; i < n; i += 2 {
		for range repeats {
			crashChild(b, ids[i])
		}
	}
	rec.until(func() bool { return rec.totals[WaitingToRetry] == n/2*repeats }) // odd servers have none
	// The restart delays grow with consecutive panics: 100, 200, 400 ms.
	for i := 0; i < n; i += 2 {
		var delays []time.Duration
		for _, ev := range rec.events[ids[i]] {
			if ev.To == WaitingToRetry {
				if ev.Reason != string(ReasonPanic) {
					t.Fatalf("%s: reason %q, want panic", ids[i], ev.Reason)
				}
				delays = append(delays, ev.Delay)
			}
		}
		if want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}; !slices.Equal(delays, want) {
			t.Fatalf("%s: restart delays %v, want %v", ids[i], delays, want)
		}
	}
	if got := len(b.Servers()); got != n {
		t.Fatalf("Servers() has %d entries during the storm, want %d", got, n)
	}
	if c, err := b.Call(context.Background(), ids[1], "echo", []any{"x"}, nil); err != nil || !slices.Equal(c.([]any), []any{"x"}) {
		t.Errorf("Call to a server that did not panic during the storm = %v, %v", c, err)
	}
	clk.Advance(DefaultRestartBackoff.MaxDelayWithJitter()) // more than any delay so far
	rec.until(func() bool { return rec.totals[Connected] == n+n/2 })

	// Round 2: every server panics once.
	for _, id := range ids {
		crashChild(b, id)
	}
	clk.Advance(0) // nothing is due yet
	rec.until(func() bool { return rec.totals[WaitingToRetry] == n/2*repeats+n })
	clk.Advance(DefaultRestartBackoff.MaxDelayWithJitter())
	rec.until(func() bool { return rec.totals[Connected] == 2*n+n/2 })

	sts := b.Servers()
	if len(sts) != n {
		t.Fatalf("Servers() has %d entries, want %d", len(sts), n)
	}
	for i, st := range sts {
		wantRestarts := 1
		if i%2 == 0 {
			wantRestarts = 1 + repeats
		}
		if st.ID != ids[i] || !st.Connected || st.Restarts != wantRestarts {
			t.Fatalf("status %d = {ID %s Connected %v Restarts %d}, want {%s true %d}", i, st.ID, st.Connected, st.Restarts, ids[i], wantRestarts)
		}
		// Odd servers kept their first session through round 1.
		sess := conn.sess(ids[i])
		if i%2 == 1 {
			if len(sess) != 2 {
				t.Fatalf("%s connected %d times, want 2 (once, then after its one panic)", ids[i], len(sess))
			}
		}
		for _, s := range sess[:len(sess)-1] {
			if !s.closed.Load() {
				t.Fatalf("%s: a session replaced after a panic was not closed", ids[i])
			}
		}
	}
	if got, want := testutil.ToFloat64(b.sh.m.restarts), float64(n/2*repeats+n); got != want {
		t.Errorf("tubfarm_actor_restarts_total{actor=server} = %v, want %v", got, want)
	}
}

// TestApplyDiff checks the three cases of a reload.
func TestApplyDiff(t *testing.T) {
	conn := newMemConnector()
	b, _ := newTestBroker(t, Config{Connector: conn, IsolatedBackoff: true})
	rec := newRecorder(t, b)
	if err := b.Apply([]messages.ServerSpec{spec("a", "ka"), spec("b", "kb"), spec("c", "kc")}); err != nil {
		t.Fatal(err)
	}
	rec.until(func() bool {
		return rec.count("a", Connected) == 1 && rec.count("b", Connected) == 1 && rec.count("c", Connected) == 1
	})
	before := map[string]Status{}
	for _, st := range b.Servers() {
		before[st.ID] = st
	}

	a2 := spec("a", "ka")
	a2.Nickname = "renamed"
	if err := b.Apply([]messages.ServerSpec{a2, spec("b", "kb2"), spec("d", "kd")}); err != nil {
		t.Fatal(err)
	}
	// Removed: gone from the status store as soon as Apply returns.
	if _, ok := b.Server("c"); ok {
		t.Error("c: still in the status store after Apply")
	}
	if _, err := b.Call(context.Background(), "c", "echo", nil, nil); !errors.As(err, new(*UnknownServerError)) {
		t.Errorf("Call to removed server: %v", err)
	}
	rec.until(func() bool {
		return rec.count("b", Connected) == 2 && rec.count("c", Stopped) == 1 && rec.count("d", Connected) == 1
	})

	// Same connection (FURL and policy): same child (no event at all), identity and session.
	if got := rec.states("a"); !slices.Equal(got, []State{Connecting, Connected}) {
		t.Errorf("a: states %v, want only the first connection", got)
	}
	drainChild(t, b, "a") // the nickname is recorded by the child, from the updateSpec Apply queued
	a, _ := b.Server("a")
	if a.TubID != before["a"].TubID || len(conn.sess("a")) != 1 || conn.sess("a")[0].closed.Load() {
		t.Errorf("a: TubID %s→%s, %d sessions; want the same identity and session", before["a"].TubID, a.TubID, len(conn.sess("a")))
	}
	if a.Nickname != "renamed" || !a.Connected {
		t.Errorf("a: nickname %q connected %v", a.Nickname, a.Connected)
	}
	// Changed FURL: old child stopped, its session closed, new child and identity.
	bs := conn.sess("b")
	if len(bs) != 2 || !bs[0].closed.Load() || bs[1].closed.Load() {
		t.Errorf("b: %d sessions; want the first closed and the second live", len(bs))
	}
	bst, _ := b.Server("b")
	if bst.TubID == before["b"].TubID || !bst.Connected {
		t.Errorf("b: TubID unchanged (%s) or not connected", bst.TubID)
	}
	evs := rec.events["b"]
	if last := evs[len(evs)-1]; last.Seq != 2 {
		t.Errorf("b: new child's Connected event has Seq %d, want 2 (a fresh child)", last.Seq)
	}
	if !slices.Equal(rec.states("b"), []State{Connecting, Connected, Stopped, Connecting, Connected}) {
		t.Errorf("b: states %v", rec.states("b"))
	}
	// Removed: stopped, then its session closed. The child publishes
	// Stopped before its teardown closes the session, so wait for that.
	select {
	case <-conn.sess("c")[0].Done():
	case <-time.After(waitTimeout):
		t.Errorf("c: session not closed within %v of its removal", waitTimeout)
	}
	var ids []string
	for _, st := range b.Servers() {
		ids = append(ids, st.ID)
	}
	if !slices.Equal(ids, []string{"a", "b", "d"}) {
		t.Errorf("Servers() = %v", ids)
	}
}

func TestApplyRejectsBadSpecs(t *testing.T) {
	b, _ := newTestBroker(t, Config{Connector: newMemConnector()})
	tests := []struct {
		name  string
		specs []messages.ServerSpec
		index int
	}{
		{"empty id", []messages.ServerSpec{spec("a", "k"), {Nickname: "k"}}, 1},
		{"duplicate id", []messages.ServerSpec{spec("a", "k"), spec("b", "k"), spec("a", "k2")}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var se *SpecError
			if err := b.Apply(tt.specs); !errors.As(err, &se) || se.Index != tt.index {
				t.Fatalf("Apply = %v, want *SpecError at index %d", err, tt.index)
			}
			if len(b.Servers()) != 0 {
				t.Error("a rejected Apply changed the server set")
			}
		})
	}
}

// TestIdentityPolicy checks which events give a server a new TubID.
func TestIdentityPolicy(t *testing.T) {
	tests := []struct {
		policy IdentityPolicy
		same   bool // the TubID survives reconnection and panic restarts
	}{
		{PerAttempt, false},
		{PerServer, true},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			conn := newMemConnector()
			b, clk := newTestBroker(t, Config{Connector: conn, Identity: tt.policy})
			rec := newRecorder(t, b)
			if err := b.Apply([]messages.ServerSpec{spec("s", "k")}); err != nil {
				t.Fatal(err)
			}
			rec.until(func() bool { return rec.count("s", Connected) == 1 })
			conn.sess("s")[0].drop() // session lost → reconnect
			rec.until(func() bool { return rec.count("s", WaitingToRetry) == 1 })
			clk.Advance(time.Second)
			rec.until(func() bool { return rec.count("s", Connected) == 2 })
			crashChild(b, "s") // panic → restart → reconnect
			rec.until(func() bool { return rec.count("s", WaitingToRetry) == 2 })
			clk.Advance(time.Second)
			rec.until(func() bool { return rec.count("s", Connected) == 3 })

			ids := conn.ids("s")
			if len(ids) != 3 {
				t.Fatalf("%d attempts, want 3", len(ids))
			}
			distinct := len(slices.Compact(slices.Sorted(slices.Values(ids))))
			if tt.same && distinct != 1 {
				t.Errorf("TubIDs %v: want one identity", ids)
			}
			if !tt.same && distinct != 3 {
				t.Errorf("TubIDs %v: want a new identity per attempt", ids)
			}
			st, _ := b.Server("s")
			if st.TubID != ids[2] {
				t.Errorf("status TubID %s, last attempt used %s", st.TubID, ids[2])
			}
			if got := testutil.CollectAndCount(b.sh.m.identitySeconds); got != 1 {
				t.Errorf("identity histogram series = %d", got)
			}
		})
	}
	if PerAttempt.String() != "per_attempt" || IdentityPolicy(9).String() != "IdentityPolicy(9)" {
		t.Error("IdentityPolicy.String")
	}
}

// histCount returns the sample count of the histogram series with labels.
func histCount(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			return m.GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// TestMetrics connects N servers and checks the observations and the lint.
func TestMetrics(t *testing.T) {
	const n = 7
	reg := prometheus.NewPedanticRegistry()
	conn := newMemConnector()
	conn.fail = func(id string, k int) error {
		if id == "bad" {
			return &ConnectError{Reason: ReasonNegotiation, Handler: "tor", Err: errors.New("negotiation failed")}
		}
		return nil
	}
	b, _ := newTestBroker(t, Config{Connector: conn}, WithRegisterer(reg))
	rec := newRecorder(t, b)
	quiet := WithLogger(slog.New(slog.DiscardHandler))
	specs := []messages.ServerSpec{spec("bad", "k")}
	for i := range n {
		specs = append(specs, spec(fmt.Sprintf("s%d", i), "k"))
	}
	if err := b.Apply(specs); err != nil {
		t.Fatal(err)
	}
	if err := b.WhenConnected(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	rec.until(func() bool { return rec.count("bad", WaitingToRetry) >= 1 })

	for _, phase := range phases {
		if got := histCount(t, reg, "tubfarm_handshake_duration_seconds", map[string]string{"phase": phase, "handler": "tcp"}); got != n {
			t.Errorf("handshake{phase=%s,handler=tcp} has %d observations, want %d", phase, got, n)
		}
	}
	if got := histCount(t, reg, "tubfarm_identity_generation_seconds", nil); got < n+1 {
		t.Errorf("identity_generation has %d observations, want at least %d", got, n+1)
	}
	if got := testutil.ToFloat64(b.sh.m.attempts.WithLabelValues("tcp")); got != n {
		t.Errorf("attempts{tcp} = %v, want %d", got, n)
	}
	if got := testutil.ToFloat64(b.sh.m.failures.WithLabelValues("tor", "negotiation")); got < 1 {
		t.Errorf("failures{tor,negotiation} = %v", got)
	}
	if got := testutil.ToFloat64(b.sh.m.states.WithLabelValues("connected")); got != n {
		t.Errorf("servers{connected} = %v, want %d", got, n)
	}
	if got := testutil.ToFloat64(b.sh.m.states.WithLabelValues("idle")) + testutil.ToFloat64(b.sh.m.states.WithLabelValues("stopped")); got != 0 {
		t.Errorf("servers{idle}+servers{stopped} = %v, want 0", got)
	}
	if histCount(t, reg, "tubfarm_backoff_delay_seconds", nil) < 1 {
		t.Error("backoff_delay_seconds has no observation")
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	for _, c := range b.sh.m.collectors() {
		problems, err := testutil.CollectAndLint(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}

	// A second broker on the same registry is refused; Close unregisters.
	if _, err := New(Config{Connector: conn}, WithRegisterer(reg), quiet); err == nil {
		t.Error("second broker registered the same metrics")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if mfs, _ := reg.Gather(); len(mfs) != 0 {
		t.Errorf("%d metric families left after Close", len(mfs))
	}
	b2, err := New(Config{Connector: conn}, WithRegisterer(reg), quiet)
	if err != nil {
		t.Fatalf("New after Close: %v", err)
	}
	_ = b2.Close()
}

// TestBrokerRestart panics the broker actor: all children are stopped by
// protoactor and the new incarnation rebuilds them from the server set.
func TestBrokerRestart(t *testing.T) {
	conn := newMemConnector()
	b, _ := newTestBroker(t, Config{Connector: conn})
	rec := newRecorder(t, b)
	ids := []string{"a", "b", "c"}
	var specs []messages.ServerSpec
	for _, id := range ids {
		specs = append(specs, spec(id, "k"))
	}
	if err := b.Apply(specs); err != nil {
		t.Fatal(err)
	}
	rec.until(func() bool { return rec.count("a", Connected)+rec.count("b", Connected)+rec.count("c", Connected) == 3 })
	b.sys.Root.Send(b.pid, &crash{reason: "broker bug"})
	rec.until(func() bool { return rec.count("a", Connected)+rec.count("b", Connected)+rec.count("c", Connected) == 6 })
	for _, id := range ids {
		if got := rec.states(id); !slices.Equal(got, []State{Connecting, Connected, Stopped, Connecting, Connected}) {
			t.Errorf("%s: states %v", id, got)
		}
		if s := conn.sess(id); len(s) != 2 || !s[0].closed.Load() {
			t.Errorf("%s: old session not closed", id)
		}
	}
	if got := len(b.Servers()); got != 3 {
		t.Errorf("Servers() = %d entries after restart", got)
	}
	if got := testutil.ToFloat64(b.sh.m.brokerRestarts); got != 1 {
		t.Errorf("restarts{broker} = %v", got)
	}
	// The broker still works.
	if err := b.Apply(specs[:2]); err != nil {
		t.Fatal(err)
	}
	rec.until(func() bool { return rec.count("c", Stopped) == 2 })
}

// TestTryNow cuts a long wait (after a wrong TubID) short.
func TestTryNow(t *testing.T) {
	conn := newMemConnector()
	var fail atomic.Bool
	fail.Store(true)
	conn.fail = func(string, int) error {
		if fail.Load() {
			return &tubtls.MismatchError{Want: "a", Got: "b"}
		}
		return nil
	}
	b, _ := newTestBroker(t, Config{Connector: conn})
	rec := newRecorder(t, b)
	if err := b.Apply([]messages.ServerSpec{spec("s", "k")}); err != nil {
		t.Fatal(err)
	}
	ev := rec.nextFor("s")
	ev = rec.nextFor("s")
	if ev.To != WaitingToRetry || ev.Delay != DefaultBackoff.MaxDelay {
		t.Fatalf("after mismatch: %v delay %v", ev.To, ev.Delay)
	}
	fail.Store(false)
	if err := b.TryNow("s"); err != nil {
		t.Fatal(err)
	}
	rec.until(func() bool { return rec.count("s", Connected) == 1 })
	if err := b.TryNow("nope"); !errors.As(err, new(*UnknownServerError)) {
		t.Errorf("TryNow(unknown) = %v", err)
	}
	if err := b.TryNowAll(); err != nil { // a connected server ignores it
		t.Fatal(err)
	}
	if err := b.Apply([]messages.ServerSpec{spec("s", "k")}); err != nil { // flushes the mailbox
		t.Fatal(err)
	}
	if st, _ := b.Server("s"); !st.Connected || len(conn.ids("s")) != 2 {
		t.Errorf("TryNowAll disturbed a connected server: %+v", st)
	}
}

// TestTriggerOnConnect: when one server connects, servers waiting to retry
// are retried at once (Tahoe's _trigger_connections), unless
// IsolatedBackoff.
func TestTriggerOnConnect(t *testing.T) {
	for _, isolated := range []bool{false, true} {
		t.Run(fmt.Sprintf("isolated=%v", isolated), func(t *testing.T) {
			conn := newMemConnector()
			var up atomic.Bool
			conn.fail = func(id string, _ int) error {
				if id == "late" && up.Load() {
					return nil
				}
				return &ConnectError{Reason: ReasonRefused, Err: errors.New("refused")}
			}
			b, clk := newTestBroker(t, Config{Connector: conn, IsolatedBackoff: isolated})
			rec := newRecorder(t, b)
			if err := b.Apply([]messages.ServerSpec{spec("late", "k"), spec("down", "k")}); err != nil {
				t.Fatal(err)
			}
			rec.until(func() bool { return rec.count("late", WaitingToRetry) == 1 && rec.count("down", WaitingToRetry) == 1 })
			// The clock moves only by hand in this test: every attempt
			// after the first comes from TryNow or from the trigger.
			up.Store(true)
			if err := b.TryNow("late"); err != nil {
				t.Fatal(err)
			}
			rec.until(func() bool { return rec.count("late", Connected) == 1 })
			if isolated {
				if err := b.Apply([]messages.ServerSpec{spec("late", "k"), spec("down", "k")}); err != nil {
					t.Fatal(err) // Apply round-trips the broker's mailbox after the notice
				}
				if n := len(conn.ids("down")); n != 1 {
					t.Errorf("down attempted %d times, want 1", n)
				}
				return
			}
			// The trigger moves down's retry to a random point of the
			// base delay (0.5 s with the tests' constant draw), like
			// Foolscap's reset() moving it to 1 s, rather than to now.
			rec.until(func() bool { return rec.count("down", WaitingToRetry) == 2 })
			if ev := rec.events["down"][2]; ev.Delay != 500*time.Millisecond {
				t.Errorf("down: triggered reset moved the retry to +%v, want +500ms", ev.Delay)
			}
			if n := len(conn.ids("down")); n != 1 {
				t.Errorf("down attempted %d times right after the trigger, want 1", n)
			}
			clk.Advance(500 * time.Millisecond)
			rec.until(func() bool { return rec.count("down", WaitingToRetry) == 3 })
			if got := rec.states("down"); !slices.Equal(got, []State{Connecting, WaitingToRetry, WaitingToRetry, Connecting, WaitingToRetry}) {
				t.Errorf("down: states %v", got)
			}
			if ev := rec.events["down"][4]; ev.Delay != time.Second {
				t.Errorf("down: delay after the triggered attempt %v, want the base 1s (failures reset)", ev.Delay)
			}
		})
	}
}

func TestCall(t *testing.T) {
	conn := newMemConnector()
	conn.fail = func(id string, _ int) error {
		if id == "down" {
			return errors.New("no")
		}
		return nil
	}
	b, _ := newTestBroker(t, Config{Connector: conn})
	if err := b.Apply([]messages.ServerSpec{spec("up", "k"), spec("down", "k")}); err != nil {
		t.Fatal(err)
	}
	if err := b.WhenConnected(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	got, err := b.Call(context.Background(), "up", "echo", []any{1, "two"}, nil)
	if err != nil || !slices.Equal(got.([]any), []any{1, "two"}) {
		t.Errorf("Call = %v, %v", got, err)
	}
	var nce *NotConnectedError
	if _, err := b.Call(context.Background(), "down", "echo", nil, nil); !errors.As(err, &nce) || nce.ID != "down" {
		t.Errorf("Call(down) = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.WhenConnected(ctx, 2); !errors.Is(err, context.Canceled) {
		t.Errorf("WhenConnected(2) with cancelled ctx = %v", err)
	}
}

// TestSlowSubscriber: a subscriber that never reads does not stall the
// broker; its events are dropped and counted.
func TestSlowSubscriber(t *testing.T) {
	b, _ := newTestBroker(t, Config{Connector: newMemConnector(), SubscriberBuffer: 1})
	ch, cancel := b.Subscribe()
	defer cancel()
	var specs []messages.ServerSpec
	for i := range 20 {
		specs = append(specs, spec(fmt.Sprintf("s%d", i), "k"))
	}
	if err := b.Apply(specs); err != nil {
		t.Fatal(err)
	}
	if err := b.WhenConnected(context.Background(), 20); err != nil {
		t.Fatal(err)
	}
	if len(ch) != 1 {
		t.Errorf("buffered %d events, want 1", len(ch))
	}
	if got := testutil.ToFloat64(b.sh.m.droppedEvents); got != 39 {
		t.Errorf("dropped %v events, want 39 (40 transitions, buffer 1)", got)
	}
	cancel()
	cancel() // idempotent
	if _, ok := <-ch; !ok {
		t.Error("buffered event lost at cancel")
	}
	if _, ok := <-ch; ok {
		t.Error("channel open after cancel")
	}
}

func TestClose(t *testing.T) {
	conn := newMemConnector()
	b, _ := newTestBroker(t, Config{Connector: conn})
	ch, _ := b.Subscribe()
	if err := b.Apply([]messages.ServerSpec{spec("s", "k")}); err != nil {
		t.Fatal(err)
	}
	if err := b.WhenConnected(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if !conn.sess("s")[0].closed.Load() {
		t.Error("session not closed by Close")
	}
	var last messages.StateChanged
	for ev := range ch { // closed by Close
		last = ev
	}
	if last.To != Stopped {
		t.Errorf("last event %v, want Stopped", last.To)
	}
	for name, err := range map[string]error{
		"Apply":         b.Apply(nil),
		"TryNow":        b.TryNow("s"),
		"TryNowAll":     b.TryNowAll(),
		"WhenConnected": b.WhenConnected(context.Background(), 1),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if ch2, _ := b.Subscribe(); ch2 != nil {
		if _, ok := <-ch2; ok {
			t.Error("Subscribe after Close gave an open channel")
		}
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no connector", Config{}},
		{"bad backoff", Config{Connector: newMemConnector(), Backoff: Backoff{BaseDelay: time.Second, Multiplier: 0.5, MaxDelay: time.Minute}}},
		{"bad restart backoff", Config{Connector: newMemConnector(), RestartBackoff: Backoff{BaseDelay: -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := New(tt.cfg, WithLogger(slog.New(slog.DiscardHandler))); err == nil {
				_ = b.Close()
				t.Fatal("New accepted a bad Config")
			}
		})
	}
}

// TestConnectorPanic: a panic inside Connect is recovered in the attempt
// goroutine and supervised as a panic of the server actor.
func TestConnectorPanic(t *testing.T) {
	conn := newMemConnector()
	conn.fail = func(_ string, k int) error {
		if k == 0 {
			panic("connector bug")
		}
		return nil
	}
	b, clk := newTestBroker(t, Config{Connector: conn})
	rec := newRecorder(t, b)
	if err := b.Apply([]messages.ServerSpec{spec("s", "k")}); err != nil {
		t.Fatal(err)
	}
	ev := rec.nextFor("s")
	ev = rec.nextFor("s")
	var pe *PanicError
	if ev.To != WaitingToRetry || ev.Reason != string(ReasonPanic) || !errors.As(ev.Err, &pe) || pe.Value != "connector bug" || len(pe.Stack) == 0 {
		t.Fatalf("event after connector panic = %+v", ev)
	}
	clk.Advance(ev.Delay)
	rec.until(func() bool { return rec.count("s", Connected) == 1 })
	if st, _ := b.Server("s"); st.Restarts != 1 {
		t.Errorf("Restarts = %d", st.Restarts)
	}
}

// blockingConnector blocks until its context ends.
type blockingConnector struct{ started, returned chan struct{} }

func (c *blockingConnector) Connect(ctx context.Context, _ messages.ServerSpec, _ *Identity, report func(hint, status string)) (Session, error) {
	report("tcp:h:1", "connecting")
	close(c.started)
	<-ctx.Done()
	defer close(c.returned)
	return nil, ctx.Err()
}

// TestRemoveCancelsAttempt: removing a server cancels its attempt in flight
// down to the Connector.
func TestRemoveCancelsAttempt(t *testing.T) {
	conn := &blockingConnector{started: make(chan struct{}), returned: make(chan struct{})}
	b, _ := newTestBroker(t, Config{Connector: conn})
	rec := newRecorder(t, b)
	if err := b.Apply([]messages.ServerSpec{spec("s", "k")}); err != nil {
		t.Fatal(err)
	}
	<-conn.started
	if err := b.Apply(nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-conn.returned:
	case <-time.After(waitTimeout):
		t.Fatal("attempt not cancelled")
	}
	rec.until(func() bool { return rec.count("s", Stopped) == 1 })
	if got := rec.states("s"); !slices.Equal(got, []State{Connecting, Stopped}) {
		t.Errorf("states %v", got)
	}
}

// TestBrokerGivesUp: a broker actor that keeps panicking is stopped by its
// guardian after maxBrokerRestarts; the Broker then reports ErrClosed and
// Close still releases everything.
func TestBrokerGivesUp(t *testing.T) {
	conn := newMemConnector()
	b, _ := newTestBroker(t, Config{Connector: conn})
	if err := b.Apply([]messages.ServerSpec{spec("s", "k")}); err != nil {
		t.Fatal(err)
	}
	for range maxBrokerRestarts + 1 {
		b.sys.Root.Send(b.pid, &crash{reason: "persistent broker bug"})
	}
	select {
	case <-b.stopped:
	case <-time.After(waitTimeout):
		t.Fatal("broker not stopped after repeated panics")
	}
	if err := b.Apply(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Apply after the broker gave up = %v", err)
	}
	if got := testutil.ToFloat64(b.sh.m.brokerRestarts); got != maxBrokerRestarts+1 {
		t.Errorf("restarts{broker} = %v", got)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, s := range conn.sess("s") {
		if !s.closed.Load() {
			t.Error("a session survived")
		}
	}
}

// TestTriggeredResetRules checks the limits of the automatic reset made
// when another server connects: a notice of a connection made before the
// wait began is ignored, and a wait is moved at most once.
func TestTriggeredResetRules(t *testing.T) {
	conn := newMemConnector()
	conn.fail = func(string, int) error { return &ConnectError{Reason: ReasonRefused, Err: errors.New("refused")} }
	b, clk := newTestBroker(t, Config{Connector: conn})
	rec := newRecorder(t, b)
	if err := b.Apply([]messages.ServerSpec{spec("down", "k")}); err != nil {
		t.Fatal(err)
	}
	rec.until(func() bool { return rec.count("down", WaitingToRetry) == 1 })
	pid := actor.NewPID(b.sys.Address(), b.pid.Id+"/down")
	trigger := func(at time.Time) { b.sys.Root.Send(pid, &peerConnected{at: at}) }
	// barrier: TryNow is queued behind the triggers and starts an attempt.
	barrier := func(n int) {
		t.Helper()
		if err := b.TryNow("down"); err != nil {
			t.Fatal(err)
		}
		rec.until(func() bool { return rec.count("down", Connecting) == n })
	}

	clk.Advance(time.Millisecond)
	trigger(clk.Now().Add(-time.Second)) // a connection from before this wait
	barrier(2)
	if got := rec.states("down"); !slices.Equal(got, []State{Connecting, WaitingToRetry, Connecting}) {
		t.Fatalf("a stale trigger moved the wait: states %v", got)
	}

	rec.until(func() bool { return rec.count("down", WaitingToRetry) == 2 })
	clk.Advance(time.Millisecond)
	trigger(clk.Now())
	trigger(clk.Now())
	barrier(3)
	want := []State{Connecting, WaitingToRetry, Connecting, WaitingToRetry, WaitingToRetry, Connecting}
	if got := rec.states("down"); !slices.Equal(got, want) {
		t.Fatalf("two triggers in one wait: states %v, want %v (moved once)", got, want)
	}
}
