package foolscap

import (
	"context"
	"crypto/tls"
	"net"
	"reflect"
	"testing"

	tubtls "github.com/tubfarm/tubfarm/tls"
)

// goServer serves an echoObject from a Go Tub on 127.0.0.1 and returns the
// Tub and its swissnum.
func goServer(tb testing.TB, id *tubtls.Identity, onConnect func(*Tub, string, *Conn)) (*Listener, *Tub, string, *echoObject) {
	tb.Helper()
	tub := NewTub(id)
	l, err := Listen(context.Background(), "tcp", "127.0.0.1:0", ListenConfig{OnConnect: onConnect})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	l.AddTub(tub)
	tub.SetLocation("tcp:" + l.Addr().String())
	obj := &echoObject{}
	if _, err := tub.Register(obj, "echo-swissnum"); err != nil {
		tb.Fatal(err)
	}
	return l, tub, "echo-swissnum", obj
}

// TestConnectGoToGo: Dial, getReference and a call through the real PB
// layer on both sides, in both roles; OnConnect sees the client's TubID.
func TestConnectGoToGo(t *testing.T) {
	for _, clientMaster := range []bool{true, false} {
		t.Run(map[bool]string{true: "client master", false: "client slave"}[clientMaster], func(t *testing.T) {
			clientID, serverID := idPair(t, clientMaster)
			peers := make(chan string, 1)
			l, _, name, obj := goServer(t, serverID, func(_ *Tub, peer string, _ *Conn) { peers <- peer })
			ctx := testContext(t)
			c, _, err := Dial(ctx, DialConfig{Identity: clientID, TubID: serverID.TubID, Targets: []Target{tcpTarget(l.Addr().String())}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ref, err := c.GetReference(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if ref.InterfaceName() != obj.InterfaceName() || ref.URL() != "pb://"+serverID.TubID+"@tcp:"+l.Addr().String()+"/"+name {
				t.Errorf("reference iname %q url %q", ref.InterfaceName(), ref.URL())
			}
			got, err := ref.Call(ctx, "echo", []any{[]byte("hi")}, nil)
			if err != nil || !reflect.DeepEqual(got, []byte("hi")) {
				t.Fatalf("echo = %#v, %v", got, err)
			}
			if p := recv(t, peers); p != clientID.TubID {
				t.Errorf("OnConnect peer %s, want %s", p, clientID.TubID)
			}
		})
	}
}

// BenchmarkConnect is a full connection to a Go Listener on loopback: TCP,
// upgrade, TLS 1.3, hellos, decision, getReference and one call. Compare
// with BenchmarkBareTLS13 from the same run (same ECDSA P-256 keys).
func BenchmarkConnect(b *testing.B) {
	clientID, serverID := newID(b), newID(b)
	l, _, name, _ := goServer(b, serverID, nil)
	target := tcpTarget(l.Addr().String())
	ctx := context.Background()
	// One identity and incarnation throughout, so keep the duplicate-
	// connection state as a reconnecting client would.
	last := &LastConnection{}
	b.ReportAllocs()
	for b.Loop() {
		c, _, err := Dial(ctx, DialConfig{Identity: clientID, Incarnation: "0123456789abcdef", TubID: serverID.TubID, Targets: []Target{target}, LastConnection: last})
		if err != nil {
			b.Fatal(err)
		}
		ref, err := c.GetReference(ctx, name)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ref.Call(ctx, "echo", []any{[]byte("x")}, nil); err != nil {
			b.Fatal(err)
		}
		c.Close()
		<-c.Done()
	}
}

// BenchmarkBareTLS13 is a bare crypto/tls 1.3 handshake with client
// certificates over loopback TCP, both sides complete, with the same
// identities as BenchmarkConnect.
func BenchmarkBareTLS13(b *testing.B) {
	clientID, serverID := newID(b), newID(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	scfg := serverID.ServerConfig()
	scfg.MinVersion = tls.VersionTLS13
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := tls.Server(c, scfg)
			tc.Handshake()
			tc.Close()
		}
	}()
	defer func() { ln.Close(); <-done }()
	ccfg := clientID.ClientConfig(serverID.TubID)
	ccfg.MinVersion = tls.VersionTLS13
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		tc := tls.Client(c, ccfg)
		if err := tc.Handshake(); err != nil {
			b.Fatal(err)
		}
		tc.Close()
	}
}
