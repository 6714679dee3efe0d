package dnsfilter

import (
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// FuzzHandler feeds arbitrary packets to the filter, as the server would
// after reading them, from a client and from a stranger: it must never
// panic, and must never answer a stranger with more bytes than it sent.
func FuzzHandler(f *testing.F) {
	for _, s := range []struct {
		name  string
		qtype uint16
		edns  bool
	}{
		{"allowed.example.", dns.TypeA, false},
		{"casino.example.", dns.TypeAAAA, true},
		{"www.google.co.uk.", dns.TypeA, true},
		{"use-application-dns.net.", dns.TypeA, false},
		{"ech.example.", dns.TypeHTTPS, true},
		{"x.example.", dns.TypeANY, false},
	} {
		m := new(dns.Msg)
		m.SetQuestion(s.name, s.qtype)
		if s.edns {
			m.SetEdns0(1232, true)
		}
		b, _ := m.Pack()
		f.Add(b)
	}
	// EDNS oddities, a client subnet, CHAOS and a zone transfer.
	for _, edit := range []func(*dns.Msg){
		func(m *dns.Msg) { m.IsEdns0().SetVersion(1) },
		func(m *dns.Msg) { m.Extra = append(m.Extra, responseOPT(true)) },
		func(m *dns.Msg) { m.Answer = append(m.Answer, responseOPT(false)) },
		func(m *dns.Msg) {
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 32, Address: net.ParseIP(studentIP).To4()})
		},
		func(m *dns.Msg) {
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 2, SourceNetmask: 56, Address: net.ParseIP("2001:db8::")})
		},
		func(m *dns.Msg) {
			m.Question[0] = dns.Question{Name: "version.bind.", Qtype: dns.TypeTXT, Qclass: dns.ClassCHAOS}
		},
		func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeAXFR },
	} {
		m := new(dns.Msg)
		m.SetQuestion("allowed.example.", dns.TypeA)
		m.SetEdns0(1232, false)
		edit(m)
		b, _ := m.Pack()
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(make([]byte, 12))
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})

	up := standardUpstream(f)
	cfg := testConfig(up.addr)
	cfg.DNS.TrustedForwarders = []netip.Prefix{netip.MustParsePrefix(dcIP + "/32")}
	cfg.Clients = append(cfg.Clients, cfg.DNS.TrustedForwarders...)
	e := newEnv(f, cfg)
	client := &net.UDPAddr{IP: net.ParseIP(juniorIP), Port: 5353}
	stranger := &net.UDPAddr{IP: net.ParseIP(strangerIP), Port: 5353}
	trusted := &net.UDPAddr{IP: net.ParseIP(dcIP), Port: 5353}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, from := range []*net.UDPAddr{client, stranger, trusted} {
			w := &fakeWriter{remote: from}
			e.srv.servePacket(b, w)
			if from == stranger && w.n > 0 && len(w.last) > len(b) {
				t.Fatalf("stranger sent %d bytes got %d back", len(b), len(w.last))
			}
			if w.n > 1 {
				t.Fatalf("%d answers to one packet", w.n)
			}
		}
	})
}
