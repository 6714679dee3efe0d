package identity

import (
	"context"
	"net"
)

// netDialer dials from a chosen loopback address.
type netDialer struct{ local string }

func (d *netDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(d.local)}}
	return nd.DialContext(ctx, network, addr)
}
