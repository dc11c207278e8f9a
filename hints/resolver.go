package hints

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// A Resolver looks up the IP addresses of a host name. *[net.Resolver]
// implements it; tests inject one to prove which paths resolve names
// locally and which never do.
type Resolver interface {
	// LookupNetIP looks up host. network is "ip", "ip4" or "ip6".
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DirectTCPWithResolver is [DirectTCP] with host names resolved by r: the
// only transport in this package that ever resolves a name locally. IP
// literals are dialed without calling r. The addresses r returns are tried
// in order until one connects; the error is the first failure. A nil r
// means d's own resolver, as in DirectTCP, and a nil d the zero
// [net.Dialer].
func DirectTCPWithResolver(d *net.Dialer, r Resolver) DialFunc {
	if d == nil {
		d = new(net.Dialer)
	}
	if r == nil {
		return d.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
		if _, err := netip.ParseAddr(host); err == nil {
			return d.DialContext(ctx, network, addr)
		}
		var lookup string
		switch network {
		case "tcp":
			lookup = "ip"
		case "tcp4":
			lookup = "ip4"
		case "tcp6":
			lookup = "ip6"
		default:
			return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError(network)}
		}
		ips, err := r.LookupNetIP(ctx, lookup, host)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
		if len(ips) == 0 {
			return nil, &net.OpError{Op: "dial", Net: network,
				Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
		}
		var first error
		for _, ip := range ips {
			c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
			if err == nil {
				return c, nil
			}
			if first == nil {
				first = err
			}
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				break
			}
		}
		return nil, first
	}
}
