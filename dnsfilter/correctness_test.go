package dnsfilter

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// scriptedUpstream is a real DNS server on 127.0.0.1 (UDP and TCP, one
// port) whose answers a test writes: the misbehaving upstream.
type scriptedUpstream struct {
	addr  string
	mu    sync.Mutex
	ports []int // UDP source port of each query, in order
	tcp   atomic.Int64
}

// newScriptedUpstream starts a server answering with answer(q, tcp); a
// nil answer sends nothing.
func newScriptedUpstream(t testing.TB, answer func(q *dns.Msg, tcp bool) *dns.Msg) *scriptedUpstream {
	t.Helper()
	u := &scriptedUpstream{}
	handler := func(tcp bool) dns.HandlerFunc {
		return func(w dns.ResponseWriter, q *dns.Msg) {
			if tcp {
				u.tcp.Add(1)
			} else if a, ok := w.RemoteAddr().(*net.UDPAddr); ok {
				u.mu.Lock()
				u.ports = append(u.ports, a.Port)
				u.mu.Unlock()
			}
			if m := answer(q, tcp); m != nil {
				w.WriteMsg(m) //nolint:errcheck
			}
		}
	}
	u.addr = startDNSServers(t, handler(false), handler(true))
	return u
}

func (u *scriptedUpstream) queries() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.ports)
}

// answerA answers every A question with addr (TTL ttl), echoing EDNS.
func answerA(q *dns.Msg, addr string, ttl uint32) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	if q.Question[0].Qtype == dns.TypeA {
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl},
			A: net.ParseIP(addr)}}
	}
	if opt := q.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), opt.Do())
	}
	return m
}

// Item 2: an answer up to 2 s late is used, and does not count against
// its upstream.
func TestSlowAnswerUsed(t *testing.T) {
	var delay atomic.Int64
	delay.Store(int64(1400 * time.Millisecond))
	up := newScriptedUpstream(t, func(q *dns.Msg, _ bool) *dns.Msg {
		time.Sleep(time.Duration(delay.Load()))
		return answerA(q, "192.0.2.1", 300)
	})
	e := newEnv(t, testConfig(up.addr))
	start := time.Now()
	r := e.ask(staffIP, "far.example", dns.TypeA, false, false)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("slow answer: %s %v, want the upstream's answer after 1.4 s", rcodeOf(r), r.Answer)
	}
	if took := time.Since(start); took < 1400*time.Millisecond {
		t.Errorf("answered in %v, before the upstream did", took)
	}
	delay.Store(0)
	if r := e.ask(staffIP, "near.example", dns.TypeA, false, false); len(r.Answer) != 1 {
		t.Errorf("next query: %s %v; the slow upstream was demoted", rcodeOf(r), r.Answer)
	}
	for _, kind := range upstreamErrorKinds {
		if got := e.metric("schoolgate_dnsfilter_upstream_errors_total", "kind", kind); got != 0 {
			t.Errorf("upstream_errors_total{%s} = %v after a slow answer, want 0", kind, got)
		}
	}
}

// Item 2: a slow first upstream is not skipped next time; meanwhile the
// second one may answer.
func TestSlowFirstUpstreamNotDemoted(t *testing.T) {
	var delay atomic.Int64
	delay.Store(int64(1200 * time.Millisecond))
	first := newScriptedUpstream(t, func(q *dns.Msg, _ bool) *dns.Msg {
		time.Sleep(time.Duration(delay.Load()))
		return answerA(q, "192.0.2.1", 300)
	})
	second := newScriptedUpstream(t, func(q *dns.Msg, _ bool) *dns.Msg { return answerA(q, "192.0.2.2", 300) })
	e := newEnv(t, testConfig(first.addr, second.addr))
	if r := e.ask(staffIP, "one.example", dns.TypeA, false, false); len(r.Answer) != 1 {
		t.Fatalf("answer %v", r.Answer)
	}
	if second.queries() != 1 {
		t.Errorf("second upstream asked %d times, want 1 (asked while the first was slow)", second.queries())
	}
	time.Sleep(1500 * time.Millisecond) // the first one's answer arrives, late
	delay.Store(0)
	if r := e.ask(staffIP, "two.example", dns.TypeA, false, false); len(r.Answer) != 1 {
		t.Errorf("second query: %s %v", rcodeOf(r), r.Answer)
	}
	if first.queries() != 2 {
		t.Errorf("first upstream asked %d times, want 2: after a slow answer it was skipped", first.queries())
	}
}

// Item 2: SERVFAIL only once every upstream has had its chance.
func TestSilentUpstreamsServfailAfterAFairChance(t *testing.T) {
	silent := func(*dns.Msg, bool) *dns.Msg { return nil }
	a, b := newScriptedUpstream(t, silent), newScriptedUpstream(t, silent)
	e := newEnv(t, testConfig(a.addr, b.addr))
	start := time.Now()
	r := e.ask(staffIP, "nobody.example", dns.TypeA, false, false)
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL", rcodeOf(r))
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("SERVFAIL after %v, want after every upstream's 2 s and more", took)
	}
	if a.queries() != 1 || b.queries() != 1 {
		t.Errorf("upstreams asked %d and %d times, want 1 each", a.queries(), b.queries())
	}
}

// Item 3: consecutive misses leave from different source ports.
func TestSourcePortsRandomised(t *testing.T) {
	up := newScriptedUpstream(t, func(q *dns.Msg, _ bool) *dns.Msg { return answerA(q, "192.0.2.1", 300) })
	e := newEnv(t, testConfig(up.addr))
	for i := range 12 {
		e.ask(staffIP, "miss"+string(rune('a'+i))+".example", dns.TypeA, false, false)
	}
	up.mu.Lock()
	ports := map[int]bool{}
	for _, p := range up.ports {
		ports[p] = true
	}
	n := len(up.ports)
	up.mu.Unlock()
	if n != 12 || len(ports) < 8 {
		t.Errorf("12 misses (%d queries upstream) used %d source ports, want at least 8", n, len(ports))
	}
}

// Item 8: a UDP answer bigger than we advertised is retried over TCP,
// and the upstream stays in use.
func TestOversizedUDPAnswerRetriedOverTCP(t *testing.T) {
	up := newScriptedUpstream(t, func(q *dns.Msg, _ bool) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		for i := range 60 { // about 3,000 bytes, whatever the query advertised
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300},
				Txt: []string{strings.Repeat("x", 40) + string(rune('a'+i%26))}})
		}
		return m
	})
	e := newEnv(t, testConfig(up.addr))
	r := e.ask(staffIP, "fat.example", dns.TypeTXT, true, false)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 60 {
		t.Fatalf("answer %s with %d records, want all 60 (over TCP)", rcodeOf(r), len(r.Answer))
	}
	if up.tcp.Load() != 1 {
		t.Errorf("upstream asked %d times over TCP, want 1", up.tcp.Load())
	}
	for _, kind := range []string{errTimeout, errNetwork} {
		if got := e.metric("schoolgate_dnsfilter_upstream_errors_total", "kind", kind); got != 0 {
			t.Errorf("upstream_errors_total{%s} = %v: an oversized answer counted as a dead upstream", kind, got)
		}
	}
}

// Item 8: records outside the question's name and CNAME chain are
// dropped; AA is cleared and RA set.
func TestUpstreamAnswerScrubbed(t *testing.T) {
	up := newScriptedUpstream(t, func(q *dns.Msg, _ bool) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		m.RecursionAvailable = false
		name := q.Question[0].Name
		for _, s := range []string{
			name + " 300 IN CNAME mid.example.",
			"mid.example. 300 IN CNAME end.example.",
			"end.example. 300 IN A 192.0.2.10",
			"bank.example. 300 IN A 203.0.113.66", // not asked about: poison
		} {
			m.Answer = append(m.Answer, rr(t, s))
		}
		m.Ns = []dns.RR{rr(t, "example. 300 IN NS ns.evil."), rr(t, "evil. 300 IN NS ns.evil.")}
		m.Extra = []dns.RR{rr(t, "ns.evil. 300 IN A 203.0.113.67")}
		return m
	})
	e := newEnv(t, testConfig(up.addr))
	r := e.ask(staffIP, "start.example", dns.TypeA, false, true)
	var got []string
	for _, a := range r.Answer {
		got = append(got, a.Header().Name+"/"+dns.TypeToString[a.Header().Rrtype])
	}
	if want := "start.example./CNAME mid.example./CNAME end.example./A"; strings.Join(got, " ") != want {
		t.Errorf("answer section %v, want %s", got, want)
	}
	if len(r.Ns) != 1 || r.Ns[0].Header().Name != "example." {
		t.Errorf("authority %v, want only example.'s NS", r.Ns)
	}
	for _, x := range r.Extra {
		if x.Header().Rrtype != dns.TypeOPT {
			t.Errorf("additional record %v kept", x)
		}
	}
	if r.Authoritative || !r.RecursionAvailable {
		t.Errorf("AA=%v RA=%v, want AA clear and RA set", r.Authoritative, r.RecursionAvailable)
	}
}

// Item 5: clients get the TTL the upstream gave, counting down, never
// raised to the cache's floor.
func TestTTLNeverRaised(t *testing.T) {
	up := newScriptedUpstream(t, func(q *dns.Msg, _ bool) *dns.Msg {
		ttl := uint32(0)
		if strings.HasPrefix(q.Question[0].Name, "five.") {
			ttl = 5
		}
		return answerA(q, "192.0.2.5", ttl)
	})
	e := newEnv(t, testConfig(up.addr))
	for _, c := range []struct {
		name string
		ttl  uint32
	}{{"zero.example", 0}, {"five.example", 5}} {
		t.Run(c.name, func(t *testing.T) {
			if r := e.ask(staffIP, c.name, dns.TypeA, false, false); len(r.Answer) != 1 || r.Answer[0].Header().Ttl != c.ttl {
				t.Errorf("first answer %v, want TTL %d", r.Answer, c.ttl)
			}
			e.clock.advance(3 * time.Second)
			r := e.ask(staffIP, c.name, dns.TypeA, false, false)
			if want := c.ttl - min(c.ttl, 3); len(r.Answer) != 1 || r.Answer[0].Header().Ttl != want {
				t.Errorf("cached answer %v, want TTL %d", r.Answer, want)
			}
		})
	}
	if n := up.queries(); n != 2 {
		t.Errorf("upstream asked %d times, want 2 (the cache's floor still holds answers internally)", n)
	}
}

// Item 1: an answer the filter changed (ech stripped) claims no AD and
// carries no signature of what it changed.
func TestECHStripDropsSignaturesAndAD(t *testing.T) {
	up := newScriptedUpstream(t, func(q *dns.Msg, _ bool) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		m.AuthenticatedData = true
		name := q.Question[0].Name
		m.Answer = []dns.RR{
			rr(t, name+" 300 IN HTTPS 1 . alpn=h2 ech=AEX+DQBBpQAgACBHIwdq"),
			rr(t, name+" 300 IN RRSIG HTTPS 13 2 300 20300101000000 20200101000000 12345 example. AAAA"),
		}
		if opt := q.IsEdns0(); opt != nil {
			m.SetEdns0(opt.UDPSize(), opt.Do())
		}
		return m
	})
	e := newEnv(t, testConfig(up.addr))
	q := new(dns.Msg)
	q.SetQuestion("signed.example.", dns.TypeHTTPS)
	q.SetEdns0(1232, true)
	q.AuthenticatedData = true
	r, err := e.exchange(staffIP, q, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.AuthenticatedData {
		t.Errorf("AD set on an answer the filter changed")
	}
	for _, a := range r.Answer {
		if strings.Contains(a.String(), "ech=") {
			t.Errorf("ech kept: %v", a)
		}
		if sig, ok := a.(*dns.RRSIG); ok && sig.TypeCovered == dns.TypeHTTPS {
			t.Errorf("signature of the changed HTTPS record kept: %v", a)
		}
	}
	if len(r.Answer) != 1 {
		t.Errorf("answer %v, want the HTTPS record alone", r.Answer)
	}
}

// Item 4: EDNS queries get an OPT record in error answers too; BADVERS
// for a version beyond 0; FORMERR for a second OPT or one off the root.
func TestEDNSInErrorAnswers(t *testing.T) {
	up := newScriptedUpstream(t, func(q *dns.Msg, _ bool) *dns.Msg {
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeServerFailure)
		return m
	})
	e := newEnv(t, testConfig(up.addr))
	edns := func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.SetEdns0(1232, false)
		return m
	}
	cases := []struct {
		name  string
		q     func() *dns.Msg
		rcode int
	}{
		{"servfail", func() *dns.Msg { return edns("broken.example.", dns.TypeA) }, dns.RcodeServerFailure},
		{"notimp", func() *dns.Msg { m := edns("x.example.", dns.TypeA); m.Opcode = dns.OpcodeStatus; return m }, dns.RcodeNotImplemented},
		{"formerr no question", func() *dns.Msg { m := edns("x.example.", dns.TypeA); m.Question = nil; return m }, dns.RcodeFormatError},
		{"badvers", func() *dns.Msg { m := edns("x.example.", dns.TypeA); m.IsEdns0().SetVersion(1); return m }, dns.RcodeBadVers},
		{"two OPTs", func() *dns.Msg {
			m := edns("x.example.", dns.TypeA)
			m.Extra = append(m.Extra, responseOPT(false))
			return m
		}, dns.RcodeFormatError},
		{"OPT not at the root", func() *dns.Msg { m := edns("x.example.", dns.TypeA); m.Extra[0].Header().Name = "x.example."; return m }, dns.RcodeFormatError},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, tcp := range []bool{false, true} {
				r, err := e.exchange(staffIP, c.q(), tcp)
				if err != nil {
					t.Fatal(err)
				}
				opt := r.IsEdns0()
				if r.Rcode != c.rcode || opt == nil {
					t.Errorf("tcp=%v: %s with OPT %v, want %s with an OPT record", tcp, dns.RcodeToString[r.Rcode], opt, dns.RcodeToString[c.rcode])
				} else if opt.Version() != 0 {
					t.Errorf("tcp=%v: answered with EDNS version %d", tcp, opt.Version())
				}
			}
		})
	}
}

// Item 6: ANY keeps NXDOMAIN and CNAME (RFC 8482's minimal answer is for
// names that exist).
func TestANYKeepsNXDOMAINAndCNAME(t *testing.T) {
	up := newScriptedUpstream(t, func(q *dns.Msg, _ bool) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		switch name := q.Question[0].Name; name {
		case "gone.example.":
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{rr(t, "example. 300 IN SOA ns.example. h.example. 1 1 1 1 60")}
		case "alias.example.":
			m.Answer = []dns.RR{rr(t, "alias.example. 300 IN CNAME real.example."), rr(t, "real.example. 300 IN A 192.0.2.8")}
		case "sneaky.example.":
			m.Answer = []dns.RR{rr(t, "sneaky.example. 300 IN CNAME casino.example."), rr(t, "casino.example. 300 IN A 192.0.2.9")}
		default:
			return answerA(q, "192.0.2.7", 300)
		}
		return m
	})
	e := newEnv(t, testConfig(up.addr))
	if r := e.ask(staffIP, "gone.example", dns.TypeANY, false, false); r.Rcode != dns.RcodeNameError {
		t.Errorf("ANY for a name that does not exist: %s, want NXDOMAIN", rcodeOf(r))
	}
	r := e.ask(staffIP, "alias.example", dns.TypeANY, false, false)
	if len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != dns.TypeCNAME || r.Answer[0].(*dns.CNAME).Target != "real.example." {
		t.Errorf("ANY for an alias: %v, want its CNAME", r.Answer)
	}
	if r := e.ask(staffIP, "there.example", dns.TypeANY, false, false); len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != dns.TypeHINFO {
		t.Errorf("ANY for a plain name: %v, want HINFO RFC8482", r.Answer)
	}
	if r := e.ask(staffIP, "sneaky.example", dns.TypeANY, false, false); r.Rcode != dns.RcodeNameError {
		t.Errorf("ANY for an alias of a blocked name: %s %v, want it blocked", rcodeOf(r), r.Answer)
	}
}

// Item 7: CHAOS queries and zone transfers are refused here, other
// meta-types are FORMERR; none of them is forwarded.
func TestChaosAndMetaTypesNotForwarded(t *testing.T) {
	up := newScriptedUpstream(t, func(q *dns.Msg, _ bool) *dns.Msg { return answerA(q, "192.0.2.7", 300) })
	e := newEnv(t, testConfig(up.addr))
	cases := []struct {
		name   string
		qtype  uint16
		qclass uint16
		tcp    bool
		rcode  int
	}{
		{"version.bind.", dns.TypeTXT, dns.ClassCHAOS, false, dns.RcodeRefused},
		{"hostname.bind.", dns.TypeTXT, dns.ClassCHAOS, false, dns.RcodeRefused},
		{"id.server.", dns.TypeTXT, dns.ClassCHAOS, true, dns.RcodeRefused},
		{"example.", dns.TypeAXFR, dns.ClassINET, true, dns.RcodeRefused},
		{"example.", dns.TypeIXFR, dns.ClassINET, false, dns.RcodeRefused},
		{"example.", dns.TypeMAILB, dns.ClassINET, false, dns.RcodeNotImplemented},
		{"example.", dns.TypeTSIG, dns.ClassINET, false, dns.RcodeFormatError},
		{"example.", dns.TypeOPT, dns.ClassINET, false, dns.RcodeFormatError},
		{"example.", 200, dns.ClassINET, false, dns.RcodeFormatError},
	}
	for _, c := range cases {
		t.Run(c.name+dns.Type(c.qtype).String(), func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion(c.name, c.qtype)
			m.Question[0].Qclass = c.qclass
			r, err := e.exchange(staffIP, m, c.tcp)
			if err != nil {
				t.Fatal(err)
			}
			if r.Rcode != c.rcode {
				t.Errorf("%s, want %s", rcodeOf(r), dns.RcodeToString[c.rcode])
			}
		})
	}
	if n, tcp := up.queries(), up.tcp.Load(); n+int(tcp) != 0 {
		t.Errorf("upstream asked %d times (UDP) and %d (TCP), want never", n, tcp)
	}
	if l := e.findLog("version.bind", "TXT"); l["rule"] != RuleNotServed || l["status"] != "REFUSED" {
		t.Errorf("log line %v", l)
	}
}

// Item 9: pipelined TCP queries are answered as they complete: a slow
// miss does not hold up the answer behind it.
func TestPipelinedTCPAnsweredOutOfOrder(t *testing.T) {
	up := newScriptedUpstream(t, func(q *dns.Msg, _ bool) *dns.Msg {
		if strings.HasPrefix(q.Question[0].Name, "slow.") {
			time.Sleep(time.Second)
		}
		return answerA(q, "192.0.2.3", 300)
	})
	e := newEnv(t, testConfig(up.addr))
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(staffIP)}, Timeout: 3 * time.Second}
	nc, err := d.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &dns.Conn{Conn: nc}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	for i, name := range []string{"slow.example.", "quick.example."} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		m.Id = uint16(100 + i)
		if err := c.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	var order []uint16
	for range 2 {
		r, err := c.ReadMsg()
		if err != nil {
			t.Fatalf("reading answers: %v (got %v)", err, order)
		}
		order = append(order, r.Id)
	}
	if order[0] != 101 || order[1] != 100 {
		t.Errorf("answers came as IDs %v, want the quick one (101) before the slow one (100)", order)
	}
}
