package e2e

// The fault matrix of docs/reliability.md: each test drives the real broker
// (tubfarm.Open on a node directory) against real sockets on 127.0.0.1, with
// a fault scripted by internal/faultnet or internal/grid, and asserts the
// sequence of state changes the broker published, then its final state.
// Every row ends with the server connected again — after no more than two
// attempts once the fault is lifted, every wait within the backoff's
// MaxDelay×(1+Jitter) — or in the terminal state the row names. TestMain
// (broker_test.go) checks for leaked goroutines, and each row checks again
// when it ends.

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/armon/go-socks5"
	"go.uber.org/goleak"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/actors"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/internal/faultnet"
	"github.com/tubfarm/tubfarm/internal/grid"
	"github.com/tubfarm/tubfarm/messages"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// faultBackoff keeps rows fast: retries within 20–240 ms.
var faultBackoff = actors.Backoff{BaseDelay: 20 * time.Millisecond, Multiplier: 2, Jitter: 0.2, MaxDelay: 200 * time.Millisecond}

// faultConnectTimeout bounds each attempt of a row. It is long enough for
// a TLS handshake under the race detector on a loaded two-CPU machine
// (1.5 s was not), and short enough that the rows whose fault is a stall
// finish in seconds.
const faultConnectTimeout = 4 * time.Second

// recorder keeps every state change the broker publishes, in order.
type recorder struct {
	t      *testing.T
	mu     sync.Mutex
	evs    []messages.StateChanged
	wake   chan struct{} // closed and replaced at each event
	stop   func()
	exited chan struct{}
}

func record(t *testing.T, b *tubfarm.Broker) *recorder {
	ch, stop := b.Subscribe()
	r := &recorder{t: t, wake: make(chan struct{}), stop: stop, exited: make(chan struct{})}
	go func() {
		defer close(r.exited)
		for ev := range ch {
			r.mu.Lock()
			r.evs = append(r.evs, ev)
			close(r.wake)
			r.wake = make(chan struct{})
			r.mu.Unlock()
		}
	}()
	return r
}

// mark returns the number of events so far, to wait for later ones.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.evs)
}

// events returns the events from index from on.
func (r *recorder) events(from int) []messages.StateChanged {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]messages.StateChanged(nil), r.evs[from:]...)
}

// next waits for the first event at index from or later that matches, and
// returns its index.
func (r *recorder) next(from int, what string, match func(messages.StateChanged) bool) int {
	r.t.Helper()
	ctx := testCtx(r.t)
	for i := from; ; {
		r.mu.Lock()
		for ; i < len(r.evs); i++ {
			if match(r.evs[i]) {
				r.mu.Unlock()
				return i
			}
		}
		wake := r.wake
		r.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			r.t.Fatalf("timed out waiting for %s; events since #%d:\n%s", what, from, formatEvents(r.events(from)))
		}
	}
}

// to matches a transition into state s, with the given reason if not empty.
func to(s messages.State, reason actors.Reason) func(messages.StateChanged) bool {
	return func(ev messages.StateChanged) bool {
		return ev.To == s && (reason == "" || ev.Reason == string(reason))
	}
}

func formatEvents(evs []messages.StateChanged) string {
	var sb strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&sb, "  #%d %s -> %s reason=%q delay=%v err=%v\n", ev.Seq, ev.From, ev.To, ev.Reason, ev.Delay, ev.Err)
	}
	return sb.String()
}

// checkSequence checks the invariants every row shares on evs: each event
// follows the previous one (From is the previous To, Seq grows by one),
// every backoff wait is within the bound, and the listed reasons are the
// only ones for entering WaitingToRetry.
func checkSequence(t *testing.T, evs []messages.StateChanged, bo actors.Backoff, allowed ...actors.Reason) {
	t.Helper()
	ok := map[string]bool{}
	for _, r := range allowed {
		ok[string(r)] = true
	}
	for i, ev := range evs {
		if i > 0 && (ev.From != evs[i-1].To || ev.Seq != evs[i-1].Seq+1) {
			t.Errorf("event %d does not follow event %d:\n%s", i, i-1, formatEvents(evs[i-1:i+1]))
		}
		if ev.To == messages.WaitingToRetry {
			if !ok[ev.Reason] {
				t.Errorf("unexpected failure reason %q (%v); allowed %v", ev.Reason, ev.Err, allowed)
			}
			if ev.Delay <= 0 || ev.Delay > bo.MaxDelayWithJitter() {
				t.Errorf("backoff delay %v outside (0, %v]", ev.Delay, bo.MaxDelayWithJitter())
			}
		}
	}
}

// reconnectedWithin checks that from index from on, the server reached
// Connected after at most n attempts, and returns the index of Connected.
func (r *recorder) reconnectedWithin(from, n int) int {
	r.t.Helper()
	i := r.next(from, "reconnection", to(messages.Connected, ""))
	attempts := 0
	for _, ev := range r.events(from)[:i-from+1] {
		if ev.To == messages.Connecting {
			attempts++
		}
	}
	if attempts > n {
		r.t.Errorf("reconnected after %d attempts, want at most %d:\n%s", attempts, n, formatEvents(r.events(from)[:i-from+1]))
	}
	return i
}

// row is one fault scenario: a node directory whose servers.yaml is
// written after the broker subscribed, so that the recorder sees every
// event from the first attempt on.
type row struct {
	t   *testing.T
	dir string
	b   *tubfarm.Broker
	rec *recorder
	bo  actors.Backoff
}

// noLeaks registers, first, a check that runs after every other cleanup
// of the row.
func noLeaks(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
}

// newRow opens a broker on a fresh node directory with tahoeCfg (or the
// default direct client) and no servers yet.
func newRow(t *testing.T, tahoeCfg string, opts tubfarm.Options) *row {
	t.Helper()
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{TahoeCfg: tahoeCfg}); err != nil {
		t.Fatal(err)
	}
	if opts.Backoff == (actors.Backoff{}) {
		opts.Backoff = faultBackoff
	}
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = faultConnectTimeout
	}
	opts.WatchInterval = -1
	b := openBroker(t, dir, opts)
	rec := record(t, b)
	t.Cleanup(func() {
		b.Close() // closes the subscription
		<-rec.exited
	})
	return &row{t: t, dir: dir, b: b, rec: rec, bo: opts.Backoff}
}

// serve puts servers into servers.yaml, each reached through the hints
// given (by server index), and reloads.
func (r *row) serve(servers []*grid.Server, via map[int][]string) {
	r.t.Helper()
	var sb strings.Builder
	sb.WriteString("storage:\n")
	for i, s := range servers {
		furl := s.FURL
		if addrs, ok := via[i]; ok {
			furl = furlVia(r.t, s, addrs...)
		}
		fmt.Fprintf(&sb, "  %s:\n    ann:\n      nickname: %s\n      anonymous-storage-FURL: %s\n", s.ID, s.Nickname, furl)
	}
	if err := os.WriteFile(config.ServersPath(r.dir), []byte(sb.String()), 0o600); err != nil {
		r.t.Fatal(err)
	}
	if err := r.b.Reload(); err != nil {
		r.t.Fatal(err)
	}
}

// furlVia returns s's FURL with its hints replaced by tcp hints to addrs.
func furlVia(t *testing.T, s *grid.Server, addrs ...string) string {
	t.Helper()
	f, err := hints.ParseFURL(s.FURL)
	if err != nil {
		t.Fatal(err)
	}
	hs := make([]string, len(addrs))
	for i, a := range addrs {
		hs[i] = "tcp:" + a
	}
	return "pb://" + f.TubID + "@" + strings.Join(hs, ",") + "/" + f.Name
}

// proxy starts a faultnet proxy to target, closed when the test ends.
func proxy(t *testing.T, target string) *faultnet.Proxy {
	t.Helper()
	p, err := faultnet.Listen(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// seen waits until the grid server has recorded n client connections (it
// records them after the client may already report Connected) and returns
// their TubIDs.
func seen(t *testing.T, s *grid.Server, n int) []string {
	t.Helper()
	var clients []string
	for range n {
		select {
		case c := <-s.Seen():
			clients = append(clients, c)
		case <-testCtx(t).Done():
			t.Fatalf("%s saw only clients %v, want %d", s.Nickname, clients, n)
		}
	}
	return clients
}

// TestFaultServerRestart: the server process dies (listener and
// connections closed) and comes back on the same port with the same
// identity. The session ends with "reset", attempts meanwhile are
// "refused", and the first attempt after the restart that is not already
// in flight connects.
func TestFaultServerRestart(t *testing.T) {
	noLeaks(t)
	g := startGrid(t, 1)
	srv := g.Servers[0]
	r := newRow(t, "", tubfarm.Options{})
	r.serve(g.Servers, nil)
	up := r.rec.next(0, "first connection", to(messages.Connected, ""))

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	lost := r.rec.next(up, "session loss", to(messages.WaitingToRetry, ""))
	if ev := r.rec.events(lost)[0]; ev.From != messages.Connected || ev.Reason != string(actors.ReasonReset) {
		t.Errorf("session loss: %s -> %s reason %q, want connected -> waiting_to_retry reason reset", ev.From, ev.To, ev.Reason)
	}
	refused := r.rec.next(lost+1, "a refused attempt", to(messages.WaitingToRetry, actors.ReasonRefused))
	if err := srv.Restart(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	back := r.rec.reconnectedWithin(refused+1, 2)
	checkSequence(t, r.rec.events(0)[:back+1], r.bo, actors.ReasonReset, actors.ReasonRefused)
	seen(t, srv, 2)
	if n := len(srv.Clients()); n != 2 {
		t.Errorf("server saw %d connections, want 2", n)
	}
	if st := mustServer(t, r.b, srv.ID).Status(); !st.Connected || st.LastFailureReason != actors.ReasonRefused && st.LastFailureReason != "" {
		t.Errorf("final status %+v", st)
	}
}

// TestFaultBlackhole: the server's address accepts connections and never
// answers. The attempt ends at ConnectTimeout with "timeout"; once the
// server answers again, the broker connects.
func TestFaultBlackhole(t *testing.T) {
	noLeaks(t)
	g := startGrid(t, 1)
	p := proxy(t, g.Servers[0].Addr())
	p.Set(faultnet.Fault{Mode: faultnet.Blackhole})
	r := newRow(t, "", tubfarm.Options{})
	r.serve(g.Servers, map[int][]string{0: {p.Addr()}})
	first := r.rec.next(0, "timeout", to(messages.WaitingToRetry, actors.ReasonTimeout))
	if n := p.Accepted(); n < 1 {
		t.Errorf("blackhole accepted %d connections, want at least 1", n)
	}
	p.Set(faultnet.Fault{Mode: faultnet.Pass})
	back := r.rec.reconnectedWithin(first+1, 2)
	evs := r.rec.events(0)[:back+1]
	checkSequence(t, evs, r.bo, actors.ReasonTimeout)
	if evs[0].From != messages.Idle || evs[0].To != messages.Connecting {
		t.Errorf("first event %s -> %s, want idle -> connecting", evs[0].From, evs[0].To)
	}
	st := mustServer(t, r.b, g.Servers[0].ID).Status()
	if !st.Connected || st.Attempts != 0 {
		t.Errorf("final status: connected=%v attempts=%d", st.Connected, st.Attempts)
	}
}

// TestFaultSlowPeer: the server's bytes arrive one at a time, so slowly
// that the handshake cannot finish within ConnectTimeout: first the HTTP
// upgrade reply (slowloris), then, with the upgrade at full speed, the TLS
// handshake. Each attempt times out in the phase the trickle starts, and
// once the server is fast again the broker connects.
func TestFaultSlowPeer(t *testing.T) {
	const upgradeReply = len("HTTP/1.1 101 Switching Protocols\r\nUpgrade: TLS/1.0, PB/1.0\r\nConnection: Upgrade\r\n\r\n")
	for _, tc := range []struct {
		name  string
		after int
		phase string
	}{
		{"slowloris upgrade", 0, "upgrade"},
		{"slow TLS", upgradeReply, "tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			g := startGrid(t, 1)
			p := proxy(t, g.Servers[0].Addr())
			p.Set(faultnet.Fault{Mode: faultnet.Trickle, After: tc.after, Every: 100 * time.Millisecond})
			r := newRow(t, "", tubfarm.Options{})
			r.serve(g.Servers, map[int][]string{0: {p.Addr()}})
			first := r.rec.next(0, "timeout", to(messages.WaitingToRetry, actors.ReasonTimeout))
			if err := r.rec.events(first)[0].Err; err == nil || !strings.Contains(err.Error(), ": "+tc.phase) {
				t.Errorf("timeout error %v, want one naming phase %q", err, tc.phase)
			}
			p.Set(faultnet.Fault{Mode: faultnet.Pass})
			back := r.rec.reconnectedWithin(first+1, 2)
			checkSequence(t, r.rec.events(0)[:back+1], r.bo, actors.ReasonTimeout)
		})
	}
}

// TestFaultResetMidHandshake: the connection is reset during the upgrade
// reply and during the TLS handshake. Each attempt fails with "reset" at
// once (not at the timeout), and the broker connects when the path heals.
func TestFaultResetMidHandshake(t *testing.T) {
	const upgradeReply = len("HTTP/1.1 101 Switching Protocols\r\nUpgrade: TLS/1.0, PB/1.0\r\nConnection: Upgrade\r\n\r\n")
	for _, tc := range []struct {
		name  string
		after int
	}{
		{"during upgrade", 10},
		{"during TLS", upgradeReply + 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			g := startGrid(t, 1)
			p := proxy(t, g.Servers[0].Addr())
			p.Set(faultnet.Fault{Mode: faultnet.Reset, After: tc.after})
			r := newRow(t, "", tubfarm.Options{})
			r.serve(g.Servers, map[int][]string{0: {p.Addr()}})
			first := r.rec.next(0, "reset", to(messages.WaitingToRetry, actors.ReasonReset))
			second := r.rec.next(first+1, "second reset", to(messages.WaitingToRetry, actors.ReasonReset))
			p.Set(faultnet.Fault{Mode: faultnet.Pass})
			back := r.rec.reconnectedWithin(second+1, 2)
			checkSequence(t, r.rec.events(0)[:back+1], r.bo, actors.ReasonReset)
			seen(t, g.Servers[0], 1)
			if n := len(g.Servers[0].Clients()); n != 1 {
				t.Errorf("server negotiated %d connections, want only the last", n)
			}
		})
	}
}

// TestFaultResetMidCall: the connection stalls while a call is in flight
// and is then reset. The pending call fails with the reset as its error,
// the server's child reconnects, and calls work again.
func TestFaultResetMidCall(t *testing.T) {
	noLeaks(t)
	g := startGrid(t, 1)
	p := proxy(t, g.Servers[0].Addr())
	r := newRow(t, "", tubfarm.Options{})
	r.serve(g.Servers, map[int][]string{0: {p.Addr()}})
	up := r.rec.next(0, "connection", to(messages.Connected, ""))
	h := mustServer(t, r.b, g.Servers[0].ID)
	ctx := testCtx(t)
	if _, err := h.Call(ctx, "get_version"); err != nil {
		t.Fatal(err)
	}

	p.Stall()
	callErr := make(chan error, 1)
	go func() {
		_, err := h.Call(ctx, "echo", []byte("lost in transit"))
		callErr <- err
	}()
	select {
	case <-p.Held(): // the call's bytes reached the stalled proxy
	case <-ctx.Done():
		t.Fatal("the call never reached the proxy")
	}
	p.ResetAll()
	var err error
	select {
	case err = <-callErr:
	case <-ctx.Done():
		t.Fatal("the pending call did not fail after the reset")
	}
	if !errors.Is(err, syscall.ECONNRESET) || !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("pending call: %v, want the connection reset as its error", err)
	}
	lost := r.rec.next(up+1, "session loss", to(messages.WaitingToRetry, ""))
	if ev := r.rec.events(lost)[0]; ev.From != messages.Connected || ev.Reason != string(actors.ReasonReset) {
		t.Errorf("session loss: %s -> %s reason %q", ev.From, ev.To, ev.Reason)
	}
	back := r.rec.reconnectedWithin(lost+1, 1)
	checkSequence(t, r.rec.events(0)[:back+1], r.bo, actors.ReasonReset)
	v, err := h.Call(ctx, "echo", []byte("after"))
	if err != nil || string(v.([]byte)) != "after" {
		t.Errorf("call after reconnect: %v, %v", v, err)
	}
}

// impostor is a man in the middle on 127.0.0.1: it answers any Foolscap
// upgrade request and completes TLS with its own certificate, whatever
// TubID the client asked for. It counts the TLS handshakes that finished.
type impostor struct {
	ln         net.Listener
	wg         sync.WaitGroup
	mu         sync.Mutex
	handshakes int
	conns      map[net.Conn]bool
}

func startImpostor(t *testing.T) *impostor {
	t.Helper()
	id, err := tubtls.NewEphemeral()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &impostor{ln: ln, conns: map[net.Conn]bool{}}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			m.mu.Lock()
			m.conns[c] = true
			m.mu.Unlock()
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for { // the plaintext GET block ends with an empty line
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						break
					}
				}
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: TLS/1.0, PB/1.0\r\nConnection: Upgrade\r\n\r\n")
				tc := tls.Server(c, id.ServerConfig())
				if tc.Handshake() == nil {
					m.mu.Lock()
					m.handshakes++
					m.mu.Unlock()
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		m.mu.Lock()
		for c := range m.conns {
			c.Close()
		}
		m.mu.Unlock()
		m.wg.Wait()
	})
	return m
}

func (m *impostor) Addr() string { return m.ln.Addr().String() }

// TestFaultTubIDMismatch: the FURL's address leads to a man in the middle
// that completes TLS with its own certificate. Every attempt ends in
// WaitingToRetry with "tubid_mismatch", waiting the backoff's cap because
// the failure is permanent, and the server is never Connected. When the
// interception ends, TryNow connects at once.
func TestFaultTubIDMismatch(t *testing.T) {
	noLeaks(t)
	g := startGrid(t, 1)
	want := g.Servers[0]
	mitm := startImpostor(t)
	p := proxy(t, mitm.Addr())
	r := newRow(t, "", tubfarm.Options{})
	r.serve(g.Servers, map[int][]string{0: {p.Addr()}})
	first := r.rec.next(0, "mismatch", to(messages.WaitingToRetry, actors.ReasonTubIDMismatch))
	second := r.rec.next(first+1, "second mismatch", to(messages.WaitingToRetry, actors.ReasonTubIDMismatch))
	evs := r.rec.events(0)[:second+1]
	checkSequence(t, evs, r.bo, actors.ReasonTubIDMismatch)
	for _, ev := range evs {
		if ev.To == messages.Connected {
			t.Fatalf("connected to an impostor:\n%s", formatEvents(evs))
		}
		if ev.To == messages.WaitingToRetry && ev.Delay < time.Duration(float64(r.bo.MaxDelay)*(1-r.bo.Jitter)) {
			t.Errorf("mismatch retried after %v, want the backoff cap (permanent failure)", ev.Delay)
		}
	}
	var mm *tubtls.MismatchError
	if err := r.rec.events(first)[0].Err; !errors.As(err, &mm) {
		t.Errorf("mismatch error %v (%T), want a *tubtls.MismatchError", err, err)
	}
	h := mustServer(t, r.b, want.ID)
	if st := h.Status(); st.Connected || st.LastFailureReason != actors.ReasonTubIDMismatch {
		t.Errorf("status under interception: connected=%v reason=%q", st.Connected, st.LastFailureReason)
	}
	mitm.mu.Lock()
	n := mitm.handshakes
	mitm.mu.Unlock()
	if n != 0 {
		t.Errorf("the client completed %d TLS handshakes with the impostor", n)
	}

	p.SetTarget(want.Addr())
	mark := r.rec.mark()
	if err := h.TryNow(); err != nil {
		t.Fatal(err)
	}
	r.rec.reconnectedWithin(mark, 2)
}

// TestFaultWrongTub: the FURL's address now hosts a different Tub (the
// server was replaced on its port), which refuses the upgrade for the
// unknown TubID. Attempts fail with the peer's message and keep retrying.
func TestFaultWrongTub(t *testing.T) {
	noLeaks(t)
	g := startGrid(t, 2)
	p := proxy(t, g.Servers[1].Addr())
	r := newRow(t, "", tubfarm.Options{})
	r.serve(g.Servers[:1], map[int][]string{0: {p.Addr()}})
	first := r.rec.next(0, "refusal", to(messages.WaitingToRetry, ""))
	if err := r.rec.events(first)[0].Err; err == nil || !strings.Contains(err.Error(), "unknown TubID "+g.Servers[0].Tub.TubID()) {
		t.Errorf("error %v, want the peer's unknown TubID message", err)
	}
	p.SetTarget(g.Servers[0].Addr())
	back := r.rec.reconnectedWithin(first+1, 2)
	checkSequence(t, r.rec.events(0)[:back+1], r.bo, actors.ReasonOther)
}

// TestFaultDuplicateConnection: with one identity per server
// (actors.PerServer), the client's side of a connection is reset while the
// server keeps its side open (a half-open connection). The reconnection
// presents the same TubID and incarnation; by Foolscap's duplicate rules
// (docs/foolscap-protocol.md §3.5) it must replace the stale connection, not be
// refused as a duplicate — whichever side is master.
func TestFaultDuplicateConnection(t *testing.T) {
	for _, serverMaster := range []bool{true, false} {
		name := map[bool]string{true: "server master", false: "client master"}[serverMaster]
		t.Run(name, func(t *testing.T) {
			noLeaks(t)
			g := startGrid(t, 1)
			srv := g.Servers[0]
			serverTub := srv.Tub.TubID()
			// The TubID that compares greater is the master.
			source := func() (*tubtls.Identity, error) {
				for {
					id, err := tubtls.NewEphemeral()
					if err != nil || (id.TubID < serverTub) == serverMaster {
						return id, err
					}
				}
			}
			p := proxy(t, srv.Addr())
			r := newRow(t, "", tubfarm.Options{
				Identity:  actors.PerServer,
				TestHooks: &tubfarm.TestHooks{ActorOptions: []actors.Option{actors.WithIdentitySource(source)}},
			})
			r.serve(g.Servers, map[int][]string{0: {p.Addr()}})
			up := r.rec.next(0, "connection", to(messages.Connected, ""))

			p.ResetClients()
			lost := r.rec.next(up+1, "session loss", to(messages.WaitingToRetry, ""))
			back := r.rec.reconnectedWithin(lost+1, 1)
			checkSequence(t, r.rec.events(0)[:back+1], r.bo, actors.ReasonReset)
			clients := seen(t, srv, 2)
			if clients[0] != clients[1] {
				t.Errorf("server saw clients %v, want the same TubID twice", clients)
			}
			h := mustServer(t, r.b, srv.ID)
			if _, err := h.Call(testCtx(t), "get_version"); err != nil {
				t.Errorf("call on the replacing connection: %v", err)
			}
		})
	}
}

// torCfg is a client that reaches every tcp hint through the SOCKS port.
func torCfg(socksAddr string) string {
	return "[node]\nnickname = faults\nreveal-IP-address = false\ntub.port = disabled\ntub.location = disabled\n" +
		"[connections]\ntcp = tor\n[tor]\nsocks.port = tcp:" + socksAddr + "\n"
}

// anyCredentials accepts every SOCKS username and password, as Tor does
// (it uses them only to isolate circuits).
type anyCredentials struct{}

func (anyCredentials) Valid(user, password string) bool { return true }

// loopbackResolver resolves every name to 127.0.0.1, so that the SOCKS
// server can reach grid servers named by host name (Tor refuses to carry
// loopback IP literals, as Foolscap's tor handler does).
type loopbackResolver struct{}

func (loopbackResolver) Resolve(ctx context.Context, name string) (context.Context, net.IP, error) {
	return ctx, net.IPv4(127, 0, 0, 1), nil
}

// byName returns s's address with its host replaced by a name that only
// the SOCKS server resolves.
func byName(t *testing.T, s *grid.Server) string {
	_, port, err := net.SplitHostPort(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return "storage.tubfarm.test:" + port
}

// startSOCKS runs an in-process SOCKS5 server (armon/go-socks5) on
// 127.0.0.1 port 0 until the test ends.
func startSOCKS(t *testing.T) string {
	t.Helper()
	srv, err := socks5.New(&socks5.Config{
		AuthMethods: []socks5.Authenticator{socks5.NoAuthAuthenticator{}, socks5.UserPassAuthenticator{Credentials: anyCredentials{}}},
		Resolver:    loopbackResolver{},
		Logger:      log.New(io.Discard, "", 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// TestFaultSOCKSDownThenUp: tahoe.cfg sends tcp hints through Tor's SOCKS
// port, and nothing listens there at first. Attempts fail with "refused",
// naming the SOCKS port;
// when the proxy comes up on the same port the server connects through
// it; when the proxy drops the connection, the broker reconnects through
// the proxy again.
func TestFaultSOCKSDownThenUp(t *testing.T) {
	noLeaks(t)
	g := startGrid(t, 1)
	socksAddr := startSOCKS(t)
	// The Tor SOCKS port is a faultnet proxy in front of go-socks5, so
	// that it can go down and come back on the same port.
	front := proxy(t, socksAddr)
	port := front.Addr()
	front.Close()
	r := newRow(t, torCfg(port), tubfarm.Options{})
	r.serve(g.Servers, map[int][]string{0: {byName(t, g.Servers[0])}})
	first := r.rec.next(0, "proxy failure", to(messages.WaitingToRetry, ""))
	second := r.rec.next(first+1, "second proxy failure", to(messages.WaitingToRetry, ""))
	for _, ev := range r.rec.events(first)[:second-first+1] {
		if ev.To == messages.WaitingToRetry && (ev.Reason != string(actors.ReasonRefused) || !strings.Contains(ev.Err.Error(), "socks connect tcp "+port)) {
			t.Errorf("SOCKS port closed: reason %q (%v), want refused by the SOCKS port %s", ev.Reason, ev.Err, port)
		}
	}

	front, err := faultnet.ListenAt(port, socksAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { front.Close() })
	up := r.rec.reconnectedWithin(second+1, 2)
	if ev := r.rec.events(up)[0]; ev.Handler != "tor" {
		t.Errorf("connected via handler %q, want tor", ev.Handler)
	}

	front.ResetAll()
	lost := r.rec.next(up+1, "session loss", to(messages.WaitingToRetry, ""))
	back := r.rec.reconnectedWithin(lost+1, 2)
	checkSequence(t, r.rec.events(0)[:back+1], r.bo, actors.ReasonRefused, actors.ReasonReset)
	if n := front.Accepted(); n < 2 {
		t.Errorf("the SOCKS port accepted %d connections, want at least 2", n)
	}
}

// TestFaultSOCKSStalls: the SOCKS proxy accepts connections and never
// answers. Attempts end at ConnectTimeout with "timeout"; when the proxy
// recovers, the server connects through it.
func TestFaultSOCKSStalls(t *testing.T) {
	noLeaks(t)
	g := startGrid(t, 1)
	front := proxy(t, startSOCKS(t))
	front.Set(faultnet.Fault{Mode: faultnet.Blackhole})
	r := newRow(t, torCfg(front.Addr()), tubfarm.Options{})
	r.serve(g.Servers, map[int][]string{0: {byName(t, g.Servers[0])}})
	first := r.rec.next(0, "timeout", to(messages.WaitingToRetry, actors.ReasonTimeout))
	front.Set(faultnet.Fault{Mode: faultnet.Pass})
	back := r.rec.reconnectedWithin(first+1, 2)
	checkSequence(t, r.rec.events(0)[:back+1], r.bo, actors.ReasonTimeout)
	if ev := r.rec.events(back)[0]; ev.Handler != "tor" {
		t.Errorf("connected via handler %q, want tor", ev.Handler)
	}
}

// TestFaultClockJump: the wall clock jumps forward by an hour (a suspended
// laptop, an NTP step). Backoff timers run on the broker's clock
// (actors.WithClock): a jump fires the one pending retry once — one
// attempt, not a burst of the attempts the hour would have held — and a
// connection that was up across the jump counts as stable, so its loss
// is retried after BaseDelay, not a grown delay.
func TestFaultClockJump(t *testing.T) {
	noLeaks(t)
	clock := &jumpClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	t.Cleanup(clock.wg.Wait)
	bo := faultBackoff
	bo.StableAfter = time.Minute
	g := startGrid(t, 1)
	srv := g.Servers[0]
	r := newRow(t, "", tubfarm.Options{
		Backoff:   bo,
		TestHooks: &tubfarm.TestHooks{ActorOptions: []actors.Option{actors.WithClock(clock), actors.WithRand(func() float64 { return 0.5 })}},
	})
	r.serve(g.Servers, nil)
	up := r.rec.next(0, "connection", to(messages.Connected, ""))

	// The retry waits on the stopped clock. The connection was up for
	// less than StableAfter, so this failure stays counted.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	lost := r.rec.next(up+1, "session loss", to(messages.WaitingToRetry, actors.ReasonReset))
	if d := r.rec.events(lost)[0].Delay; d != bo.BaseDelay {
		t.Errorf("first loss: delay %v, want BaseDelay %v", d, bo.BaseDelay)
	}
	if err := srv.Restart(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if n := clock.pending(); n != 1 {
		t.Fatalf("%d timers pending on the clock, want the one retry", n)
	}
	jumped := r.rec.mark()
	clock.Jump(time.Hour)
	back := r.rec.reconnectedWithin(jumped, 1)
	ev := r.rec.events(back)[0]
	if !ev.At.Equal(clock.Now()) {
		t.Errorf("reconnection stamped %v, want the jumped clock %v", ev.At, clock.Now())
	}

	// Up across another jump beyond StableAfter: the loss starts over.
	clock.Jump(time.Hour)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	lost = r.rec.next(back+1, "second session loss", to(messages.WaitingToRetry, actors.ReasonReset))
	if d := r.rec.events(lost)[0].Delay; d != bo.BaseDelay {
		t.Errorf("loss of a connection up for an hour: delay %v, want BaseDelay %v (without the jump: %v)", d, bo.BaseDelay, 2*bo.BaseDelay)
	}
	if err := srv.Restart(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	mark := r.rec.mark()
	clock.Jump(bo.BaseDelay)
	final := r.rec.reconnectedWithin(mark, 1)
	checkSequence(t, r.rec.events(0)[:final+1], bo, actors.ReasonReset)
	st := mustServer(t, r.b, srv.ID).Status()
	if !st.Connected || !st.LastConnected.Equal(clock.Now()) {
		t.Errorf("final status: connected=%v last connected %v, clock %v", st.Connected, st.LastConnected, clock.Now())
	}
}
