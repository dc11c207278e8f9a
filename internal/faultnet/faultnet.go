// Package faultnet is a fault-injecting TCP proxy for tests. A [Proxy]
// listens on 127.0.0.1 and forwards each accepted connection to a target
// address, applying the [Fault] in force when the connection was accepted:
// pass bytes through, swallow the connection (a blackhole), trickle the
// target's bytes back one at a time (slowloris), or reset both sides after a
// number of bytes. Faults can also be applied to live connections: stall
// them, reset them, or reset only the client side so that the target keeps
// a half-open connection.
//
// A Proxy owns every goroutine it starts; Close stops them all and waits,
// so that tests checking for goroutine leaks stay clean.
package faultnet

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Mode is what a proxy does with a new connection.
type Mode int

const (
	// Pass forwards bytes both ways.
	Pass Mode = iota
	// Blackhole accepts the connection, reads and discards what the
	// client sends, never dials the target and never answers.
	Blackhole
	// Trickle forwards bytes both ways, but delivers the target's bytes
	// after the first Fault.After one at a time, each Fault.Every after
	// the previous one.
	Trickle
	// Reset forwards bytes both ways until the target has sent Fault.After
	// bytes to the client, then resets both sides (TCP RST).
	Reset
)

// String returns the mode's name.
func (m Mode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Blackhole:
		return "blackhole"
	case Trickle:
		return "trickle"
	case Reset:
		return "reset"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// A Fault is applied to the connections a [Proxy] accepts while it is in
// force.
type Fault struct {
	Mode Mode
	// After is, for Trickle, how many bytes from the target pass at full
	// speed first, and for Reset, how many pass before the reset.
	After int
	// Every is, for Trickle, the pause before each trickled byte.
	Every time.Duration
}

// A Proxy forwards TCP connections from its own 127.0.0.1 address to a
// target, injecting faults. It is safe for concurrent use.
type Proxy struct {
	ln   net.Listener
	done chan struct{}
	wg   sync.WaitGroup
	held chan struct{}

	mu       sync.Mutex
	target   string
	fault    Fault
	conns    map[*pair]struct{}
	accepted int
	closed   bool
}

// pair is one proxied connection: the client's side and the target's.
type pair struct {
	p      *Proxy
	client net.Conn
	target net.Conn // nil for a blackhole

	mu       sync.Mutex
	stalled  bool
	halfOpen bool // the client side was reset; keep the target side open
}

// Listen starts a proxy on 127.0.0.1 port 0 that forwards to target.
func Listen(target string) (*Proxy, error) { return ListenAt("127.0.0.1:0", target) }

// ListenAt starts a proxy on addr (for instance the address of a proxy
// closed earlier, to bring it back on the same port) that forwards to
// target.
func ListenAt(addr, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("faultnet: %w", err)
	}
	p := &Proxy{
		ln:     ln,
		done:   make(chan struct{}),
		held:   make(chan struct{}, 1),
		target: target,
		conns:  make(map[*pair]struct{}),
	}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr returns the proxy's listening address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Set makes f the fault for connections accepted from now on.
func (p *Proxy) Set(f Fault) {
	p.mu.Lock()
	p.fault = f
	p.mu.Unlock()
}

// SetTarget makes addr the target of connections accepted from now on.
func (p *Proxy) SetTarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
}

// Accepted returns how many connections the proxy has accepted.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Held delivers a value (coalesced: the channel has a buffer of one) each
// time a stalled connection receives bytes it does not forward.
func (p *Proxy) Held() <-chan struct{} { return p.held }

// Stall stops forwarding on every live connection, both ways: bytes that
// arrive are dropped and reported on Held. Connections accepted later are
// not affected.
func (p *Proxy) Stall() {
	for _, c := range p.live() {
		c.mu.Lock()
		c.stalled = true
		c.mu.Unlock()
	}
}

// ResetAll resets both sides of every live connection.
func (p *Proxy) ResetAll() {
	for _, c := range p.live() {
		c.reset(true)
	}
}

// ResetClients resets the client side of every live connection and leaves
// the target side open, silent, until Close: the target still believes the
// client is there, as after a NAT drop or a client crash.
func (p *Proxy) ResetClients() {
	for _, c := range p.live() {
		c.reset(false)
	}
}

// Close stops the listener, closes every connection and waits for every
// goroutine of the proxy. The target side of half-open connections is
// closed too.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	err := p.ln.Close()
	conns := make([]*pair, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) live() []*pair {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*pair, 0, len(p.conns))
	for c := range p.conns {
		out = append(out, c)
	}
	return out
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			nc.Close()
			return
		}
		p.accepted++
		f, target := p.fault, p.target
		c := &pair{p: p, client: nc}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go c.run(f, target)
	}
}

// run proxies one connection until both directions end.
func (c *pair) run(f Fault, target string) {
	defer c.p.wg.Done()
	defer c.forget()
	if f.Mode == Blackhole {
		io.Copy(io.Discard, c.client)
		c.close()
		return
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	tc, err := d.Dial("tcp", target)
	if err != nil {
		// The target is down: the client sees its connection reset, as
		// a refused connection would have done without the proxy.
		c.reset(true)
		return
	}
	c.mu.Lock()
	c.target = tc
	c.mu.Unlock()
	select {
	case <-c.p.done: // Close ran before the target was recorded
		c.close()
		return
	default:
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.copy(tc, c.client, Fault{}, false) // client -> target
	}()
	c.copy(c.client, tc, f, true) // target -> client
	wg.Wait()
}

// copy forwards src to dst under fault f until either side fails, then
// closes both (unless the pair is half-open, in which case the target side
// stays up).
func (c *pair) copy(dst, src net.Conn, f Fault, fromTarget bool) {
	buf := make([]byte, 32<<10)
	sent := 0
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !c.forward(dst, buf[:n], f, &sent) {
				break
			}
		}
		if err != nil {
			break
		}
	}
	c.mu.Lock()
	half := c.halfOpen
	c.mu.Unlock()
	if half && fromTarget {
		// Keep reading the target so that it can go on writing into
		// the void, as into a dead client's socket buffer.
		io.Copy(io.Discard, src)
		return
	}
	if !half {
		c.close()
	}
}

// forward writes b to dst under fault f; sent counts the bytes forwarded so
// far in this direction. It reports whether to go on.
func (c *pair) forward(dst net.Conn, b []byte, f Fault, sent *int) bool {
	c.mu.Lock()
	stalled := c.stalled
	c.mu.Unlock()
	if stalled {
		select {
		case c.p.held <- struct{}{}:
		default:
		}
		return true
	}
	switch f.Mode {
	case Reset:
		if *sent+len(b) >= f.After {
			dst.Write(b[:f.After-*sent])
			c.reset(true)
			return false
		}
	case Trickle:
		for len(b) > 0 && *sent < f.After {
			k := min(len(b), f.After-*sent)
			if _, err := dst.Write(b[:k]); err != nil {
				return false
			}
			*sent += k
			b = b[k:]
		}
		for i := range b {
			t := time.NewTimer(f.Every)
			select {
			case <-t.C:
			case <-c.p.done:
				t.Stop()
				return false
			}
			if _, err := dst.Write(b[i : i+1]); err != nil {
				return false
			}
			*sent++
		}
		return true
	}
	if _, err := dst.Write(b); err != nil {
		return false
	}
	*sent += len(b)
	return true
}

// reset sends a TCP RST to the client and, if both, to the target.
func (c *pair) reset(both bool) {
	c.mu.Lock()
	if !both {
		c.halfOpen = true
	}
	tc := c.target
	c.mu.Unlock()
	abort(c.client)
	if both && tc != nil {
		abort(tc)
	}
}

// close closes both sides.
func (c *pair) close() {
	c.client.Close()
	c.mu.Lock()
	tc := c.target
	c.mu.Unlock()
	if tc != nil {
		tc.Close()
	}
}

func (c *pair) forget() {
	c.close()
	c.p.mu.Lock()
	delete(c.p.conns, c)
	c.p.mu.Unlock()
}

// abort closes nc with SO_LINGER 0, so that the peer sees a reset rather
// than an orderly end of stream.
func abort(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	nc.Close()
}
