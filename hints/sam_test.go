package hints

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm/internal/samtest"

	"github.com/tubfarm/tubfarm/internal/nettest"
)

// newSAM returns a SAM client for the bridge at addr whose dials can never
// resolve a name locally; it is closed when the test ends.
func newSAM(t *testing.T, addr string, opts ...string) *SAM {
	t.Helper()
	s, err := NewSAM(SAMConfig{Addr: "tcp:" + addr, SessionOptions: opts, Forward: DirectTCPWithResolver(nil, noResolver{t})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitEnded waits for ch to close, failing the test after 10 s.
func waitEnded(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not end", what)
	}
}

func TestSAMFullExchange(t *testing.T) {
	bridge := samtest.Start(t, samtest.Config{})
	echo := nettest.Echo(t)
	peer := bridge.AddPeer(echo)
	bridge.AddName("storage.i2p", peer)
	s := newSAM(t, bridge.Addr, "inbound.quantity=3")
	dial := s.ForIdentity("tubid-a")

	for _, addr := range []string{
		peer.B32 + ":3457",
		strings.ToUpper(peer.B32[:10]) + peer.B32[10:] + ":0",
		peer.Base64 + ":1",
		"storage.i2p:0",
	} {
		c, err := dial(testCtx(t), "tcp", addr)
		if err != nil {
			t.Fatalf("dial %.40s: %v", addr, err)
		}
		roundTrip(t, c)
		host, _, _ := net.SplitHostPort(addr)
		if ra, ok := c.RemoteAddr().(I2PAddr); !ok || ra.Dest != host || ra.Network() != "i2p" {
			t.Errorf("RemoteAddr = %#v", c.RemoteAddr())
		}
		c.Close()
	}

	sessions := bridge.Sessions()
	if len(sessions) != 1 {
		t.Fatalf("bridge saw %d sessions, want 1 reused for every stream", len(sessions))
	}
	id := sessions[0].ID
	if !strings.HasPrefix(id, "tubfarm-") || strings.Contains(id, "tubid") {
		t.Errorf("session ID %q", id)
	}
	want := []string{
		"HELLO VERSION MIN=3.0 MAX=3.1",
		"SESSION CREATE STYLE=STREAM ID=" + id + " DESTINATION=TRANSIENT SIGNATURE_TYPE=7 inbound.quantity=3",
		"HELLO VERSION MIN=3.0 MAX=3.1",
		"STREAM CONNECT ID=" + id + " DESTINATION=" + peer.B32 + " SILENT=false TO_PORT=3457",
		"HELLO VERSION MIN=3.0 MAX=3.1",
		"STREAM CONNECT ID=" + id + " DESTINATION=" + strings.ToUpper(peer.B32[:10]) + peer.B32[10:] + " SILENT=false",
		"HELLO VERSION MIN=3.0 MAX=3.1",
		"STREAM CONNECT ID=" + id + " DESTINATION=" + peer.Base64 + " SILENT=false TO_PORT=1",
		"HELLO VERSION MIN=3.0 MAX=3.1",
		"NAMING LOOKUP NAME=storage.i2p",
		"STREAM CONNECT ID=" + id + " DESTINATION=" + peer.Base64 + " SILENT=false",
	}
	got := bridge.Commands()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := len(bridge.Streams()); n != 4 {
		t.Errorf("bridge accepted %d streams, want 4", n)
	}
}

func TestSAMVersion30(t *testing.T) {
	bridge := samtest.Start(t, samtest.Config{Versions: []string{"3.0"}})
	peer := bridge.AddPeer(nettest.Echo(t))
	s := newSAM(t, bridge.Addr)
	sess, err := s.NewSession(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if sess.Version() != "3.0" {
		t.Errorf("Version = %q", sess.Version())
	}
	if _, ok := bridge.Sessions()[0].Options["SIGNATURE_TYPE"]; ok {
		t.Error("SIGNATURE_TYPE sent to a SAM 3.0 bridge")
	}
	c, err := sess.Dial(testCtx(t), "tcp", peer.B32+":0")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c)
	c.Close()
}

func TestSAMSessionPerIdentity(t *testing.T) {
	bridge := samtest.Start(t, samtest.Config{})
	peer := bridge.AddPeer(nettest.Echo(t))
	s := newSAM(t, bridge.Addr)

	// Concurrent first dials of one identity create one session.
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := s.ForIdentity("A")(testCtx(t), "tcp", peer.B32+":1")
			if err != nil {
				t.Error(err)
				return
			}
			c.Close()
		}()
	}
	wg.Wait()
	c, err := s.ForIdentity("B")(testCtx(t), "tcp", peer.B32+":1")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	sessions := bridge.Sessions()
	if len(sessions) != 2 {
		t.Fatalf("%d sessions for 2 identities", len(sessions))
	}
	if sessions[0].ID == sessions[1].ID || sessions[0].Dest == sessions[1].Dest {
		t.Error("two identities share a session ID or destination")
	}
	perSession := map[string]int{}
	for _, st := range bridge.Streams() {
		perSession[st.SessionID]++
	}
	if perSession[sessions[0].ID] != 5 || perSession[sessions[1].ID] != 1 {
		t.Errorf("streams per session = %v", perSession)
	}
}

func TestSAMRetireAndClose(t *testing.T) {
	bridge := samtest.Start(t, samtest.Config{})
	peer := bridge.AddPeer(nettest.Echo(t))
	s := newSAM(t, bridge.Addr)
	c, err := s.ForIdentity("A")(testCtx(t), "tcp", peer.B32+":1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c)
	if _, err := s.ForIdentity("B")(testCtx(t), "tcp", peer.B32+":1"); err != nil {
		t.Fatal(err)
	}
	first := bridge.Sessions()

	if err := s.Retire("A"); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, first[0].Ended, "retired session")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("stream of a retired session: read error %v, want EOF", err)
	}
	select {
	case <-first[1].Ended:
		t.Error("retiring A ended B's session")
	default:
	}
	if err := s.Retire("nobody"); err != nil {
		t.Errorf("Retire of an unknown key: %v", err)
	}

	// A retired identity that dials again gets a new session.
	c2, err := s.ForIdentity("A")(testCtx(t), "tcp", peer.B32+":1")
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
	all := bridge.Sessions()
	if len(all) != 3 || all[2].ID == first[0].ID {
		t.Fatalf("sessions after re-dial: %d", len(all))
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, first[1].Ended, "session B after Close")
	waitEnded(t, all[2].Ended, "new session A after Close")
	_, err = s.ForIdentity("C")(testCtx(t), "tcp", peer.B32+":1")
	if !errors.Is(err, ErrSAMClosed) {
		t.Errorf("dial after Close: %v", err)
	}
}

func TestSAMBridgeEndsSession(t *testing.T) {
	bridge := samtest.Start(t, samtest.Config{})
	peer := bridge.AddPeer(nettest.Echo(t))
	s := newSAM(t, bridge.Addr)
	sess, err := s.NewSession(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	bridge.EndSession(sess.ID())
	waitEnded(t, sess.Done(), "session ended by the bridge")
	_, err = sess.Dial(testCtx(t), "tcp", peer.B32+":1")
	if !errors.Is(err, ErrSAMClosed) {
		t.Errorf("dial on an ended session: %v", err)
	}
	if err := sess.Close(); err != nil {
		t.Errorf("Close after the bridge ended the session: %v", err)
	}

	// ForIdentity replaces a session the bridge ended.
	dial := s.ForIdentity("A")
	c, err := dial(testCtx(t), "tcp", peer.B32+":1")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	id := bridge.Sessions()[1].ID
	bridge.EndSession(id)
	waitEnded(t, bridge.Sessions()[1].Ended, "bridge side")
	s.mu.Lock()
	old := s.sessions["A"].sess
	s.mu.Unlock()
	waitEnded(t, old.Done(), "client side")
	c, err = dial(testCtx(t), "tcp", peer.B32+":1")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if n := len(bridge.Sessions()); n != 3 {
		t.Errorf("%d sessions, want a replacement", n)
	}
}

func TestSAMErrors(t *testing.T) {
	bridge := samtest.Start(t, samtest.Config{})
	s := newSAM(t, bridge.Addr)
	sess, err := s.NewSession(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	unknown := samtest.NewDestination()
	timeout := bridge.AddFailingPeer("TIMEOUT", "")
	i2pErr := bridge.AddFailingPeer("I2P_ERROR", "router shutting down")
	notFound := bridge.AddFailingPeer("PEER_NOT_FOUND", "")
	weird := bridge.AddFailingPeer("WEIRD_CODE", "new in SAM 9")
	badKey := strings.Repeat("A", 517)

	for _, tt := range []struct {
		addr   string
		is     error
		op     string
		result string
		want   string
	}{
		{unknown.B32 + ":1", ErrSAMCantReachPeer, "STREAM CONNECT", "CANT_REACH_PEER",
			`hints: SAM bridge ` + bridge.Addr + `: STREAM CONNECT "` + unknown.B32 + `": CANT_REACH_PEER (the peer exists but cannot be reached): no such peer`},
		{timeout.B32 + ":1", ErrSAMTimeout, "STREAM CONNECT", "TIMEOUT",
			`hints: SAM bridge ` + bridge.Addr + `: STREAM CONNECT "` + timeout.B32 + `": TIMEOUT (I2P timed out waiting for the peer)`},
		{i2pErr.B32 + ":1", ErrSAMI2PError, "STREAM CONNECT", "I2P_ERROR",
			`hints: SAM bridge ` + bridge.Addr + `: STREAM CONNECT "` + i2pErr.B32 + `": I2P_ERROR (generic I2P error): router shutting down`},
		{notFound.B32 + ":1", ErrSAMPeerNotFound, "STREAM CONNECT", "PEER_NOT_FOUND", ""},
		{weird.B32 + ":1", nil, "STREAM CONNECT", "WEIRD_CODE",
			`hints: SAM bridge ` + bridge.Addr + `: STREAM CONNECT "` + weird.B32 + `": WEIRD_CODE: new in SAM 9`},
		{badKey + ":1", ErrSAMInvalidKey, "STREAM CONNECT", "INVALID_KEY", ""},
		{"nobody.i2p:1", ErrSAMKeyNotFound, "NAMING LOOKUP", "KEY_NOT_FOUND",
			`hints: SAM bridge ` + bridge.Addr + `: NAMING LOOKUP "nobody.i2p": KEY_NOT_FOUND (the bridge's naming service does not know the name)`},
	} {
		_, err := sess.Dial(testCtx(t), "tcp", tt.addr)
		var se *SAMError
		if !errors.As(err, &se) || se.Op != tt.op || se.Result != tt.result || (tt.is != nil && !errors.Is(err, tt.is)) {
			t.Errorf("dial %.30s: %v (want %s %s)", tt.addr, err, tt.op, tt.result)
			continue
		}
		if tt.want != "" && err.Error() != tt.want {
			t.Errorf("error text:\n got %s\nwant %s", err, tt.want)
		}
	}

	// INVALID_ID: the bridge no longer knows the session.
	bridge.ForgetSession(sess.ID())
	peer := bridge.AddPeer(nettest.Echo(t))
	_, err = sess.Dial(testCtx(t), "tcp", peer.B32+":1")
	if !errors.Is(err, ErrSAMInvalidID) {
		t.Errorf("forgotten session: %v", err)
	}

	// SESSION CREATE refusals.
	for _, code := range []struct {
		result string
		is     error
	}{{"DUPLICATED_ID", ErrSAMDuplicatedID}, {"DUPLICATED_DEST", ErrSAMDuplicatedDst}, {"I2P_ERROR", ErrSAMI2PError}, {"INVALID_KEY", ErrSAMInvalidKey}} {
		bridge.FailSessions(code.result, "")
		_, err := s.ForIdentity("X")(testCtx(t), "tcp", peer.B32+":1")
		var se *SAMError
		if !errors.Is(err, code.is) || !errors.As(err, &se) || se.Op != "SESSION CREATE" {
			t.Errorf("SESSION CREATE %s: %v", code.result, err)
		}
	}
	bridge.FailSessions("", "")

	// NOVERSION.
	old := samtest.Start(t, samtest.Config{Versions: []string{"2.0"}})
	_, err = newSAM(t, old.Addr).NewSession(testCtx(t))
	if !errors.Is(err, ErrSAMNoVersion) || err.Error() != "hints: SAM bridge "+old.Addr+": HELLO: NOVERSION (the bridge supports no SAM version from 3.0 to 3.1)" {
		t.Errorf("NOVERSION: %v", err)
	}
}

func TestSAMRejectsBadAddresses(t *testing.T) {
	bridge := samtest.Start(t, samtest.Config{})
	s := newSAM(t, bridge.Addr)
	sess, err := s.NewSession(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	before := len(bridge.Commands())
	for _, tt := range []struct{ network, addr string }{
		{"udp", "abc.b32.i2p:1"},
		{"tcp", "abc.b32.i2p"},
		{"tcp", "abc.b32.i2p:99999"},
		{"tcp", "abc.b32.i2p:-1"},
		{"tcp", ":1"},
		{"tcp", "evil.i2p SILENT=true:1"},
		{"tcp", "evil.i2p\nSESSION CREATE:1"},
		{"tcp", `a"b.i2p:1`},
		{"tcp", "name=x.i2p:1"},
		{"tcp", ".b32.i2p:1x"},
	} {
		_, err := sess.Dial(testCtx(t), tt.network, tt.addr)
		var se *SAMError
		if !errors.As(err, &se) || se.Result != "" {
			t.Errorf("Dial(%q, %q) = %v, want a local *SAMError", tt.network, tt.addr, err)
		}
	}
	if got := bridge.Commands()[before:]; len(got) != 0 {
		t.Errorf("bad addresses reached the bridge: %q", got)
	}
}

func TestNewSAMErrors(t *testing.T) {
	for _, tt := range []struct {
		cfg  SAMConfig
		want string
	}{
		{SAMConfig{Addr: "unix:/run/i2p/sam"}, `hints: [i2p] sam.port "unix:/run/i2p/sam": unsupported endpoint type "unix" (want tcp:HOST:PORT)`},
		{SAMConfig{SessionOptions: []string{"inbound.length"}}, `hints: SAM session option "inbound.length": want KEY=VALUE without spaces or quotes`},
		{SAMConfig{SessionOptions: []string{"a=b c"}}, `hints: SAM session option "a=b c": want KEY=VALUE without spaces or quotes`},
	} {
		if _, err := NewSAM(tt.cfg); err == nil || err.Error() != tt.want {
			t.Errorf("NewSAM(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
	s, err := NewSAM(SAMConfig{})
	if err != nil || s.Addr() != DefaultSAMAddr {
		t.Errorf("default SAM: %v, %v", s, err)
	}
}

// scriptedBridge is a bridge that runs script on each connection.
func scriptedBridge(t *testing.T, script func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	l := listen(t)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				script(c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return l.Addr().String()
}

// expect reads one line and fails the test unless it starts with prefix.
func expect(t *testing.T, br *bufio.Reader, prefix string) bool {
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, prefix) {
		t.Errorf("bridge read %q, %v; want %q...", line, err, prefix)
		return false
	}
	return true
}

func TestSAMHostileBridge(t *testing.T) {
	helloThen := func(reply string) func(net.Conn, *bufio.Reader) {
		return func(c net.Conn, br *bufio.Reader) {
			if expect(t, br, "HELLO VERSION") {
				io.WriteString(c, reply)
			}
			io.Copy(io.Discard, br)
		}
	}
	for _, tt := range []struct {
		name   string
		script func(net.Conn, *bufio.Reader)
		want   string
	}{
		{"endless line", func(c net.Conn, br *bufio.Reader) {
			if !expect(t, br, "HELLO VERSION") {
				return
			}
			chunk := []byte(strings.Repeat("A", 4096))
			for range 1024 { // 4 MiB, never a newline; stops when the client hangs up
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}, "HELLO: SAM protocol error: reply line longer than 65536 bytes"},
		{"line just over the limit", helloThen("HELLO REPLY RESULT=OK VERSION=3.1 X=" + strings.Repeat("x", MaxSAMLine) + "\n"),
			"HELLO: SAM protocol error: reply line longer than 65536 bytes"},
		{"wrong reply", helloThen("SESSION STATUS RESULT=OK\n"),
			`HELLO: SAM protocol error: unexpected reply "SESSION STATUS RESULT=OK" (want HELLO REPLY)`},
		{"no result", helloThen("HELLO REPLY VERSION=3.1\n"),
			`HELLO: SAM protocol error: reply without RESULT: "HELLO REPLY VERSION=3.1"`},
		{"unterminated quote", helloThen("HELLO REPLY RESULT=OK MESSAGE=\"abc\n"),
			`HELLO: SAM protocol error: unterminated quoted value for MESSAGE in reply "HELLO REPLY RESULT=OK MESSAGE=\"abc"`},
		{"unoffered version", helloThen("HELLO REPLY RESULT=OK VERSION=3.3\n"),
			`HELLO: SAM protocol error: bridge chose version "3.3" (want 3.0 or 3.1)`},
		{"hang up", func(c net.Conn, br *bufio.Reader) { expect(t, br, "HELLO VERSION") }, "HELLO: EOF"},
		{"bad lookup value", func(c net.Conn, br *bufio.Reader) {
			if expect(t, br, "HELLO VERSION") {
				io.WriteString(c, "HELLO REPLY RESULT=OK VERSION=3.1\n")
			}
			if expect(t, br, "NAMING LOOKUP NAME=x.i2p") {
				io.WriteString(c, "NAMING REPLY RESULT=OK NAME=x.i2p VALUE=short\n")
			}
			io.Copy(io.Discard, br)
		}, `NAMING LOOKUP "x.i2p": SAM protocol error: VALUE is not a base64 destination: "short"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := scriptedBridge(t, tt.script)
			sess := &SAMSession{sam: newSAM(t, addr), id: "s", done: make(chan struct{})}
			_, err := sess.Dial(testCtx(t), "tcp", "x.i2p:1")
			want := "hints: SAM bridge " + addr + ": " + tt.want
			if tt.name != "hang up" && !errors.Is(err, ErrSAMProtocol) {
				t.Errorf("error %v does not match ErrSAMProtocol", err)
			}
			if err == nil || err.Error() != want {
				t.Errorf("error:\n got %v\nwant %s", err, want)
			}
		})
	}
}

func TestSAMStreamKeepsEarlyBytes(t *testing.T) {
	// The peer's first bytes may arrive in the same segment as STREAM
	// STATUS; they belong to the stream.
	addr := scriptedBridge(t, func(c net.Conn, br *bufio.Reader) {
		if expect(t, br, "HELLO VERSION") {
			io.WriteString(c, "HELLO REPLY RESULT=OK VERSION=3.1\n")
		}
		if expect(t, br, "STREAM CONNECT ID=s DESTINATION=abc.b32.i2p SILENT=false TO_PORT=80") {
			io.WriteString(c, "STREAM STATUS RESULT=OK\nbanner\n")
		}
		io.Copy(c, br)
	})
	sess := &SAMSession{sam: newSAM(t, addr), id: "s", done: make(chan struct{})}
	c, err := sess.Dial(testCtx(t), "tcp", "abc.b32.i2p:80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 7)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "banner\n" {
		t.Fatalf("first stream bytes %q, %v", buf, err)
	}
	roundTrip(t, c)
}

func TestSAMPing(t *testing.T) {
	pong := make(chan string, 1)
	addr := scriptedBridge(t, func(c net.Conn, br *bufio.Reader) {
		if expect(t, br, "HELLO VERSION") {
			io.WriteString(c, "HELLO REPLY RESULT=OK VERSION=3.1\n")
		}
		if expect(t, br, "SESSION CREATE") {
			io.WriteString(c, "SESSION STATUS RESULT=OK DESTINATION=x\nPING 1234\n")
		}
		line, _ := br.ReadString('\n')
		pong <- line
		io.Copy(io.Discard, br)
	})
	sess, err := newSAM(t, addr).NewSession(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	select {
	case line := <-pong:
		if line != "PONG 1234\n" {
			t.Errorf("answer to PING: %q", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no PONG")
	}
}

func TestSAMContext(t *testing.T) {
	for _, tt := range []struct {
		name  string
		stall string // the command after which the bridge stops answering
		is    error
	}{
		{"cancel during HELLO", "HELLO VERSION", context.Canceled},
		{"cancel during SESSION CREATE", "SESSION CREATE", context.Canceled},
		{"deadline during SESSION CREATE", "SESSION CREATE", context.DeadlineExceeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stalled := make(chan struct{})
			hungUp := make(chan struct{})
			addr := scriptedBridge(t, func(c net.Conn, br *bufio.Reader) {
				if tt.stall != "HELLO VERSION" {
					if !expect(t, br, "HELLO VERSION") {
						return
					}
					io.WriteString(c, "HELLO REPLY RESULT=OK VERSION=3.1\n")
				}
				if !expect(t, br, tt.stall) {
					return
				}
				close(stalled)
				io.Copy(io.Discard, br) // until the client hangs up
				close(hungUp)
			})
			s := newSAM(t, addr)
			var ctx context.Context
			var cancel context.CancelFunc
			if tt.is == context.DeadlineExceeded {
				ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
			} else {
				ctx, cancel = context.WithCancel(context.Background())
			}
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				_, err := s.ForIdentity("A")(ctx, "tcp", "abc.b32.i2p:1")
				errc <- err
			}()
			<-stalled
			if tt.is == context.Canceled {
				cancel()
			}
			err := <-errc
			var se *SAMError
			if !errors.Is(err, tt.is) || !errors.As(err, &se) {
				t.Errorf("error %v, want a *SAMError matching %v", err, tt.is)
			}
			waitEnded(t, hungUp, "bridge connection")
		})
	}
}
