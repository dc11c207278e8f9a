package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/messages"
)

// TestMain fails the run if any goroutine outlives the tests. goleak.Find
// already retries for about a second; it is asked a few times so that a
// heavily loaded machine (2 cores, -race, other test binaries) does not turn
// a mailbox goroutine that is still returning into a false leak. A real leak
// never ends and still fails.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		var err error
		for range 5 {
			if err = goleak.Find(); err == nil {
				break
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "goleak: goroutines outlived the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// waitTimeout bounds every wait for an event in these tests (real time). It
// is a failure deadline, not a way of waiting: tests wait on events.
const waitTimeout = 20 * time.Second

// fakeClock is a manual Clock: time moves only in Advance, which runs due
// timer callbacks synchronously, earliest first.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	when    time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, when: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.stopped {
		return false
	}
	t.stopped = true
	return true
}

// Advance moves the clock forward by d, firing every timer that falls due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].when.Before(c.timers[j].when) })
		var due *fakeTimer
		for len(c.timers) > 0 {
			t := c.timers[0]
			if t.stopped {
				c.timers = c.timers[1:]
				continue
			}
			if !t.when.After(end) {
				due = t
				c.timers = c.timers[1:]
				t.stopped = true
				if t.when.After(c.now) {
					c.now = t.when
				}
			}
			break
		}
		if due == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		due.f()
	}
}

// memSession is an in-memory Session.
type memSession struct {
	id     string
	info   SessionInfo
	done   chan struct{}
	once   sync.Once
	err    atomic.Pointer[error]
	closed atomic.Bool
	recv   time.Time
}

func newMemSession(id string, info SessionInfo) *memSession {
	return &memSession{id: id, info: info, done: make(chan struct{}), recv: time.Unix(1700000000, 0)}
}

func (s *memSession) Call(ctx context.Context, method string, args []any, kwargs map[string]any) (any, error) {
	select {
	case <-s.done:
		return nil, errors.New("memsession: closed")
	default:
	}
	switch method {
	case "get_version":
		return map[string]any{"application-version": []byte("tahoe-lafs/1.20.0")}, nil
	case "echo":
		return args, nil
	}
	return nil, errors.New("memsession: no such method " + method)
}

func (s *memSession) end(err error) {
	s.once.Do(func() {
		s.err.Store(&err)
		close(s.done)
	})
}

// drop simulates the server going away.
func (s *memSession) drop() { s.end(io.EOF) }

func (s *memSession) Done() <-chan struct{} { return s.done }

func (s *memSession) Err() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *memSession) Close() error {
	s.closed.Store(true)
	s.end(net.ErrClosed)
	return nil
}

func (s *memSession) LastReceived() time.Time { return s.recv }
func (s *memSession) Info() SessionInfo       { return s.info }

// memConnector connects in memory and records what it was asked.
type memConnector struct {
	mu       sync.Mutex
	tubIDs   map[string][]string
	sessions map[string][]*memSession

	// fail, if set, may fail the nth (0-based) attempt for a server.
	fail func(id string, n int) error
}

func newMemConnector() *memConnector {
	return &memConnector{tubIDs: make(map[string][]string), sessions: make(map[string][]*memSession)}
}

var testTimings = PhaseTimings{
	Dial: 1 * time.Millisecond, Upgrade: 2 * time.Millisecond, TLS: 3 * time.Millisecond,
	Negotiation: 4 * time.Millisecond, GetReference: 5 * time.Millisecond,
}

// Connect presents id's certificate at once, as if every attempt reached
// TLS, and records its TubID.
func (c *memConnector) Connect(ctx context.Context, srv messages.ServerSpec, id *Identity, report func(hint, status string)) (Session, error) {
	cert, err := id.Certificate()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	n := len(c.tubIDs[srv.ID])
	c.tubIDs[srv.ID] = append(c.tubIDs[srv.ID], cert.TubID)
	c.mu.Unlock()
	hint := "tcp:" + srv.ID + ".example:3456"
	report(hint, "connecting")
	if c.fail != nil {
		if err := c.fail(srv.ID, n); err != nil {
			report(hint, "failed to connect: "+err.Error())
			return nil, err
		}
	}
	report(hint, "successful")
	s := newMemSession(srv.ID, SessionInfo{Hint: hint, Handler: "tcp", TLSVersion: 0x0304, Timings: testTimings})
	c.mu.Lock()
	c.sessions[srv.ID] = append(c.sessions[srv.ID], s)
	c.mu.Unlock()
	return s, nil
}

func (c *memConnector) ids(id string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.tubIDs[id])
}

func (c *memConnector) sess(id string) []*memSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sessions[id])
}

// newTestBroker makes a broker with a fake clock, nominal (jitter-free)
// backoff draws and a discarded log, closed at the end of the test.
func newTestBroker(t *testing.T, cfg Config, opts ...Option) (*Broker, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	all := append([]Option{
		WithClock(clk),
		WithRand(func() float64 { return 0.5 }),
		WithLogger(slog.New(slog.DiscardHandler)),
	}, opts...)
	b, err := New(cfg, all...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, clk
}

// recorder reads a subscription on the test goroutine and keeps every event
// per server.
type recorder struct {
	t      *testing.T
	ch     <-chan messages.StateChanged
	cancel func()
	events map[string][]messages.StateChanged
	totals map[State]int // events by To, all servers
}

func newRecorder(t *testing.T, b *Broker) *recorder {
	ch, cancel := b.Subscribe()
	r := &recorder{t: t, ch: ch, cancel: cancel, events: make(map[string][]messages.StateChanged), totals: make(map[State]int)}
	t.Cleanup(cancel)
	return r
}

// next returns the next event, failing the test after waitTimeout.
func (r *recorder) next() messages.StateChanged {
	r.t.Helper()
	select {
	case ev, ok := <-r.ch:
		if !ok {
			r.t.Fatal("subscription closed")
		}
		r.events[ev.ServerID] = append(r.events[ev.ServerID], ev)
		r.totals[ev.To]++
		return ev
	case <-time.After(waitTimeout):
		r.t.Fatalf("no event within %v; seen so far: %v", waitTimeout, r.summary())
	}
	panic("unreachable")
}

// until reads events until cond holds.
func (r *recorder) until(cond func() bool) {
	r.t.Helper()
	for !cond() {
		r.next()
	}
}

// nextFor returns the next event for server id, recording the others.
func (r *recorder) nextFor(id string) messages.StateChanged {
	r.t.Helper()
	for {
		if ev := r.next(); ev.ServerID == id {
			return ev
		}
	}
}

// count returns how many events of server id went to state to.
func (r *recorder) count(id string, to State) int {
	n := 0
	for _, ev := range r.events[id] {
		if ev.To == to {
			n++
		}
	}
	return n
}

func (r *recorder) states(id string) []State {
	var out []State
	for _, ev := range r.events[id] {
		out = append(out, ev.To)
	}
	return out
}

func (r *recorder) summary() map[string][]State {
	out := make(map[string][]State)
	for id := range r.events {
		out[id] = r.states(id)
	}
	return out
}

// spec is the spec of server id; key is its FURL's name, so that a new key
// is a new connection.
func spec(id, key string) messages.ServerSpec {
	furl := hints.FURL{TubID: "x", Hints: []string{"tcp:" + id + ":1"}, Name: key}
	return messages.ServerSpec{ID: id, Nickname: "nick-" + id, FURL: furl, Source: "test"}
}

// tcpSpec is the spec of server id whose one hint is the loopback address
// addr, for tcpConnector.
func tcpSpec(id, addr string) messages.ServerSpec {
	return messages.ServerSpec{ID: id, FURL: hints.FURL{TubID: "x", Hints: []string{"tcp:" + addr}, Name: "s"}}
}
