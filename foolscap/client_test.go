package foolscap

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tubtls "github.com/tubfarm/tubfarm/tls"

	"github.com/tubfarm/tubfarm/internal/nettest"
)

// testTimeout bounds every network test; nothing should get near it.
const testTimeout = 20 * time.Second

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func newID(t testing.TB) *tubtls.Identity {
	t.Helper()
	id, err := tubtls.NewEphemeral()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// idPair returns a client and a server identity such that the client is
// the master (its TubID is greater) exactly when clientMaster is set.
func idPair(t testing.TB, clientMaster bool) (client, server *tubtls.Identity) {
	a, b := newID(t), newID(t)
	if (a.TubID > b.TubID) != clientMaster {
		a, b = b, a
	}
	return a, b
}

func tcpTarget(addr string) Target {
	host, _, _ := net.SplitHostPort(addr)
	return Target{Hint: "tcp:" + addr, Addr: addr, Host: host, Handler: "tcp"}
}

// Building blocks of scripted servers.

func srvUpgrade(c net.Conn) bool {
	if _, err := readBlock(c, MaxBlockSize); err != nil {
		return false
	}
	_, err := c.Write(switchingResponse)
	return err == nil
}

func srvTLS(c net.Conn, id *tubtls.Identity) (*tls.Conn, bool) {
	cfg := id.ServerConfig()
	cfg.ClientAuth = tls.RequestClientCert
	tc := tls.Server(c, cfg)
	return tc, tc.Handshake() == nil
}

// srvUpToHello upgrades, runs TLS as id and exchanges hellos, sending hello
// (the server's normal hello if nil).
func srvUpToHello(c net.Conn, id *tubtls.Identity, hello []byte) (*tls.Conn, bool) {
	if !srvUpgrade(c) {
		return nil, false
	}
	tc, ok := srvTLS(c, id)
	if !ok {
		return nil, false
	}
	if hello == nil {
		hello = helloBlock(id.TubID, "0123456789abcdef", "")
	}
	if _, err := tc.Write(hello); err != nil {
		return nil, false
	}
	_, err := readBlock(tc, MaxBlockSize)
	return tc, err == nil
}

func drain(c net.Conn) { io.Copy(io.Discard, c) }

// TestDialMisbehavingServers checks that each way a server can misbehave
// yields its own error, in the right phase, and never a hang.
func TestDialMisbehavingServers(t *testing.T) {
	clientID, serverID := idPair(t, false) // the server is master where it matters
	mitm := newID(t)
	tests := []struct {
		name    string
		script  func(c net.Conn)
		timeout time.Duration // Dial's whole-attempt timeout; 0 = testTimeout
		phase   Phase
		check   func(t *testing.T, err error)
	}{
		{
			name:   "bad 101 status",
			script: func(c net.Conn) { readBlock(c, MaxBlockSize); c.Write([]byte("HTTP/1.1 200 OK\r\n\r\n")) },
			phase:  PhaseUpgrade,
			check:  wantAs[*BlockError]("expected 101 Switching Protocols"),
		},
		{
			name: "101 without TLS upgrade",
			script: func(c net.Conn) {
				readBlock(c, MaxBlockSize)
				c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"))
			},
			phase: PhaseUpgrade,
			check: wantAs[*BlockError]("without TLS upgrade"),
		},
		{
			name:   "500 with message",
			script: func(c net.Conn) { readBlock(c, MaxBlockSize); c.Write([]byte(captured500)) },
			phase:  PhaseUpgrade,
			check:  wantRemote("unknown TubID aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
		},
		{
			name:   "closes after the request",
			script: func(c net.Conn) { readBlock(c, MaxBlockSize) },
			phase:  PhaseUpgrade,
			check:  wantIs(io.ErrUnexpectedEOF),
		},
		{
			name: "oversized 101 block",
			script: func(c net.Conn) {
				readBlock(c, MaxBlockSize)
				c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\n"))
				for range 200 {
					if _, err := c.Write([]byte("X-Padding: 0123456789012345678901234567890123456789\r\n")); err != nil {
						return
					}
				}
				drain(c)
			},
			phase: PhaseUpgrade,
			check: wantIs(ErrBlockTooLong),
		},
		{
			name: "plaintext error block after 101",
			script: func(c net.Conn) {
				readBlock(c, MaxBlockSize)
				c.Write([]byte(capturedResponse + "banana-decision-version: 1\r\nerror: internal server error, see logs\r\n\r\n"))
				drain(c)
			},
			phase: PhaseTLS,
			check: wantRemote("internal server error, see logs"),
		},
		{
			name:   "wrong certificate tubid (MITM)",
			script: func(c net.Conn) { srvUpgrade(c); srvTLS(c, mitm) },
			phase:  PhaseTLS,
			check: func(t *testing.T, err error) {
				var me *tubtls.MismatchError
				if !errors.As(err, &me) || me.Want != serverID.TubID || me.Got != mitm.TubID {
					t.Fatalf("err = %v, want *tubtls.MismatchError{%s, %s}", err, serverID.TubID, mitm.TubID)
				}
				if !strings.Contains(err.Error(), "wrong tubid") {
					t.Errorf("error %q does not say wrong tubid", err)
				}
			},
		},
		{
			name: "error block instead of hello",
			script: func(c net.Conn) {
				srvUpgrade(c)
				if tc, ok := srvTLS(c, serverID); ok {
					tc.Write(errorBlock("internal server error, see logs"))
				}
			},
			phase: PhaseHello,
			check: wantRemote("internal server error, see logs"),
		},
		{
			name: "mismatched my-tub-id in hello",
			script: func(c net.Conn) {
				srvUpToHello(c, serverID, helloBlock(mitm.TubID, "0123456789abcdef", ""))
			},
			phase: PhaseHello,
			check: wantIs(ErrWrongTubID),
		},
		{
			name: "garbage after TLS",
			script: func(c net.Conn) {
				srvUpgrade(c)
				if tc, ok := srvTLS(c, serverID); ok {
					tc.Write([]byte("\x00\x88\x0b\x87 not a block\r\n\r\n"))
					drain(tc)
				}
			},
			phase: PhaseHello,
			check: wantAs[*BlockError]("no colon"),
		},
		{
			name: "oversized hello",
			script: func(c net.Conn) {
				srvUpgrade(c)
				if tc, ok := srvTLS(c, serverID); ok {
					tc.Write(bytes.Repeat([]byte("k: v\r\n"), 1000))
					drain(tc)
				}
			},
			phase: PhaseHello,
			check: wantIs(ErrBlockTooLong),
		},
		{
			name: "unsupported banana version",
			script: func(c net.Conn) {
				srvUpToHello(c, serverID, []byte("banana-negotiation-range: 4 5\r\nmy-tub-id: "+serverID.TubID+"\r\n\r\n"))
			},
			phase: PhaseHello,
			check: wantMsg("You can't handle banana version 3"),
		},
		{
			name: "duplicate-connection rejection",
			script: func(c net.Conn) {
				if tc, ok := srvUpToHello(c, serverID, nil); ok {
					tc.Write([]byte(capturedErrorBlock))
				}
			},
			phase: PhaseDecision,
			check: wantIs(ErrDuplicateConnection),
		},
		{
			name: "vocab hash mismatch in decision",
			script: func(c net.Conn) {
				if tc, ok := srvUpToHello(c, serverID, nil); ok {
					tc.Write([]byte("banana-decision-version: 3\r\ninitial-vocab-table-index: 1 0000\r\n\r\n"))
				}
			},
			phase: PhaseDecision,
			check: wantMsg("does not match your hash (0000)"),
		},
		{
			name:    "accepts and never answers",
			script:  drain,
			timeout: 300 * time.Millisecond,
			phase:   PhaseUpgrade,
			check:   wantTimeout,
		},
		{
			name: "slowloris 101",
			script: func(c net.Conn) {
				readBlock(c, MaxBlockSize)
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				for _, b := range []byte(capturedResponse[:40]) {
					<-tick.C
					if _, err := c.Write([]byte{b}); err != nil {
						return
					}
				}
				drain(c)
			},
			timeout: 300 * time.Millisecond,
			phase:   PhaseUpgrade,
			check:   wantTimeout,
		},
		{
			name: "silent after hello",
			script: func(c net.Conn) {
				if tc, ok := srvUpToHello(c, serverID, nil); ok {
					drain(tc)
				}
			},
			timeout: 500 * time.Millisecond,
			phase:   PhaseDecision,
			check:   wantTimeout,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := nettest.Serve(t, tt.script)
			timeout := tt.timeout
			if timeout == 0 {
				timeout = testTimeout
			}
			target := tcpTarget(addr)
			cfg := DialConfig{Identity: clientID, TubID: serverID.TubID, Targets: []Target{target}, Timeout: timeout}
			start := time.Now()
			nc, _, info, err := dialNegotiated(testContext(t), &cfg)
			if err == nil {
				nc.Close()
				t.Fatal("Dial succeeded")
			}
			if elapsed := time.Since(start); elapsed > testTimeout/2 {
				t.Errorf("Dial took %v", elapsed)
			}
			var ne *NegotiationError
			if !errors.As(err, &ne) {
				t.Fatalf("err = %T %v, want *NegotiationError", err, err)
			}
			if ne.Phase != tt.phase {
				t.Errorf("phase = %q, want %q (err: %v)", ne.Phase, tt.phase, err)
			}
			tt.check(t, err)
			st := info.Statuses[target.Hint]
			if tt.timeout == 0 && !strings.HasPrefix(st, "negotiation failed: ") {
				t.Errorf("status = %q, want negotiation failed: ...", st)
			}
		})
	}
}

func wantAs[E error](substr string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var e E
		if !errors.As(err, &e) || !strings.Contains(err.Error(), substr) {
			t.Fatalf("err = %v, want %T containing %q", err, e, substr)
		}
	}
}

func wantIs(target error) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, target) {
			t.Fatalf("err = %v, want errors.Is %v", err, target)
		}
	}
}

func wantMsg(substr string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if !strings.Contains(err.Error(), substr) {
			t.Fatalf("err = %v, want containing %q", err, substr)
		}
	}
}

func wantRemote(msg string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var re *RemoteNegotiationError
		if !errors.As(err, &re) || re.Msg != msg {
			t.Fatalf("err = %v, want *RemoteNegotiationError %q", err, msg)
		}
	}
}

func wantTimeout(t *testing.T, err error) {
	t.Helper()
	var ne *NegotiationError
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if !strings.Contains(err.Error(), "no connection established within client timeout") {
		t.Errorf("err = %v, want Foolscap's timeout text", err)
	}
}

// accepted is one connection negotiated by a test Listener.
type accepted struct {
	nc   net.Conn
	cc   ConnConfig
	done chan struct{} // close to release the connection
}

// testListener serves tubs on 127.0.0.1 with the PB layer replaced by a
// channel of raw negotiated connections.
func testListener(t *testing.T, cfg ListenConfig, tubs ...*Tub) (*Listener, <-chan accepted) {
	t.Helper()
	l, err := Listen(testContext(t), "tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan accepted, 16)
	l.handoff = func(nc net.Conn, cc ConnConfig) {
		a := accepted{nc: nc, cc: cc, done: make(chan struct{})}
		ch <- a
		select {
		case <-a.done:
		case <-l.ctx.Done():
		}
	}
	for _, tub := range tubs {
		l.AddTub(tub)
	}
	t.Cleanup(func() { l.Close() })
	return l, ch
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting")
	}
	panic("unreachable")
}

// getReferenceBytes is the captured getReferenceByName call (§5.2).
var getReferenceBytes = append(append([]byte("\x00\x88\x0b\x87\x01\x81\x00\x81\x12\x82getReferenceByName\x01\x88\x0c\x87\x00\x81\x04\x82name\x21\x82"),
	"swissnum-storage-0123456789abcdef"...), 0x01, 0x89, 0x00, 0x89)

// TestDialListener runs the whole negotiation between Dial and a Listener
// in both roles and both TLS versions, then checks that Banana bytes flow
// both ways untouched.
func TestDialListener(t *testing.T) {
	for _, clientMaster := range []bool{true, false} {
		for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			name := map[bool]string{true: "client master", false: "client slave"}[clientMaster] +
				map[uint16]string{tls.VersionTLS12: "/TLS1.2", tls.VersionTLS13: "/TLS1.3"}[version]
			t.Run(name, func(t *testing.T) {
				clientID, serverID := idPair(t, clientMaster)
				tub := NewTub(serverID)
				lst, ch := testListener(t, ListenConfig{TLSConfig: func(c *tls.Config) { c.MaxVersion = version }}, tub)
				target := tcpTarget(lst.Addr().String())
				var statuses []string
				last := &LastConnection{}
				cfg := DialConfig{
					Identity: clientID, TubID: serverID.TubID, Targets: []Target{target},
					ConnConfig:     ConnConfig{KeepaliveTimeout: time.Minute},
					LastConnection: last,
					OnStatus:       func(h, s string) { statuses = append(statuses, h+"="+s) },
				}
				nc, cc, info, err := dialNegotiated(testContext(t), &cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				srv := recv(t, ch)
				defer close(srv.done)

				wantRole := RoleSlave
				if clientMaster {
					wantRole = RoleMaster
				}
				if info.Role != wantRole || info.TLSVersion != version || info.WinningHint != target.Hint || info.Handler != "tcp" {
					t.Errorf("info = %+v, want role %v, TLS %x, winner %s via tcp", info, wantRole, version, target.Hint)
				}
				if info.LocalTubID != clientID.TubID || info.PeerTubID != serverID.TubID || info.Established.IsZero() {
					t.Errorf("info tubids %s/%s established %v", info.LocalTubID, info.PeerTubID, info.Established)
				}
				if info.Timings.Dial <= 0 || info.Timings.Upgrade <= 0 || info.Timings.TLS <= 0 || info.Timings.Negotiation <= 0 {
					t.Errorf("timings %+v: every phase should be measured", info.Timings)
				}
				wantStatuses := []string{target.Hint + "=connecting", target.Hint + "=negotiating", target.Hint + "=successful"}
				if !slices.Equal(statuses, wantStatuses) {
					t.Errorf("OnStatus calls %q, want %q", statuses, wantStatuses)
				}
				if cc.LocalTubID != clientID.TubID || cc.PeerTubID != serverID.TubID || cc.Vocab != 1 || cc.KeepaliveTimeout != time.Minute {
					t.Errorf("client ConnConfig %+v", cc)
				}
				if srv.cc.LocalTubID != serverID.TubID || srv.cc.PeerTubID != clientID.TubID || srv.cc.Vocab != 1 || srv.cc.Lookup == nil {
					t.Errorf("server ConnConfig %+v", srv.cc)
				}
				if clientMaster {
					if got := last.String(); got != "none 0" {
						t.Errorf("LastConnection after master connection = %q, want none 0", got)
					}
				} else if got, want := last.String(), tub.Incarnation()+" 1"; got != want {
					t.Errorf("LastConnection = %q, want %q", got, want)
				}

				// Banana starts right after negotiation, nothing lost or added.
				if _, err := nc.Write(getReferenceBytes); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(getReferenceBytes))
				if _, err := io.ReadFull(srv.nc, got); err != nil || !bytes.Equal(got, getReferenceBytes) {
					t.Fatalf("server read %q, %v; want the getReferenceByName bytes", got, err)
				}
				if _, err := srv.nc.Write([]byte{0x8e}); err != nil { // PING 0
					t.Fatal(err)
				}
				var b [1]byte
				if _, err := io.ReadFull(nc, b[:]); err != nil || b[0] != 0x8e {
					t.Fatalf("client read %x, %v; want the PING byte", b, err)
				}
			})
		}
	}
}

// TestDialParallelTargets dials a refused port, a black hole and a real
// listener at once: the listener wins, the black hole is abandoned, and
// nothing is left running (goleak checks in TestMain).
func TestDialParallelTargets(t *testing.T) {
	clientID, serverID := idPair(t, true)
	lst, ch := testListener(t, ListenConfig{}, NewTub(serverID))
	hole := tcpTarget(nettest.Serve(t, drain))
	refused := tcpTarget(nettest.RefusedAddr(t))
	good := tcpTarget(lst.Addr().String())
	bad := Target{Hint: "tcp:127.0.0.1:1", Addr: "127.0.0.1:1", Handler: "tcp", Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, errors.New("no route to host")
	}}
	cfg := DialConfig{Identity: clientID, TubID: serverID.TubID, Targets: []Target{refused, hole, bad, good, good}, OnStatus: func(h, s string) { t.Log(h, s) }}
	nc, _, info, err := dialNegotiated(testContext(t), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	srv := recv(t, ch)
	close(srv.done)
	want := map[string]string{
		refused.Hint: StatusRefused,
		hole.Hint:    StatusAbandoned,
		bad.Hint:     "failed to connect: no route to host",
		good.Hint:    StatusSuccessful,
	}
	if len(info.Statuses) != len(want) {
		t.Errorf("statuses %q, want %q", info.Statuses, want)
	}
	for h, s := range want {
		if info.Statuses[h] != s {
			t.Errorf("status of %s = %q, want %q", h, info.Statuses[h], s)
		}
	}
	if info.WinningHint != good.Hint {
		t.Errorf("winner %q, want %q", info.WinningHint, good.Hint)
	}
}

// TestDialMakeIdentity: with MakeIdentity, the identity is made once, when
// a target's upgrade has been accepted, whatever the number of targets; an
// attempt that reaches no server makes none; the server sees the made
// TubID; a made identity with the server's own TubID, or an error making
// it, fails the attempt.
func TestDialMakeIdentity(t *testing.T) {
	clientID, serverID := idPair(t, true)
	var made atomic.Int32
	makeID := func() (*tubtls.Identity, error) { made.Add(1); return clientID, nil }

	refused := tcpTarget(nettest.RefusedAddr(t))
	cfg := DialConfig{MakeIdentity: makeID, TubID: serverID.TubID, Targets: []Target{refused}}
	if _, _, _, err := dialNegotiated(testContext(t), &cfg); err == nil {
		t.Fatal("a refused target connected")
	}
	if made.Load() != 0 {
		t.Fatalf("a refused attempt made %d identities", made.Load())
	}

	lst, ch := testListener(t, ListenConfig{}, NewTub(serverID))
	addr := lst.Addr().String()
	other := Target{Hint: "tcp:localhost-alias:1", Addr: addr, Host: "127.0.0.1", Handler: "tcp"}
	cfg.Targets = []Target{tcpTarget(addr), other, refused}
	nc, cc, info, err := dialNegotiated(testContext(t), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	srv := recv(t, ch)
	close(srv.done)
	if made.Load() != 1 {
		t.Errorf("%d identities made for one attempt, want 1", made.Load())
	}
	if srv.cc.PeerTubID != clientID.TubID || cc.LocalTubID != clientID.TubID || info.LocalTubID != clientID.TubID {
		t.Errorf("server saw %s, conn says %s, info says %s; made %s", srv.cc.PeerTubID, cc.LocalTubID, info.LocalTubID, clientID.TubID)
	}

	cfg.Targets = []Target{tcpTarget(addr)}
	cfg.MakeIdentity = func() (*tubtls.Identity, error) { return serverID, nil }
	if _, _, _, err := dialNegotiated(testContext(t), &cfg); err == nil || !strings.Contains(err.Error(), "our own TubID") {
		t.Errorf("own TubID: err = %v", err)
	}
	entropy := errors.New("no entropy")
	cfg.MakeIdentity = func() (*tubtls.Identity, error) { return nil, entropy }
	if _, _, _, err := dialNegotiated(testContext(t), &cfg); !errors.Is(err, entropy) {
		t.Errorf("failing MakeIdentity: err = %v, want it wrapped", err)
	}
}

func TestDialAllTargetsFail(t *testing.T) {
	clientID, serverID := idPair(t, true)
	refused := tcpTarget(nettest.RefusedAddr(t))
	rejecting := tcpTarget(nettest.Serve(t, func(c net.Conn) { readBlock(c, MaxBlockSize); c.Write([]byte(captured500)) }))
	cfg := DialConfig{Identity: clientID, TubID: serverID.TubID, Targets: []Target{refused, rejecting}}
	_, _, info, err := dialNegotiated(testContext(t), &cfg)
	// The negotiation failure is more telling than the refused dial.
	var ne *NegotiationError
	if !errors.As(err, &ne) || ne.Hint != rejecting.Hint || ne.Phase != PhaseUpgrade {
		t.Fatalf("err = %v, want the upgrade failure of %s", err, rejecting.Hint)
	}
	if info.Statuses[refused.Hint] != StatusRefused || !strings.Contains(info.Statuses[rejecting.Hint], "unknown TubID") {
		t.Errorf("statuses %q", info.Statuses)
	}

	cfg.Targets = []Target{refused}
	_, _, _, err = dialNegotiated(testContext(t), &cfg)
	if !errors.As(err, &ne) || ne.Phase != PhaseDial || ne.Hint != refused.Hint {
		t.Fatalf("err = %v, want the dial failure", err)
	}
}

func TestDialConfigErrors(t *testing.T) {
	a, b := newID(t), newID(t)
	tests := []struct {
		name string
		cfg  DialConfig
		want string
		is   error
	}{
		{"no targets", DialConfig{Identity: a, TubID: b.TubID}, "no location hints", ErrNoLocationHints},
		{"no identity", DialConfig{TubID: b.TubID}, "Identity and MakeIdentity are nil", nil},
		{"no tubid", DialConfig{Identity: a}, "TubID is empty", nil},
		{"self", DialConfig{Identity: a, TubID: a.TubID, Targets: []Target{tcpTarget("127.0.0.1:1")}}, "our own TubID", nil},
		{"bad incarnation", DialConfig{Identity: a, TubID: b.TubID, Incarnation: "xyz", Targets: []Target{tcpTarget("127.0.0.1:1")}}, "16 lowercase hex", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, info, err := Dial(testContext(t), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if info == nil {
				t.Error("Dial returned no ConnectInfo on failure")
			}
		})
	}
}

// TestDialCancel cancels the caller's context while the server stalls.
func TestDialCancel(t *testing.T) {
	clientID, serverID := idPair(t, true)
	reached := make(chan struct{})
	addr := nettest.Serve(t, func(c net.Conn) {
		readBlock(c, MaxBlockSize)
		close(reached)
		drain(c)
	})
	ctx, cancel := context.WithCancel(testContext(t))
	go func() { <-reached; cancel() }()
	cfg := DialConfig{Identity: clientID, TubID: serverID.TubID, Targets: []Target{tcpTarget(addr)}}
	_, _, info, err := dialNegotiated(ctx, &cfg)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("err = %v, want cancellation", err)
	}
	if s := info.Statuses["tcp:"+addr]; s != StatusAbandoned {
		t.Errorf("status %q, want abandoned", s)
	}
}

// TestDuplicateConnectionsServerMaster replays the verified sequence of
// docs/foolscap-protocol.md §3.5 against a Go Listener that is master.
func TestDuplicateConnectionsServerMaster(t *testing.T) {
	clientID, serverID := idPair(t, false)
	tub := NewTub(serverID)
	lst, ch := testListener(t, ListenConfig{}, tub)
	target := tcpTarget(lst.Addr().String())
	dial := func(inc string, last *LastConnection) (net.Conn, accepted, error) {
		cfg := DialConfig{Identity: clientID, Incarnation: inc, TubID: serverID.TubID, Targets: []Target{target}, LastConnection: last}
		nc, _, _, err := dialNegotiated(testContext(t), &cfg)
		if err != nil {
			return nil, accepted{}, err
		}
		t.Cleanup(func() { nc.Close() })
		srv := recv(t, ch)
		t.Cleanup(func() { close(srv.done) })
		return nc, srv, nil
	}
	const inc1, inc2 = "1111111111111111", "2222222222222222"
	lastA := &LastConnection{}
	a, _, err := dial(inc1, lastA)
	if err != nil {
		t.Fatalf("A: %v", err)
	}
	if got, want := lastA.String(), tub.Incarnation()+" 1"; got != want {
		t.Fatalf("A: current-connection %q, want %q", got, want)
	}
	// B: same incarnation, remembers nothing: a parallel attempt, rejected.
	if _, _, err := dial(inc1, &LastConnection{}); !errors.Is(err, ErrDuplicateConnection) {
		t.Fatalf("B: err = %v, want ErrDuplicateConnection", err)
	}
	// C: remembers A's seqnum: A is stale, C accepted, A dropped.
	c, _, err := dial(inc1, lastA)
	if err != nil {
		t.Fatalf("C: %v", err)
	}
	if got, want := lastA.String(), tub.Incarnation()+" 2"; got != want {
		t.Errorf("C: current-connection %q, want %q", got, want)
	}
	if _, err := a.Read(make([]byte, 1)); err == nil {
		t.Error("A still open after C replaced it")
	}
	// D: another incarnation (the peer restarted): accepted, C dropped.
	if _, _, err := dial(inc2, &LastConnection{}); err != nil {
		t.Fatalf("D: %v", err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("C still open after D replaced it")
	}
	// E: D's incarnation again, remembering nothing: rejected.
	if _, _, err := dial(inc2, &LastConnection{}); !errors.Is(err, ErrDuplicateConnection) {
		t.Fatalf("E: err = %v, want ErrDuplicateConnection", err)
	}
}

// TestDuplicateConnectionsServerSlave: when the client is master, the
// slave drops its older connection to the same peer.
func TestDuplicateConnectionsServerSlave(t *testing.T) {
	clientID, serverID := idPair(t, true)
	lst, ch := testListener(t, ListenConfig{}, NewTub(serverID))
	last := &LastConnection{}
	cfg := DialConfig{Identity: clientID, TubID: serverID.TubID, Targets: []Target{tcpTarget(lst.Addr().String())}, LastConnection: last}
	a, _, _, err := dialNegotiated(testContext(t), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	srvA := recv(t, ch)
	defer close(srvA.done)
	b, _, _, err := dialNegotiated(testContext(t), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srvB := recv(t, ch)
	defer close(srvB.done)
	if _, err := a.Read(make([]byte, 1)); err == nil {
		t.Error("old connection still open")
	}
	if last.ourSeq != 2 {
		t.Errorf("seqnum issued %d times, want 2", last.ourSeq)
	}
}
