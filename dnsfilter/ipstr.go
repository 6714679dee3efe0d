package dnsfilter

import (
	"net/netip"
	"sync/atomic"
)

// ipStrings remembers the text form of recent client addresses for the
// log line, so that a query from a known device does not allocate it
// again. Direct-mapped and lock-free: a collision only costs the string.
type ipStrings struct {
	slots [256]atomic.Pointer[ipString]
}

type ipString struct {
	ip netip.Addr
	s  string
}

func (c *ipStrings) get(ip netip.Addr) string {
	b := ip.As16()
	h := uint32(b[15]) | uint32(b[14])<<8 // the host part varies most
	slot := &c.slots[(h^h>>8)&uint32(len(c.slots)-1)]
	if e := slot.Load(); e != nil && e.ip == ip {
		return e.s
	}
	e := &ipString{ip: ip, s: ip.String()}
	slot.Store(e)
	return e.s
}
