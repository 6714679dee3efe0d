package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"syscall"
)

// guardAddr is a listener address the proxy must never connect to. A
// wildcard or named host matches its port on any of the machine's own
// addresses.
type guardAddr struct {
	addr     netip.AddrPort // exact, when the host is a specific address
	port     uint16
	anyLocal bool
}

func parseGuardAddr(s string) (guardAddr, error) {
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		return guardAddr{}, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return guardAddr{}, err
	}
	g := guardAddr{port: uint16(port)}
	if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
		g.addr = netip.AddrPortFrom(ip.Unmap(), uint16(port))
		return g, nil
	}
	g.anyLocal = true
	return g, nil
}

func (g *guardAddr) matches(ap netip.AddrPort, local []netip.Addr) bool {
	if g == nil || g.port == 0 || ap.Port() != g.port {
		return false
	}
	ip := ap.Addr()
	if !g.anyLocal {
		return ip == g.addr.Addr()
	}
	if ip.IsLoopback() || ip.IsUnspecified() {
		return true
	}
	for _, l := range local {
		if l == ip {
			return true
		}
	}
	return false
}

// localAddrs lists the machine's own addresses (at start).
func localAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if pn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(pn.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// guardDial runs in the dialer just before connect(2), on the resolved
// address: deny_destinations, the admin listener and the proxy itself are
// refused however their address was named.
func (p *Proxy) guardDial(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &deniedDestError{}
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	ip := ap.Addr()
	snap := p.engine.Snapshot()
	if ip.IsUnspecified() || ip.IsMulticast() || snap.DeniedDestination(ip) ||
		!snap.Config.Proxy.DenyDestinationsSet && slices.Contains(p.localIPs, ip) ||
		p.adminAddr.matches(ap, p.localIPs) || p.selfAddr.Load().matches(ap, p.localIPs) {
		return &deniedDestError{addr: ap}
	}
	return nil
}

func newTLSConfig(roots *x509.CertPool) *tls.Config {
	return &tls.Config{
		RootCAs:            roots,
		MinVersion:         tls.VersionTLS12,
		ClientSessionCache: tls.NewLRUClientSessionCache(1024),
	}
}
