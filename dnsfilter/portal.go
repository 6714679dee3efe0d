package dnsfilter

import (
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// RulePortal: portal.hostname, answered by the filter itself with the
// gateway's address for the sign-in page (docs/identity.md, docs/dns.md).
const RulePortal = "portal"

// portalTTL is how long clients may keep the portal's address: short, so
// that a changed portal.listen (or a device moving to another network of
// the gateway's) takes effect within a minute.
const portalTTL = 60

// portalName is what the filter answers for portal.hostname.
type portalName struct {
	name string // portal.hostname, normalised as request.host is; "": no portal
	// addr is portal.listen's address; the zero Addr when portal.listen
	// names none (":8443", "0.0.0.0:8443", "[::]:8443", a host name other
	// than localhost): then each query gets the address it arrived at.
	addr netip.Addr
}

// newPortalName: hostname is the snapshot's portal.hostname, listen the
// running portal's (Options.PortalListen); without either, no name.
func newPortalName(hostname, listen string) portalName {
	if hostname == "" || listen == "" {
		return portalName{}
	}
	return portalName{name: hostname, addr: listenAddr(listen)}
}

// listenAddr is the address a listen address binds, or the zero Addr
// when it binds every address (or names a host other than localhost).
func listenAddr(listen string) netip.Addr {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return netip.Addr{}
	}
	if strings.EqualFold(host, "localhost") {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}) // where Go's listener binds it
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.IsUnspecified() {
		return netip.Addr{}
	}
	return a.Unmap()
}

// portal answers portal.hostname, for every client and never from
// upstream: A or AAAA with the portal's address (see portalAddr), any
// other type (and the family the address is not of) NOERROR with no
// records, and an SOA so that the client keeps that for portalTTL.
func (s *Server) portal(r *request) action {
	p := &r.set.portal
	if p.name == "" || r.host != p.name {
		return next
	}
	r.rule = RulePortal
	m := s.reply(r)
	m.Authoritative = true
	hdr := dns.RR_Header{Name: r.question.Name, Rrtype: r.question.Qtype, Class: dns.ClassINET, Ttl: portalTTL}
	switch qt := r.question.Qtype; qt {
	case dns.TypeA, dns.TypeAAAA, dns.TypeANY:
		a := s.portalAddr(r, p)
		switch {
		case a.Is4() && qt != dns.TypeAAAA:
			hdr.Rrtype = dns.TypeA
			m.Answer = []dns.RR{&dns.A{Hdr: hdr, A: a.AsSlice()}}
		case a.Is6() && qt != dns.TypeA:
			hdr.Rrtype = dns.TypeAAAA
			m.Answer = []dns.RR{&dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()}}
		}
	}
	if len(m.Answer) == 0 {
		soa := blockSOA(r.question.Name)
		soa.Hdr.Ttl, soa.Minttl = portalTTL, portalTTL
		m.Ns = []dns.RR{soa}
	}
	s.writeMsg(r, m)
	return done
}

// portalAddr is the gateway's address for the portal, as the client r
// is for can reach it: portal.listen's when it names one, else the
// address the query arrived at. TCP connections and UDP sockets bound to
// one address know it; miekg's server on a wildcard UDP socket reads it
// (IP_PKTINFO) but does not tell, so there the kernel is asked which of
// our addresses it would answer the client from (a route lookup: a UDP
// socket connected, never sent on). That is a few system calls, on this
// name's queries alone, never on the hot path. Reading IP_PKTINFO
// ourselves was the other choice, and was not taken: the UDP read loop
// (udp.go), the hot path, runs only on sockets bound to one address,
// whose own address is the destination, so it would have carried a
// control message per packet for nothing; and on a wildcard socket
// miekg's server keeps the destination to itself.
func (s *Server) portalAddr(r *request, p *portalName) netip.Addr {
	if p.addr.IsValid() {
		return p.addr
	}
	var local netip.Addr
	switch a := r.w.LocalAddr().(type) {
	case *net.UDPAddr:
		local = a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		local = a.AddrPort().Addr().Unmap()
	}
	if !local.IsValid() || local.IsUnspecified() {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(r.ip, 53)))
		if err != nil {
			return netip.Addr{}
		}
		defer c.Close()
		local = c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	}
	return answerable(local)
}

// answerable is a, or the zero Addr when a is no use in an answer: an
// IPv6 link-local address (a query to fe80::…%eth0) means nothing
// without its interface, which an AAAA record cannot carry; the client
// then takes the A answer.
func answerable(a netip.Addr) netip.Addr {
	if a.IsLinkLocalUnicast() {
		return netip.Addr{}
	}
	return a.WithZone("")
}
