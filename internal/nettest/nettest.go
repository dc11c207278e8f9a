// Package nettest has the small loopback servers that tests of several
// packages need: a server that runs a script on every connection, an echo
// server, and an address nobody listens on. Everything binds 127.0.0.1 and
// is closed, with its goroutines joined, when the test ends.
package nettest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Serve runs fn on every connection accepted on a new 127.0.0.1 listener
// and returns the listener's address. When the test ends the listener and
// every connection are closed and every goroutine is joined; fn must return
// once its connection is closed.
func Serve(t testing.TB, fn func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				fn(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// Echo starts a server that echoes every connection until it closes.
func Echo(t testing.TB) string {
	t.Helper()
	return Serve(t, func(c net.Conn) { io.Copy(c, c) })
}

// RefusedAddr returns a 127.0.0.1 address that nobody listens on (a port
// that was free a moment ago).
func RefusedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
