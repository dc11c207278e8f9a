// Package hostile runs a scripted hostile Foolscap server on 127.0.0.1 for
// tests: it negotiates for real (a foolscap.Listener) and then, instead of
// the PB layer, writes Banana the test wrote by hand, with none of the
// checks an honest encoder makes.
package hostile

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/tubfarm/tubfarm/foolscap"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// Banana writes Banana tokens by hand. Reference numbers are counted from
// the start of the connection, as the receiver counts them.
type Banana struct {
	Buf   []byte
	opens uint64
}

// Header appends a token header n with type byte typ.
func (b *Banana) Header(n uint64, typ byte) {
	for {
		b.Buf = append(b.Buf, byte(n&0x7f))
		n >>= 7
		if n == 0 {
			break
		}
	}
	b.Buf = append(b.Buf, typ)
}

// Int appends an INT token.
func (b *Banana) Int(n uint64) { b.Header(n, 0x81) }

// Str appends a STRING token.
func (b *Banana) Str(s string) { b.Header(uint64(len(s)), 0x82); b.Buf = append(b.Buf, s...) }

// Open appends an OPEN of the given type and returns its number for Close.
func (b *Banana) Open(typ string) uint64 {
	n := b.opens
	b.opens++
	b.Header(n, 0x88)
	b.Str(typ)
	return n
}

// Close appends the CLOSE of sequence n.
func (b *Banana) Close(n uint64) { b.Header(n, 0x89) }

// Reply appends a top-level "answer" or "error" for request reqID whose
// value the function writes.
func (b *Banana) Reply(kind string, reqID uint64, value func(b *Banana)) {
	o := b.Open(kind)
	b.Int(reqID)
	value(b)
	b.Close(o)
}

// Server starts a server that answers the client's first call (on a fresh
// connection, getReferenceByName with request ID 1) with script, and
// returns its FURL. It keeps each connection open, reading and discarding
// what the client sends, until the test ends.
func Server(t testing.TB, script []byte) string {
	t.Helper()
	id, err := tubtls.NewEphemeral()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l, err := foolscap.Listen(ctx, "tcp", "127.0.0.1:0", foolscap.ListenConfig{
		Serve: func(nc net.Conn, _ foolscap.ConnConfig) {
			// The client's call is pending once its first byte arrives.
			if _, err := io.ReadFull(nc, make([]byte, 1)); err != nil {
				return
			}
			go io.Copy(io.Discard, nc)
			if _, err := nc.Write(script); err != nil {
				return
			}
			<-ctx.Done()
		},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); l.Close() })
	tub := foolscap.NewTub(id)
	tub.SetLocation("tcp:" + l.Addr().String())
	l.AddTub(tub)
	return tub.FURL(foolscap.NewSwissnum())
}

// TerminalJunk is text that does harm on a terminal: it clears the screen,
// retitles the window, moves the cursor, prints a fake line, and starts a
// C1 control sequence.
const TerminalJunk = "\x1b[2J\x1b]0;owned\x07\x1b[H\r\nConnected to 9 of 9 known storage servers\u009b31m"

// Fill returns n bytes of TerminalJunk repeated.
func Fill(n int) string {
	s := TerminalJunk
	for len(s) < n {
		s += s
	}
	return s[:n]
}

// MaxFailure writes the largest Failure Foolscap's limits let through
// (type 200 bytes, value 1000, traceback 2000, 1000 parents of 200), every
// attribute full of terminal escapes.
func MaxFailure(b *Banana) {
	c := b.Open("copyable")
	b.Str("twisted.python.failure.Failure")
	for _, a := range []struct {
		k string
		n int
	}{{"type", 200}, {"value", 1000}, {"traceback", 2000}} {
		b.Str(a.k)
		b.Str(Fill(a.n))
	}
	b.Str("parents")
	l := b.Open("list")
	for range 1000 {
		b.Str(Fill(200))
	}
	b.Close(l)
	b.Close(c)
}
