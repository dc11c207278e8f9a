package faultnet

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// target is a server on 127.0.0.1 that sends greeting to every client, then
// echoes what it reads.
func target(t *testing.T, greeting []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.Write(greeting)
				io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

func start(t *testing.T, to string, f Fault) *Proxy {
	t.Helper()
	p, err := Listen(to)
	if err != nil {
		t.Fatal(err)
	}
	p.Set(f)
	t.Cleanup(func() { p.Close() })
	return p
}

func TestModes(t *testing.T) {
	greeting := []byte("hello, client")
	for _, tc := range []struct {
		name  string
		fault Fault
		check func(t *testing.T, c net.Conn, p *Proxy)
	}{
		{"pass", Fault{}, func(t *testing.T, c net.Conn, p *Proxy) {
			got := make([]byte, len(greeting))
			if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, greeting) {
				t.Fatalf("greeting %q, %v", got, err)
			}
			c.Write([]byte("ping"))
			got = make([]byte, 4)
			if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
				t.Errorf("echo %q, %v", got, err)
			}
		}},
		{"blackhole", Fault{Mode: Blackhole}, func(t *testing.T, c net.Conn, p *Proxy) {
			c.Write([]byte("anyone?"))
			p.Close() // everything the blackhole ever sent is now readable
			// EOF, or a reset if "anyone?" was still unread at the close.
			if got, err := io.ReadAll(c); len(got) != 0 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("read from a blackhole: %q, %v; want nothing, then the end", got, err)
			}
		}},
		{"trickle", Fault{Mode: Trickle, After: 5, Every: time.Millisecond}, func(t *testing.T, c net.Conn, p *Proxy) {
			// The first After bytes may come in one read; the rest come
			// one per read.
			got := make([]byte, 0, len(greeting))
			reads := 0
			for len(got) < len(greeting) {
				b := make([]byte, 64)
				n, err := c.Read(b)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, b[:n]...)
				reads++
			}
			if !bytes.Equal(got, greeting) || reads < len(greeting)-5 {
				t.Errorf("got %q in %d reads, want %q in at least %d", got, reads, greeting, len(greeting)-5)
			}
		}},
		{"reset", Fault{Mode: Reset, After: 5}, func(t *testing.T, c net.Conn, p *Proxy) {
			if c == nil {
				return // reset before the dial returned
			}
			got, err := io.ReadAll(c)
			if !errors.Is(err, syscall.ECONNRESET) || len(got) > 5 {
				t.Errorf("read %q, %v; want at most 5 bytes then a reset", got, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := start(t, target(t, greeting), tc.fault)
			c, err := net.Dial("tcp", p.Addr())
			if err != nil && !(tc.fault.Mode == Reset && errors.Is(err, syscall.ECONNRESET)) {
				t.Fatal(err)
			}
			if c != nil {
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
			}
			tc.check(t, c, p)
			if tc.fault.Mode != Blackhole && p.Accepted() != 1 { // a blackhole may close before it accepts
				t.Errorf("accepted %d", p.Accepted())
			}
		})
	}
}

// TestLiveFaults checks Stall, ResetAll and ResetClients on a live
// connection, and that ListenAt brings a proxy back on its old port.
func TestLiveFaults(t *testing.T) {
	greeting := []byte("hi")
	to := target(t, greeting)

	p := start(t, to, Fault{})
	c := dial(t, p.Addr())
	io.ReadFull(c, make([]byte, 2))
	p.Stall()
	c.Write([]byte("lost"))
	<-p.Held()
	p.ResetAll()
	if _, err := io.ReadAll(c); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("after ResetAll: %v, want a reset", err)
	}

	c2 := dial(t, p.Addr())
	io.ReadFull(c2, make([]byte, 2))
	p.ResetClients()
	if _, err := io.ReadAll(c2); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("after ResetClients: %v, want a reset", err)
	}

	addr := p.Addr()
	p.Close()
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("a closed proxy still accepts")
	}
	q, err := ListenAt(addr, to)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	c3 := dial(t, q.Addr())
	if _, err := io.ReadFull(c3, make([]byte, 2)); err != nil {
		t.Errorf("proxy back on %s: %v", addr, err)
	}
}
