package actors

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm/messages"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// A scripted TCP server on 127.0.0.1 speaks a one-byte "protocol": after
// accepting, it sends '+' (the handshake succeeded) or '!' (the server's
// TubID is not the one the FURL names), then keeps or closes the
// connection.
type mode int

const (
	modeHold      mode = iota // '+' then keep the connection until the client closes it
	modeDrop                  // '+' then close at once
	modeWrongTub              // '!' then close
	modeHoldUntil             // '+' then keep the connection until release is closed
)

type scriptedServer struct {
	ln      net.Listener
	script  []mode // by connection index; the last entry repeats
	release chan struct{}
	n       atomic.Int32
	wg      sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
}

func newScriptedServer(t *testing.T, script ...mode) *scriptedServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptedServer{ln: ln, script: script, release: make(chan struct{})}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.close)
	return s
}

func (s *scriptedServer) addr() string { return s.ln.Addr().String() }

func (s *scriptedServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		i := int(s.n.Add(1)) - 1
		m := s.script[min(i, len(s.script)-1)]
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			switch m {
			case modeWrongTub:
				_, _ = c.Write([]byte("!"))
				return
			case modeDrop:
				_, _ = c.Write([]byte("+"))
				return
			case modeHoldUntil:
				_, _ = c.Write([]byte("+"))
				done := make(chan struct{})
				go func() { _, _ = io.Copy(io.Discard, c); close(done) }()
				select {
				case <-s.release:
				case <-done:
				}
				_ = c.Close()
				<-done
				return
			}
			_, _ = c.Write([]byte("+"))
			_, _ = io.Copy(io.Discard, c)
		}()
	}
}

func (s *scriptedServer) close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// refusingAddr returns a loopback address nothing listens on.
func refusingAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// tcpConnector dials the host:port of the first hint of the spec's FURL
// (see tcpSpec) over real loopback TCP.
type tcpConnector struct {
	mu     sync.Mutex
	tubIDs []string
}

func (c *tcpConnector) Connect(ctx context.Context, srv messages.ServerSpec, id *Identity, report func(hint, status string)) (Session, error) {
	cert, err := id.Certificate()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.tubIDs = append(c.tubIDs, cert.TubID)
	c.mu.Unlock()
	hint := srv.FURL.Hints[0]
	report(hint, "connecting")
	start := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", strings.TrimPrefix(hint, "tcp:"))
	if err != nil {
		report(hint, "connection refused")
		return nil, err
	}
	dial := time.Since(start)
	report(hint, "negotiating")
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	var b [1]byte
	_, err = io.ReadFull(conn, b[:])
	stop()
	if err != nil {
		_ = conn.Close()
		report(hint, "failed to connect: "+err.Error())
		return nil, err
	}
	if b[0] == '!' {
		_ = conn.Close()
		err := &tubtls.MismatchError{Want: "aaaa", Got: "bbbb"}
		report(hint, "failed to connect: "+err.Error())
		return nil, err
	}
	report(hint, "successful")
	s := &tcpSession{conn: conn, done: make(chan struct{}),
		info: SessionInfo{Hint: hint, Handler: "tcp", Timings: PhaseTimings{Dial: dial, Negotiation: time.Since(start) - dial}}}
	go s.read()
	return s, nil
}

func (c *tcpConnector) ids() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.tubIDs)
}

// tcpSession ends when the server closes the connection.
type tcpSession struct {
	conn net.Conn
	info SessionInfo
	done chan struct{}
	err  error // set before done is closed
	last atomic.Int64
}

func (s *tcpSession) read() {
	var b [512]byte
	for {
		_, err := s.conn.Read(b[:])
		if err != nil {
			s.err = err
			close(s.done)
			return
		}
		s.last.Store(time.Now().UnixNano())
	}
}

func (s *tcpSession) Call(ctx context.Context, method string, args []any, kwargs map[string]any) (any, error) {
	if method == "get_version" {
		return map[string]any{"application-version": "tahoe-lafs/1.20.0"}, nil
	}
	return nil, errors.New("tcpsession: no such method")
}

func (s *tcpSession) Done() <-chan struct{} { return s.done }

func (s *tcpSession) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

func (s *tcpSession) Close() error {
	err := s.conn.Close()
	<-s.done
	return err
}

func (s *tcpSession) LastReceived() time.Time { return time.Unix(0, s.last.Load()) }
func (s *tcpSession) Info() SessionInfo       { return s.info }

// step is one expected transition: the state entered and, for
// WaitingToRetry, the delay and reason.
type step struct {
	to     State
	delay  time.Duration
	reason Reason
}

// TestStateSequences drives one server against scripted loopback servers
// and asserts the exact sequence of states. Every WaitingToRetry is ended by
// advancing the fake clock by exactly the announced delay.
func TestStateSequences(t *testing.T) {
	max := DefaultBackoff.MaxDelay
	tests := []struct {
		name   string
		script []mode // nil: connect to a port nothing listens on
		want   []step
	}{
		{
			name:   "accepts",
			script: []mode{modeHold},
			want:   []step{{to: Connecting}, {to: Connected}},
		},
		{
			name:   "refuses/retries with growing delays",
			script: nil,
			want: []step{
				{to: Connecting}, {to: WaitingToRetry, delay: 1 * time.Second, reason: ReasonRefused},
				{to: Connecting}, {to: WaitingToRetry, delay: 2 * time.Second, reason: ReasonRefused},
				{to: Connecting}, {to: WaitingToRetry, delay: 4 * time.Second, reason: ReasonRefused},
				{to: Connecting}, {to: WaitingToRetry, delay: 8 * time.Second, reason: ReasonRefused},
			},
		},
		{
			name:   "drops after connect/reconnects",
			script: []mode{modeDrop, modeDrop, modeHold},
			want: []step{
				{to: Connecting}, {to: Connected}, {to: WaitingToRetry, delay: 1 * time.Second, reason: ReasonReset},
				{to: Connecting}, {to: Connected}, {to: WaitingToRetry, delay: 2 * time.Second, reason: ReasonReset},
				{to: Connecting}, {to: Connected},
			},
		},
		{
			name:   "wrong tubid/never connected, retried at the cap",
			script: []mode{modeWrongTub},
			want: []step{
				{to: Connecting}, {to: WaitingToRetry, delay: max, reason: ReasonTubIDMismatch},
				{to: Connecting}, {to: WaitingToRetry, delay: max, reason: ReasonTubIDMismatch},
				{to: Connecting}, {to: WaitingToRetry, delay: max, reason: ReasonTubIDMismatch},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := refusingAddr(t)
			if tt.script != nil {
				addr = newScriptedServer(t, tt.script...).addr()
			}
			b, clk := newTestBroker(t, Config{Connector: &tcpConnector{}})
			rec := newRecorder(t, b)
			if err := b.Apply([]messages.ServerSpec{tcpSpec("srv", addr)}); err != nil {
				t.Fatal(err)
			}
			for i, w := range tt.want {
				ev := rec.nextFor("srv")
				if ev.To != w.to || ev.Delay != w.delay || Reason(ev.Reason) != w.reason {
					t.Fatalf("transition %d = %v→%v delay %v reason %q (err %v); want →%v delay %v reason %q",
						i, ev.From, ev.To, ev.Delay, ev.Reason, ev.Err, w.to, w.delay, w.reason)
				}
				if ev.Seq != uint64(i+1) {
					t.Errorf("transition %d has Seq %d", i, ev.Seq)
				}
				if ev.To == WaitingToRetry {
					clk.Advance(ev.Delay)
				}
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			// After Close, the last event is Stopped and nothing else
			// was ever reached.
			for ev := range rec.ch {
				rec.events[ev.ServerID] = append(rec.events[ev.ServerID], ev)
			}
			got := rec.states("srv")
			if got[len(got)-1] != Stopped {
				t.Errorf("states end with %v, want Stopped", got[len(got)-1])
			}
			wantConnected := slices.ContainsFunc(tt.want, func(s step) bool { return s.to == Connected })
			if gotConnected := slices.Contains(got, Connected); gotConnected != wantConnected {
				t.Errorf("states %v: Connected reached = %v, want %v", got, gotConnected, wantConnected)
			}
		})
	}
}

// TestStableConnectionResetsBackoff checks that failures are forgotten
// only once a connection has stayed up for StableAfter.
func TestStableConnectionResetsBackoff(t *testing.T) {
	srv := newScriptedServer(t, modeDrop, modeDrop, modeHoldUntil, modeHold)
	b, clk := newTestBroker(t, Config{Connector: &tcpConnector{}})
	rec := newRecorder(t, b)
	if err := b.Apply([]messages.ServerSpec{tcpSpec("srv", srv.addr())}); err != nil {
		t.Fatal(err)
	}
	var delays []time.Duration
	for len(delays) < 3 {
		ev := rec.nextFor("srv")
		switch ev.To {
		case WaitingToRetry:
			delays = append(delays, ev.Delay)
			clk.Advance(ev.Delay)
		case Connected:
			if len(delays) == 2 { // the third connection: hold it past StableAfter, then drop it
				clk.Advance(DefaultBackoff.StableAfter)
				close(srv.release)
			}
		}
	}
	want := []time.Duration{1 * time.Second, 2 * time.Second, 1 * time.Second}
	if !slices.Equal(delays, want) {
		t.Errorf("delays = %v, want %v", delays, want)
	}
}

// TestStatusWhileConnectedAndWaiting checks the Tahoe-style status fields.
func TestStatusWhileConnectedAndWaiting(t *testing.T) {
	srv := newScriptedServer(t, modeHoldUntil, modeHold)
	conn := &tcpConnector{}
	b, clk := newTestBroker(t, Config{Connector: conn})
	rec := newRecorder(t, b)
	sp := tcpSpec("srv", srv.addr())
	sp.Nickname, sp.RevealsIP = "alpha", true
	sp.Announcement = map[string]any{"my-version": "tahoe-lafs/1.19.0"}
	if st, ok := b.Server("srv"); ok {
		t.Fatalf("Server before Apply = %+v", st)
	}
	if err := b.Apply([]messages.ServerSpec{sp}); err != nil {
		t.Fatal(err)
	}
	rec.until(func() bool { return rec.count("srv", Connected) == 1 })
	st, ok := b.Server("srv")
	if !ok {
		t.Fatal("Server(srv) not found")
	}
	hint := "tcp:" + srv.addr()
	if !st.Connected || st.State != Connected {
		t.Errorf("Connected = %v, State = %v", st.Connected, st.State)
	}
	if want := "Connected to " + hint + " via tcp"; st.Summary != want {
		t.Errorf("Summary = %q, want %q", st.Summary, want)
	}
	if st.Version != "tahoe-lafs/1.20.0" {
		t.Errorf("Version = %q, want the get_version application-version", st.Version)
	}
	if want := []HintStatus{{hint, "successful"}}; !slices.Equal(st.Hints, want) {
		t.Errorf("Hints = %v, want %v", st.Hints, want)
	}
	if st.Nickname != "alpha" || !st.RevealsIP || st.Handler != "tcp" || st.WinningHint != hint {
		t.Errorf("status fields = %+v", st)
	}
	if ids := conn.ids(); st.TubID == "" || st.TubID != ids[0] {
		t.Errorf("TubID = %q, connector saw %v", st.TubID, ids)
	}
	if st.LastConnected != clk.Now() || st.Attempts != 0 {
		t.Errorf("LastConnected = %v (now %v), Attempts = %d", st.LastConnected, clk.Now(), st.Attempts)
	}

	// Drop the session: WaitingToRetry for 1 s.
	close(srv.release)
	ev := rec.nextFor("srv")
	if ev.To != WaitingToRetry {
		t.Fatalf("after drop: %v", ev.To)
	}
	clk.Advance(300 * time.Millisecond)
	st, _ = b.Server("srv")
	if st.Connected || st.Backoff != time.Second || !st.NextAttempt.Equal(ev.At.Add(time.Second)) {
		t.Errorf("waiting status = %+v", st)
	}
	if st.Summary != "Reconnecting in 0 seconds (last attempt 0s ago)" {
		t.Errorf("Summary = %q", st.Summary)
	}
	if st.LastFailureReason != ReasonReset || st.LastFailure == "" {
		t.Errorf("LastFailure = %q (%q)", st.LastFailure, st.LastFailureReason)
	}
	if st.Version != "tahoe-lafs/1.20.0" {
		t.Errorf("Version after drop = %q", st.Version)
	}
}
