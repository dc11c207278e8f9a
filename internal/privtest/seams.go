package privtest

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
)

// A Resolver is a hints.Resolver that records every name it is asked for
// and answers 127.0.0.1, so that a direct connection after a local lookup
// reaches the test's servers and shows up there.
type Resolver struct {
	mu    sync.Mutex
	names []string
}

// LookupNetIP records host and returns 127.0.0.1.
func (r *Resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	r.names = append(r.names, host)
	r.mu.Unlock()
	return []netip.Addr{ClientAddr}, nil
}

// Names returns every name looked up, in order.
func (r *Resolver) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.names)
}

// ErrTripwire is the error of every Tripwire dial.
var ErrTripwire = errors.New("privtest: direct TCP connection attempted")

// A Tripwire is a direct-TCP dialer (tubfarm.TestHooks.Direct) that never
// connects: it records the address of every dial and fails with
// ErrTripwire, so that a test proves no direct connection is even tried,
// to any address, without one leaving the machine.
type Tripwire struct {
	mu    sync.Mutex
	addrs []string
}

// Dial records addr and fails.
func (w *Tripwire) Dial(_ context.Context, _, addr string) (net.Conn, error) {
	w.mu.Lock()
	w.addrs = append(w.addrs, addr)
	w.mu.Unlock()
	return nil, ErrTripwire
}

// Addrs returns every address dialed, in order.
func (w *Tripwire) Addrs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.addrs)
}
