package foolscap

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// rawDial connects to a Listener with a plain TCP socket bounded by the
// test context.
func rawDial(t *testing.T, l *Listener) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { c.Close() })
	return c
}

func TestListenerPlaintextErrors(t *testing.T) {
	tub := NewTub(newID(t))
	l, _ := testListener(t, ListenConfig{}, tub)
	tests := []struct {
		name, request, response string
	}{
		{"browser", "GET / HTTP/1.0\r\n\r\n", "HTTP/1.1 500 Internal Server Error: internal server error, see logs\r\n\r\n"},
		{"no tubid", "GET /id/ HTTP/1.1\r\n\r\n", "HTTP/1.1 500 Internal Server Error: secure Tubs require encryption\r\n\r\n"},
		{"unknown tubid", "GET /id/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: x\r\n\r\n", captured500},
		{"header too long", strings.Repeat("x", MaxBlockSize+1), "HTTP/1.1 500 Internal Server Error: internal server error, see logs\r\n\r\n"},
		{"known tubid", string(upgradeRequest(tub.TubID(), "127.0.0.1")), capturedResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := rawDial(t, l)
			if _, err := c.Write([]byte(tt.request)); err != nil {
				t.Fatal(err)
			}
			got, err := readBlock(c, MaxBlockSize)
			if err != nil {
				t.Fatal(err)
			}
			if string(got)+"\r\n\r\n" != tt.response {
				t.Errorf("response %q, want %q", got, tt.response)
			}
		})
	}
}

// tlsClientTo upgrades a raw connection to the tub and runs TLS with cfg.
func tlsClientTo(t *testing.T, l *Listener, tub *Tub, cfg *tls.Config) *tls.Conn {
	t.Helper()
	c := rawDial(t, l)
	c.Write(upgradeRequest(tub.TubID(), "127.0.0.1"))
	if resp, err := readBlock(c, MaxBlockSize); err != nil || parseUpgradeResponse(resp) != nil {
		t.Fatalf("upgrade: %q %v", resp, err)
	}
	tc := tls.Client(c, cfg)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return tc
}

// TestListenerHelloErrors sends bad client hellos and checks the error
// block and the error reported by OnError.
func TestListenerHelloErrors(t *testing.T) {
	clientID, serverID := idPair(t, true)
	other := newID(t)
	tub := NewTub(serverID)
	errs := make(chan error, 1)
	l, _ := testListener(t, ListenConfig{OnError: func(_ net.Addr, err error) { errs <- err }}, tub)
	goodHello := func(tubID string) string { return string(helloBlock(tubID, NewIncarnation(), "none 0")) }
	tests := []struct {
		name      string
		cert      bool
		hello     string
		wantBlock string // error text in the server's error block
		wantErr   error  // errors.Is on the OnError error
		wantMsg   string
	}{
		{"no client certificate", false, goodHello(clientID.TubID), msgInternalError, ErrNoPeerCertificate, ""},
		{"my-tub-id does not match certificate", true, goodHello(other.TubID), msgInternalError, ErrWrongTubID, ""},
		{"banana version", true, "banana-negotiation-range: 1 2\r\nmy-tub-id: " + clientID.TubID + "\r\n\r\n", "I can't handle banana version 2", nil, "I can't handle banana version 2"},
		{"no colon", true, "hello\r\n\r\n", msgInternalError, nil, "no colon"},
		{"claims our tubid", true, goodHello(serverID.TubID), msgInternalError, ErrWrongTubID, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := clientID.ClientConfig(serverID.TubID)
			if !tt.cert {
				cfg.Certificates = nil
			}
			tc := tlsClientTo(t, l, tub, cfg)
			if _, err := tc.Write([]byte(tt.hello)); err != nil {
				t.Fatal(err)
			}
			if _, err := readBlock(tc, MaxBlockSize); err != nil { // the server's hello
				t.Fatal(err)
			}
			blk, err := readBlock(tc, MaxBlockSize)
			if err != nil {
				t.Fatal(err)
			}
			m, err := parseBlock(blk)
			if err != nil || m[keyError] != tt.wantBlock || m[keyDecisionVersion] != "1" {
				t.Errorf("error block %q, want error %q", blk, tt.wantBlock)
			}
			got := recv(t, errs)
			var ne *NegotiationError
			if !errors.As(got, &ne) || ne.Phase != PhaseHello {
				t.Errorf("OnError got %v, want a hello-phase *NegotiationError", got)
			}
			if tt.wantErr != nil && !errors.Is(got, tt.wantErr) {
				t.Errorf("OnError got %v, want errors.Is %v", got, tt.wantErr)
			}
			if !strings.Contains(got.Error(), tt.wantMsg) {
				t.Errorf("OnError got %v, want %q", got, tt.wantMsg)
			}
			if _, err := tc.Read(make([]byte, 1)); err == nil {
				t.Error("server did not close after its error block")
			}
		})
	}
}

// TestListenerSlaveRejectsBadDecision: a slave that cannot accept the
// master's decision answers with a Banana ERROR token.
func TestListenerSlaveRejectsBadDecision(t *testing.T) {
	clientID, serverID := idPair(t, true)
	tub := NewTub(serverID)
	errs := make(chan error, 1)
	l, _ := testListener(t, ListenConfig{OnError: func(_ net.Addr, err error) { errs <- err }}, tub)
	tc := tlsClientTo(t, l, tub, clientID.ClientConfig(serverID.TubID))
	tc.Write(helloBlock(clientID.TubID, NewIncarnation(), "none 0"))
	readBlock(tc, MaxBlockSize)
	tc.Write([]byte("banana-decision-version: 3\r\ninitial-vocab-table-index: 1 beef\r\n\r\n"))
	got, _ := io.ReadAll(tc)
	want := appendErrorToken(nil, "Our hash for vocab-table-index 1 (bb33) does not match your hash (beef)")
	if string(got) != string(want) {
		t.Errorf("server sent %q, want ERROR token %q", got, want)
	}
	if err := recv(t, errs); !strings.Contains(err.Error(), "does not match your hash") {
		t.Errorf("OnError got %v", err)
	}
}

func TestListenerServerTimeout(t *testing.T) {
	tub := NewTub(newID(t))
	errs := make(chan error, 1)
	l, _ := testListener(t, ListenConfig{ServerTimeout: 100 * time.Millisecond, OnError: func(_ net.Addr, err error) { errs <- err }}, tub)
	c := rawDial(t, l)
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read %d, %v; want EOF when the server gives up", n, err)
	}
	var ne *NegotiationError
	if err := recv(t, errs); !errors.As(err, &ne) || !ne.Timeout() || ne.Phase != PhaseUpgrade {
		t.Fatalf("OnError got %v, want an upgrade-phase timeout", err)
	}
}

// TestListenerSeveralTubs dispatches two Tubs on one port by TubID, then
// removes one.
func TestListenerSeveralTubs(t *testing.T) {
	client := newID(t)
	t1, t2 := NewTub(newID(t)), NewTub(newID(t))
	l, ch := testListener(t, ListenConfig{}, t1, t2)
	for _, tub := range []*Tub{t1, t2} {
		cfg := DialConfig{Identity: client, TubID: tub.TubID(), Targets: []Target{tcpTarget(l.Addr().String())}}
		nc, _, _, err := dialNegotiated(testContext(t), &cfg)
		if err != nil {
			t.Fatal(err)
		}
		srv := recv(t, ch)
		if srv.cc.LocalTubID != tub.TubID() {
			t.Errorf("served by %s, want %s", srv.cc.LocalTubID, tub.TubID())
		}
		close(srv.done)
		nc.Close()
	}
	l.RemoveTub(t2.TubID())
	cfg := DialConfig{Identity: client, TubID: t2.TubID(), Targets: []Target{tcpTarget(l.Addr().String())}}
	_, _, _, err := dialNegotiated(testContext(t), &cfg)
	var re *RemoteNegotiationError
	if !errors.As(err, &re) || re.Msg != "unknown TubID "+t2.TubID() {
		t.Fatalf("err = %v, want unknown TubID", err)
	}
}

// TestListenerClose closes a listener with a connection mid-negotiation and
// one established; both are closed and Close returns (goroutines joined).
func TestListenerClose(t *testing.T) {
	clientID, serverID := idPair(t, true)
	tub := NewTub(serverID)
	l, ch := testListener(t, ListenConfig{}, tub)
	cfg := DialConfig{Identity: clientID, TubID: serverID.TubID, Targets: []Target{tcpTarget(l.Addr().String())}}
	established, _, _, err := dialNegotiated(testContext(t), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer established.Close()
	recv(t, ch) // held until the listener closes
	half := rawDial(t, l)
	half.Write([]byte("GET /id/"))

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for name, c := range map[string]net.Conn{"negotiating": half, "established": established} {
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("%s connection still open", name)
		}
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Error("still accepting after Close")
	}
}

func TestListenError(t *testing.T) {
	if _, err := Listen(context.Background(), "tcp", "127.0.0.1:-1", ListenConfig{}); err == nil || !strings.HasPrefix(err.Error(), "foolscap: listen") {
		t.Fatalf("err = %v", err)
	}
}

// TestListenerHalfOpenFlood opens thousands of connections from 127.0.0.2
// that never send a byte, then a real client from 127.0.0.1 connects,
// gets a reference and calls it. The flood holds at most the per-host
// limit of negotiations; the rest are closed unread; the client succeeds.
func TestListenerHalfOpenFlood(t *testing.T) {
	const flood = 3000
	goroutines := runtime.NumGoroutine()
	_, serverID := idPair(t, false)
	tub := NewTub(serverID)
	tub.SetLocation("tcp:127.0.0.1:1")
	obj := &testObj{iname: "RIEcho", methods: map[string]func(context.Context, []any, map[string]any) (any, error){
		"echo": func(_ context.Context, args []any, _ map[string]any) (any, error) { return args[0], nil },
	}}
	if _, err := tub.Register(obj, "echo"); err != nil {
		t.Fatal(err)
	}
	l, err := Listen(testContext(t), "tcp", "127.0.0.1:0", ListenConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.AddTub(tub)

	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range flood {
		c, err := d.DialContext(testContext(t), "tcp", l.Addr().String())
		if err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}

	clientID, _ := idPair(t, false)
	ctx := testContext(t)
	c, _, err := Dial(ctx, DialConfig{Identity: clientID, TubID: tub.TubID(),
		Targets: []Target{tcpTarget(l.Addr().String())}, ConnConfig: ConnConfig{KeepaliveTimeout: -1}})
	if err != nil {
		t.Fatalf("the real client could not connect during the flood: %v", err)
	}
	defer c.Close()
	if host, _, _ := net.SplitHostPort(c.LocalAddr().String()); host != "127.0.0.1" {
		t.Fatalf("the client connected from %s, want 127.0.0.1", host)
	}
	ref, err := c.GetReference(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	v, err := ref.Call(ctx, "echo", []any{[]byte("through the flood")}, nil)
	if err != nil || string(v.([]byte)) != "through the flood" {
		t.Fatalf("call = %v, %v", v, err)
	}

	// The listener accepts in order, so every flood connection was
	// accepted (and counted or refused) before the client's.
	st := l.Stats()
	t.Logf("after %d half-open connections: %+v, %d more goroutines", flood, st, runtime.NumGoroutine()-goroutines)
	if st.PeakPerHost > DefaultMaxNegotiationsPerHost || st.PeakNegotiating > DefaultMaxNegotiationsPerHost+1 {
		t.Errorf("peak negotiations %d (per host %d), limits %d per host", st.PeakNegotiating, st.PeakPerHost, DefaultMaxNegotiationsPerHost)
	}
	if want := uint64(flood - DefaultMaxNegotiationsPerHost); st.Refused != want {
		t.Errorf("refused %d connections, want %d", st.Refused, want)
	}
	if st.Negotiating != DefaultMaxNegotiationsPerHost {
		t.Errorf("%d negotiating now, want the %d flood connections still waiting", st.Negotiating, DefaultMaxNegotiationsPerHost)
	}
}

// TestListenerNegotiationLimitTotal: the total limit holds across hosts.
func TestListenerNegotiationLimitTotal(t *testing.T) {
	l, err := Listen(testContext(t), "tcp", "127.0.0.1:0", ListenConfig{MaxNegotiations: 5, MaxNegotiationsPerHost: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 20 {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%4))}}
		c, err := d.DialContext(testContext(t), "tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// The last connection is refused once it is accepted: wait for its EOF.
	last := conns[len(conns)-1]
	if _, err := last.Read(make([]byte, 1)); err == nil {
		t.Fatal("the connection over the limit was served")
	}
	if st := l.Stats(); st.PeakNegotiating != 5 || st.Refused != 15 {
		t.Errorf("stats %+v, want peak 5 and 15 refused", st)
	}
}
