package memstore_test

import (
	"context"
	"crypto/tls"
	"net"

	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/httpstorage"
)

type netConn = net.Conn

func dialPinned(ctx context.Context, n hints.NURL) (net.Conn, error) {
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", n.Addr())
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, httpstorage.TLSConfig(n))
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return c, nil
}
