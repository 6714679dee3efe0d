package dnsfilter

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/schoolgate/schoolgate/config"
)

// dcUpstream is a domain controller's DNS: the school's AD zone and its
// reverse zone, every record with TTL ttl.
func dcUpstream(t *testing.T, addr string, ttl uint32) *scriptedUpstream {
	return newScriptedUpstream(t, func(q *dns.Msg, _ bool) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		qq := q.Question[0]
		hdr := dns.RR_Header{Name: qq.Name, Rrtype: qq.Qtype, Class: dns.ClassINET, Ttl: ttl}
		switch {
		case qq.Qtype == dns.TypeSRV && strings.EqualFold(qq.Name, "_ldap._tcp.school.local."):
			m.Answer = []dns.RR{&dns.SRV{Hdr: hdr, Priority: 0, Weight: 100, Port: 389, Target: "dc1.school.local."}}
		case qq.Qtype == dns.TypePTR:
			m.Answer = []dns.RR{&dns.PTR{Hdr: hdr, Ptr: "dc1.school.local."}}
		case qq.Qtype == dns.TypeA:
			m.Answer = []dns.RR{&dns.A{Hdr: hdr, A: net.ParseIP(addr)}}
		}
		return m
	})
}

func TestForwardZones(t *testing.T) {
	normal := newScriptedUpstream(t, func(q *dns.Msg, _ bool) *dns.Msg { return answerA(q, "192.0.2.1", 300) })
	dc := dcUpstream(t, "10.0.0.5", 0)
	sub := dcUpstream(t, "10.9.9.9", 300)
	cfg := testConfig(normal.addr)
	cfg.DNS.Forward = []config.Forward{
		{Zone: "school.local", Servers: []string{dc.addr}},
		{Zone: "labs.school.local", Servers: []string{sub.addr}},
		{Zone: "10.in-addr.arpa", Servers: []string{dc.addr}},
	}
	// A list that would block a name of the school's own zone for pupils.
	cfg.Lists = append(cfg.Lists, config.List{Category: "gambling", Domains: []string{"poker.school.local"}, Line: 9})
	e := newEnv(t, cfg)
	cases := []struct {
		name  string
		qtype uint16
		want  string
	}{
		{"_ldap._tcp.school.local", dns.TypeSRV, "dc1.school.local."},
		{"dc1.School.Local", dns.TypeA, "10.0.0.5"},
		{"poker.school.local", dns.TypeA, "10.0.0.5"}, // never filtered
		{"pc7.labs.school.local", dns.TypeA, "10.9.9.9"},
		{"5.0.0.10.in-addr.arpa", dns.TypePTR, "dc1.school.local."},
		{"www.example", dns.TypeA, "192.0.2.1"},
		{"school.local.example", dns.TypeA, "192.0.2.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.ask(studentIP, c.name, c.qtype, false, true)
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || !strings.HasSuffix(r.Answer[0].String(), c.want) {
				t.Errorf("%s: %v, want %s", rcodeOf(r), r.Answer, c.want)
			}
		})
	}
	if l := e.findLog("poker.school.local", "A"); l["verdict"] != "allow" || l["rule"] != RuleForwarded || l["profile"] != "student" {
		t.Errorf("log line %v, want allowed by rule forward", l)
	}
	// TTL 0 from the school's own server: asked again, no cache floor.
	before := dc.queries()
	e.ask(studentIP, "dc1.school.local", dns.TypeA, false, true)
	if dc.queries() != before+1 {
		t.Errorf("a TTL-0 answer of a forwarded zone was cached")
	}
	if normal.queries() != 2 {
		t.Errorf("normal upstream asked %d times, want 2", normal.queries())
	}
}

// trustedEnv serves a school whose DC (127.0.0.6) forwards to
// schoolgate; 10.1.0.0/16 is a staff network behind it.
func trustedEnv(t *testing.T, rate int) *env {
	up := standardUpstream(t)
	cfg := testConfig(up.addr)
	cfg.DNS.TrustedForwarders = []netip.Prefix{netip.MustParsePrefix(dcIP + "/32")}
	cfg.DNS.RateLimit = rate
	cfg.Networks = append(cfg.Networks, config.Network{Prefix: netip.MustParsePrefix("10.1.0.0/16"), Profile: "staff", Line: 9})
	cfg.Clients = append(cfg.Clients, netip.MustParsePrefix(dcIP+"/32"), netip.MustParsePrefix("10.1.0.0/16"))
	return newEnv(t, cfg)
}

const dcIP = "127.0.0.6"

// askECS asks from from with an ECS option naming subnet.
func (e *env) askECS(from, name string, subnet string) *dns.Msg {
	e.t.Helper()
	p := netip.MustParsePrefix(subnet)
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.SetEdns0(1232, false)
	fam := uint16(1)
	if p.Addr().Is6() {
		fam = 2
	}
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: fam,
		SourceNetmask: uint8(p.Bits()), Address: p.Addr().AsSlice()})
	r, err := e.exchange(from, m, false)
	if err != nil {
		e.t.Fatalf("asking %s from %s: %v", name, from, err)
	}
	return r
}

func TestTrustedForwarderECS(t *testing.T) {
	e := trustedEnv(t, 100000)
	// The DC forwards a pupil's query: the pupil's profile decides.
	if r := e.askECS(dcIP, "videos.example", studentIP+"/32"); r.Rcode != dns.RcodeNameError {
		t.Errorf("pupil's query via the DC: %s, want the student profile's block", rcodeOf(r))
	}
	if l := e.findLog("videos.example", "A"); l["ip"] != studentIP || l["profile"] != "student" || l["verdict"] != "block" {
		t.Errorf("log line %v, want the pupil's address and profile", l)
	}
	// A staff member's query via the DC is allowed, and the answer says
	// for whom (ECS echoed, scope = source).
	r := e.askECS(dcIP, "videos.example", staffIP+"/32")
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("staff query via the DC: %s %v", rcodeOf(r), r.Answer)
	}
	var echoed *dns.EDNS0_SUBNET
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if s, ok := o.(*dns.EDNS0_SUBNET); ok {
				echoed = s
			}
		}
	}
	if echoed == nil || echoed.SourceScope != 32 || echoed.Address.String() != staffIP {
		t.Errorf("ECS in the answer: %v, want %s/32 scope 32", echoed, staffIP)
	}
	// A network (a /24 inside the staff network): its profile, the
	// forwarder's address in the log.
	if r := e.askECS(dcIP, "videos.example", "10.1.2.0/24"); r.Rcode != dns.RcodeSuccess {
		t.Errorf("staff network via the DC: %s, want allowed", rcodeOf(r))
	}
	// ECS from anyone else is ignored: staff cannot pose as a pupil, nor
	// a pupil as staff.
	if r := e.askECS(studentIP, "videos.example", staffIP+"/32"); r.Rcode != dns.RcodeNameError {
		t.Errorf("pupil claiming a staff address by ECS: %s, want blocked", rcodeOf(r))
	}
	// A /0 source prefix opts out: it names nobody, the DC's own
	// address decides (default profile: student).
	if r := e.askECS(dcIP, "videos.example", "0.0.0.0/0"); r.Rcode != dns.RcodeNameError {
		t.Errorf("ECS /0 via the DC: %s, want the DC's own (student) profile", rcodeOf(r))
	}
	// Without ECS the DC's own address decides (default profile: student).
	if r := e.ask(dcIP, "casino.example", dns.TypeA, false, true); r.Rcode != dns.RcodeNameError {
		t.Errorf("DC without ECS: %s", rcodeOf(r))
	}
	lines := e.logLines()
	var viaNet map[string]any
	for _, l := range lines {
		if l["host"] == "videos.example" && l["profile"] == "staff" && l["ip"] == dcIP {
			viaNet = l
		}
	}
	if viaNet == nil {
		t.Errorf("no log line for the /24 query naming the forwarder and the staff profile: %v", lines)
	}
}

func TestTrustedForwarderRateLimit(t *testing.T) {
	e := trustedEnv(t, 5)
	// The DC speaks for the whole school: no limit on its own address.
	for i := range 30 {
		if r := e.ask(dcIP, "allowed.example", dns.TypeA, false, true); r.Rcode != dns.RcodeSuccess {
			t.Fatalf("query %d from the trusted DC: %s, want no rate limit", i, rcodeOf(r))
		}
	}
	// A client it names by ECS has a bucket of its own.
	refused := 0
	for range 12 {
		m := new(dns.Msg)
		m.SetQuestion("allowed.example.", dns.TypeA)
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 32, Address: net.ParseIP(floodIP).To4()}}
		c := &dns.Client{Timeout: 200 * time.Millisecond, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(dcIP)}}}
		r, _, err := c.Exchange(m, e.addr)
		if err != nil || r.Rcode == dns.RcodeRefused {
			refused++ // dropped or refused over the limit
		}
	}
	if refused == 0 {
		t.Errorf("12 queries for one ECS-named client in a burst at 5/s: none limited")
	}
	if r := e.askECS(dcIP, "allowed.example", staffIP+"/32"); r.Rcode != dns.RcodeSuccess {
		t.Errorf("another client via the same DC: %s, want its own bucket", rcodeOf(r))
	}
}

func TestClientSubnet(t *testing.T) {
	ip := net.ParseIP
	cases := []struct {
		family uint16
		bits   uint8
		addr   net.IP
		want   string // "" for none
	}{
		{1, 32, ip("10.1.2.3").To4(), "10.1.2.3/32"},
		{1, 24, ip("10.1.2.0").To4(), "10.1.2.0/24"},
		{1, 24, ip("10.1.2.77").To4(), "10.1.2.0/24"}, // host bits beyond the prefix are ignored
		{2, 128, ip("2001:db8::5"), "2001:db8::5/128"},
		{2, 56, ip("2001:db8:0:ab00::"), "2001:db8:0:ab00::/56"},
		{1, 0, ip("0.0.0.0").To4(), ""},   // opt-out
		{1, 33, ip("10.1.2.3").To4(), ""}, // longer than the family
		{2, 24, ip("10.1.2.3").To4(), ""}, // family and address disagree
		{1, 24, ip("2001:db8::1"), ""},    // likewise
		{3, 24, ip("10.1.2.3").To4(), ""}, // no such family
	}
	for _, c := range cases {
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		opt.Option = []dns.EDNS0{&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: c.family, SourceNetmask: c.bits, Address: c.addr}}
		got := ""
		if p := clientSubnet(opt); p.IsValid() {
			got = p.String()
		}
		if got != c.want {
			t.Errorf("family %d %v/%d: %q, want %q", c.family, c.addr, c.bits, got, c.want)
		}
	}
}
