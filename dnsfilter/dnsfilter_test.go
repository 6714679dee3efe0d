package dnsfilter

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/common/expfmt"

	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/identity"
	"github.com/schoolgate/schoolgate/policy"
)

// standardUpstream serves the records the tests ask about.
func standardUpstream(t testing.TB) *fakeUpstream {
	t.Helper()
	recs := []string{
		"forcesafesearch.google.com. 300 IN A 216.239.38.120",
		"forcesafesearch.google.com. 300 IN AAAA 2001:4860:4802:32::78",
		"strict.bing.com. 300 IN A 204.79.197.220",
		"safe.duckduckgo.com. 300 IN A 52.142.124.215",
		"restrict.youtube.com. 300 IN A 216.239.38.119",
		"restrict.youtube.com. 300 IN AAAA 2001:4860:4802:32::77",
		"ech.example. 300 IN HTTPS 1 . mandatory=alpn,ech alpn=h2,h3 ech=AEX+DQBBpQAgACBHIwdq",
		"echonly.example. 300 IN HTTPS 1 . mandatory=ech ech=AEX+DQBBpQAgACBHIwdq port=443",
		"svcb.example. 300 IN SVCB 1 svc.example. ech=AEX+DQBBpQAgACBHIwdq alpn=h2",
		"allowed.example. 300 IN AAAA 2001:db8::1",
		"allowed.example. 300 IN MX 10 mail.allowed.example.",
		"clip.example. 300 IN CNAME cdn.videos.example.",
		"clip.example. 300 IN A 192.0.2.50",
	}
	for i := range 40 {
		recs = append(recs, "big.example. 300 IN TXT \"this is a long text record number "+strings.Repeat("x", 20)+string(rune('a'+i%26))+"\"")
	}
	return newFakeUpstream(t, "192.0.2.99", recs...)
}

func rcodeOf(m *dns.Msg) string { return dns.RcodeToString[m.Rcode] }

func TestBlockedAllowedPerProfileAndSource(t *testing.T) {
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	tests := []struct {
		from, name string
		qtype      uint16
		rcode      string
		verdict    string
		profile    string
	}{
		{studentIP, "casino.example", dns.TypeA, "NXDOMAIN", "block", "student"},
		{studentIP, "www.casino.example", dns.TypeAAAA, "NXDOMAIN", "block", "student"},
		{studentIP, "casino.example", dns.TypeMX, "NXDOMAIN", "block", "student"},
		{studentIP, "videos.example", dns.TypeA, "NXDOMAIN", "block", "student"},
		{studentIP, "allowed.example", dns.TypeA, "NOERROR", "allow", "student"},
		{studentIP, "school.example", dns.TypeA, "NOERROR", "allow", "student"},
		{staffIP, "casino.example", dns.TypeA, "NXDOMAIN", "block", "staff"},
		{staffIP, "videos.example", dns.TypeA, "NOERROR", "allow", "staff"},
		{staffIP, "allowed.example", dns.TypeMX, "NOERROR", "allow", "staff"},
		{"127.0.0.1", "videos.example", dns.TypeTXT, "NXDOMAIN", "block", "student"}, // default_profile
	}
	for _, tc := range tests {
		t.Run(tc.from+"/"+tc.name+"/"+dns.TypeToString[tc.qtype], func(t *testing.T) {
			r := e.ask(tc.from, tc.name, tc.qtype, false, false)
			if got := rcodeOf(r); got != tc.rcode {
				t.Fatalf("rcode = %s, want %s", got, tc.rcode)
			}
			if tc.verdict == "block" {
				if len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA || r.Ns[0].Header().Ttl != blockTTL {
					t.Errorf("blocked answer authority = %v, want one SOA with TTL %d", r.Ns, blockTTL)
				}
				if len(r.Answer) != 0 {
					t.Errorf("blocked answer has answers: %v", r.Answer)
				}
			} else if len(r.Answer) == 0 {
				t.Errorf("allowed answer is empty")
			}
			l := e.findLog(tc.name, dns.TypeToString[tc.qtype])
			want := map[string]any{"src": "dns", "ip": tc.from, "profile": tc.profile, "verdict": tc.verdict,
				"status": tc.rcode, "url": ""}
			for k, v := range want {
				if l[k] != v {
					t.Errorf("log %s = %v, want %v (line %v)", k, l[k], v, l)
				}
			}
			if tc.verdict == "block" && !strings.HasPrefix(l["rule"].(string), tc.profile+"#") {
				t.Errorf("log rule = %v, want %s#N", l["rule"], tc.profile)
			}
			if b, _ := l["bytes"].(float64); int(b) != r.Len() && b <= 0 {
				t.Errorf("log bytes = %v, answer was %d bytes", l["bytes"], r.Len())
			}
		})
	}
	if got := e.metric("schoolgate_dnsfilter_queries_total", "verdict", "block", "qtype", "A", "rcode", "NXDOMAIN"); got != 3 {
		t.Errorf("queries_total{block,A,NXDOMAIN} = %v, want 3", got)
	}
	if got := e.metric("schoolgate_dnsfilter_queries_total", "verdict", "block", "qtype", "other", "rcode", "NXDOMAIN"); got != 0 {
		t.Errorf("queries_total{block,other,NXDOMAIN} = %v, want 0 (TXT and MX are named)", got)
	}
	if got := e.metric("schoolgate_dnsfilter_request_duration_seconds"); got != float64(len(tests)) {
		t.Errorf("request_duration_seconds count = %v, want %d", got, len(tests))
	}
}

// TestIdentityDecides: the user the identity table holds for an address
// is named in its DNS lines, and the profile its source named decides
// (a staff member signed in at a student-network address gets staff's
// rules, as their web requests do).
func TestIdentityDecides(t *testing.T) {
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	ip := netip.MustParseAddr(studentIP)
	if r := e.ask(studentIP, "videos.example", dns.TypeA, false, false); r.Rcode != dns.RcodeNameError {
		t.Fatalf("videos.example for the student network = %s, want NXDOMAIN (streaming blocked)", rcodeOf(r))
	}
	now := e.clock.now()
	e.ids.Set(ip, identity.Entry{User: "mr.smith", Profile: "staff", Source: identity.SourceRADIUS, Since: now, Until: now.Add(time.Hour)})
	if r := e.ask(studentIP, "videos.example", dns.TypeAAAA, false, false); r.Rcode != dns.RcodeSuccess {
		t.Errorf("videos.example for mr.smith = %s, want NOERROR (staff allow streaming)", rcodeOf(r))
	}
	l := e.findLog("videos.example", "AAAA")
	if l["user"] != "mr.smith" || l["profile"] != "staff" || l["verdict"] != "allow" {
		t.Errorf("line user/profile/verdict = %v/%v/%v, want mr.smith/staff/allow", l["user"], l["profile"], l["verdict"])
	}
	// Signed out: the network's profile again.
	e.ids.Remove(ip, "mr.smith")
	if r := e.ask(studentIP, "videos.example", dns.TypeMX, false, false); r.Rcode != dns.RcodeNameError {
		t.Errorf("videos.example after sign-out = %s, want NXDOMAIN", rcodeOf(r))
	}
	// An entry past its end names nobody.
	e.ids.Set(ip, identity.Entry{User: "old", Source: identity.SourceAPI, Since: now, Until: e.clock.now()})
	e.ask(studentIP, "school.example", dns.TypeA, false, false)
	if l := e.findLog("school.example", "A"); l["user"] != "" || l["profile"] != "student" {
		t.Errorf("expired entry: user/profile = %v/%v, want \"\"/student", l["user"], l["profile"])
	}
}

func TestLogNamesRecentUser(t *testing.T) {
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	now := e.clock.now()
	e.ids.Saw(netip.MustParseAddr(studentIP), "alice", "", identity.SourceProxyAuth, 15*time.Minute, now)
	e.ask(studentIP, "Casino.Example", dns.TypeA, false, false)
	l := e.findLog("casino.example", "A")
	if l["user"] != "alice" || l["profile"] != "student" {
		t.Errorf("log user/profile = %v/%v, want alice/student", l["user"], l["profile"])
	}
	if cats, _ := l["categories"].([]any); len(cats) != 1 || cats[0] != "gambling" {
		t.Errorf("log categories = %v, want [gambling]", l["categories"])
	}
	// Another address does not inherit alice.
	e.ask(staffIP, "casino.example", dns.TypeAAAA, false, false)
	if l := e.findLog("casino.example", "AAAA"); l["user"] != "" {
		t.Errorf("staff line user = %v, want \"\"", l["user"])
	}
}

func TestBlockedAnswerNull(t *testing.T) {
	up := standardUpstream(t)
	cfg := testConfig(up.addr)
	cfg.DNS.BlockedAnswer = "null"
	e := newEnv(t, cfg)
	r := e.ask(studentIP, "casino.example", dns.TypeA, false, false)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "0.0.0.0" || r.Rcode != dns.RcodeSuccess {
		t.Errorf("null A = %s %v, want NOERROR 0.0.0.0", rcodeOf(r), r.Answer)
	}
	r = e.ask(studentIP, "casino.example", dns.TypeAAAA, false, false)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.AAAA).AAAA.String() != "::" {
		t.Errorf("null AAAA = %v, want ::", r.Answer)
	}
	r = e.ask(studentIP, "casino.example", dns.TypeHTTPS, false, false)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 1 {
		t.Errorf("null HTTPS = %s answer %v ns %v, want NODATA with an SOA", rcodeOf(r), r.Answer, r.Ns)
	}
	if up.count("casino.example.", "A")+up.count("casino.example.", "HTTPS") != 0 {
		t.Errorf("a blocked name went upstream")
	}
	if l := e.findLog("casino.example", "HTTPS"); l["verdict"] != "block" || l["status"] != "NOERROR" {
		t.Errorf("null-mode log line %v", l)
	}
	if got := e.metric("schoolgate_dnsfilter_queries_total", "verdict", "block", "rcode", "NOERROR"); got != 3 {
		t.Errorf("queries_total{block,NOERROR} = %v, want 3", got)
	}
}

func TestExtendedDNSError(t *testing.T) {
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	for _, edns := range []bool{true, false} {
		r := e.ask(studentIP, "casino.example", dns.TypeA, false, edns)
		opt := r.IsEdns0()
		if !edns {
			if opt != nil {
				t.Errorf("OPT in the answer to a query without EDNS")
			}
			continue
		}
		if opt == nil {
			t.Fatal("no OPT in the answer to an EDNS query")
		}
		var ede *dns.EDNS0_EDE
		for _, o := range opt.Option {
			if x, ok := o.(*dns.EDNS0_EDE); ok {
				ede = x
			}
		}
		if ede == nil || ede.InfoCode != dns.ExtendedErrorCodeBlocked {
			t.Errorf("EDE = %v, want info-code 15 (Blocked)", ede)
		}
	}
	if got := e.metric("schoolgate_dnsfilter_queries_total", "verdict", "block"); got != 2 {
		t.Errorf("queries_total{block} = %v, want 2", got)
	}
	// An allowed answer carries no EDE.
	r := e.ask(studentIP, "allowed.example", dns.TypeA, false, true)
	if opt := r.IsEdns0(); opt == nil || len(opt.Option) != 0 {
		t.Errorf("allowed EDNS answer OPT = %v, want an OPT without options", opt)
	}
}

func TestSafeSearchEveryMapping(t *testing.T) {
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	wantA := map[string]string{
		"forcesafesearch.google.com.": "216.239.38.120",
		"strict.bing.com.":            "204.79.197.220",
		"safe.duckduckgo.com.":        "52.142.124.215",
		"restrict.youtube.com.":       "216.239.38.119",
	}
	perProvider := map[string]int{}
	for _, host := range policy.SafeSearchHosts() {
		p := policy.SafeSearchFor(host, false)
		target := dns.Fqdn(p.Target)
		perProvider[p.Engine]++
		r := e.ask(juniorIP, host, dns.TypeA, false, false)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
			t.Errorf("%s: %s %v, want CNAME + A", host, rcodeOf(r), r.Answer)
			continue
		}
		c, ok := r.Answer[0].(*dns.CNAME)
		if !ok || c.Target != target || c.Hdr.Name != host+"." {
			t.Errorf("%s: first answer %v, want CNAME to %s", host, r.Answer[0], target)
		}
		if a, ok := r.Answer[1].(*dns.A); !ok || a.A.String() != wantA[target] || a.Hdr.Name != target {
			t.Errorf("%s: second answer %v, want %s A %s", host, r.Answer[1], target, wantA[target])
		}
	}
	for _, h := range []string{"google.co.uk", "www.google.fr", "google.com", "www.youtube-nocookie.com",
		"youtubei.googleapis.com", "m.youtube.com", "bing.com", "duckduckgo.com"} {
		if policy.SafeSearchFor(h, false) == nil {
			t.Errorf("%s has no SafeSearch mapping", h)
		}
	}
	if policy.SafeSearchFor("notgoogle.com", false) != nil {
		t.Errorf("notgoogle.com is mapped")
	}
	if l := e.findLog("www.bing.com", "A"); l["safe_search"] != true {
		t.Errorf("safe search log line has no \"safe_search\": true: %v", l)
	}
	// AAAA: the target's AAAA.
	r := e.ask(juniorIP, "www.youtube.com", dns.TypeAAAA, false, false)
	if len(r.Answer) != 2 || r.Answer[1].(*dns.AAAA).AAAA.String() != "2001:4860:4802:32::77" {
		t.Errorf("youtube AAAA = %v", r.Answer)
	}
	// The target was fetched once per type, then cached.
	if n := up.count("forcesafesearch.google.com.", "A"); n != 1 {
		t.Errorf("upstream asked %d times for forcesafesearch.google.com A, want 1", n)
	}
	// A blocked engine stays blocked: students block streaming (YouTube).
	if r := e.ask(studentIP, "www.youtube.com", dns.TypeA, false, false); r.Rcode != dns.RcodeNameError {
		t.Errorf("student www.youtube.com = %s, want NXDOMAIN (blocked before safe search)", rcodeOf(r))
	}
	if r := e.ask(studentIP, "www.google.de", dns.TypeA, false, false); len(r.Answer) != 2 {
		t.Errorf("student www.google.de = %v, want CNAME + A", r.Answer)
	}
	// Staff (safe_search: false) get the real answer.
	r = e.ask(staffIP, "www.google.com", dns.TypeA, false, false)
	if len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != dns.TypeA {
		t.Errorf("staff www.google.com = %v, want the upstream's A", r.Answer)
	}
	for name, n := range perProvider {
		if got := e.metric("schoolgate_dnsfilter_safesearch_rewrites_total", "provider", name); got < float64(n) {
			t.Errorf("safesearch_rewrites_total{%s} = %v, want >= %d", name, got, n)
		}
	}
	if l := e.findLog("www.google.co.uk", "A"); l["verdict"] != "allow" || l["status"] != "NOERROR" {
		t.Errorf("safe search log line = %v", l)
	}
}

func TestCanary(t *testing.T) {
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	for _, from := range []string{studentIP, staffIP} {
		r := e.ask(from, "use-application-dns.net", dns.TypeA, false, false)
		if r.Rcode != dns.RcodeNameError {
			t.Errorf("canary from %s: %s, want NXDOMAIN", from, rcodeOf(r))
		}
	}
	if up.count("use-application-dns.net.", "A") != 0 {
		t.Error("canary went upstream")
	}
	if l := e.findLog("use-application-dns.net", "A"); l["rule"] != RuleCanary || l["status"] != "NXDOMAIN" {
		t.Errorf("canary log = %v", l)
	}
	if got := e.metric("schoolgate_dnsfilter_queries_total", "verdict", "block", "qtype", "A", "rcode", "NXDOMAIN"); got != 2 {
		t.Errorf("queries_total{block,A,NXDOMAIN} = %v, want 2", got)
	}
}

func TestECHStripped(t *testing.T) {
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	check := func(name string, qtype uint16, wantMandatory string) {
		t.Helper()
		for round := range 2 { // from the upstream, then from the cache
			r := e.ask(studentIP, name, qtype, false, true)
			if len(r.Answer) != 1 {
				t.Fatalf("%s round %d: answer %v", name, round, r.Answer)
			}
			var svcb *dns.SVCB
			switch x := r.Answer[0].(type) {
			case *dns.HTTPS:
				svcb = &x.SVCB
			case *dns.SVCB:
				svcb = x
			}
			text := r.Answer[0].String()
			if strings.Contains(text, "ech=") {
				t.Errorf("%s round %d: ech left in %s", name, round, text)
			}
			var mandatory string
			for _, kv := range svcb.Value {
				if m, ok := kv.(*dns.SVCBMandatory); ok {
					mandatory = m.String()
				}
			}
			if mandatory != wantMandatory {
				t.Errorf("%s round %d: mandatory=%q, want %q (%s)", name, round, mandatory, wantMandatory, text)
			}
		}
	}
	check("ech.example", dns.TypeHTTPS, "alpn")
	check("echonly.example", dns.TypeHTTPS, "")
	check("svcb.example", dns.TypeSVCB, "")
	if l := e.findLog("ech.example", "HTTPS"); l["verdict"] != "allow" || l["status"] != "NOERROR" {
		t.Errorf("ECH log line %v", l)
	}
	if got := e.metric("schoolgate_dnsfilter_queries_total", "qtype", "HTTPS"); got != 4 {
		t.Errorf("queries_total{qtype=HTTPS} = %v, want 4", got)
	}
	if h, m := e.metric("schoolgate_dnsfilter_cache_hits_total"), e.metric("schoolgate_dnsfilter_cache_misses_total"); h != 3 || m != 3 {
		t.Errorf("cache hits/misses = %v/%v, want 3/3", h, m)
	}
}

func TestTCP(t *testing.T) {
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	r := e.ask(staffIP, "allowed.example", dns.TypeA, true, false)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.99" {
		t.Errorf("TCP answer = %v", r.Answer)
	}
	r = e.ask(studentIP, "casino.example", dns.TypeA, true, true)
	if r.Rcode != dns.RcodeNameError {
		t.Errorf("TCP blocked = %s", rcodeOf(r))
	}
	if l := e.findLog("allowed.example", "A"); l["ip"] != staffIP || l["status"] != "NOERROR" || l["bytes"].(float64) < 40 {
		t.Errorf("TCP log line %v", l)
	}
}

func TestTruncation(t *testing.T) {
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	// The upstream truncates to our 1232 bytes: the filter retries over TCP.
	full := e.ask(staffIP, "big.example", dns.TypeTXT, true, false)
	if len(full.Answer) != 40 || full.Truncated {
		t.Fatalf("TCP: %d answers (TC=%v), want all 40", len(full.Answer), full.Truncated)
	}
	if up.count("big.example.", "TXT") != 2 {
		t.Errorf("upstream asked %d times, want 2 (UDP, then TCP; then cached)", up.count("big.example.", "TXT"))
	}
	// A client without EDNS gets at most 512 bytes with TC set, from the cache.
	m := new(dns.Msg)
	m.SetQuestion("big.example.", dns.TypeTXT)
	n, small := e.rawExchange(staffIP, m)
	if !small.Truncated || n > 512 {
		t.Errorf("UDP 512: TC=%v len=%d, want TC and <= 512", small.Truncated, n)
	}
	// An EDNS client advertising 1232 gets up to 1232.
	m.SetEdns0(1232, false)
	n, r := e.rawExchange(staffIP, m)
	if !r.Truncated || n > 1232 || n <= 512 {
		t.Errorf("UDP 1232: TC=%v len=%d", r.Truncated, n)
	}
	// One advertising less than 512 is treated as 512 (RFC 6891).
	m.Extra = nil
	m.SetEdns0(300, false)
	if n, r := e.rawExchange(staffIP, m); !r.Truncated || n > 512 {
		t.Errorf("UDP 300: TC=%v len=%d", r.Truncated, n)
	}
	if l := e.findLog("big.example", "TXT"); int(l["bytes"].(float64)) > 512 {
		t.Errorf("log bytes = %v, sent at most 512", l["bytes"])
	}
}

func TestFailoverDeadFirstUpstream(t *testing.T) {
	up := standardUpstream(t)
	// A socket that never answers: packets to it vanish.
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	e := newEnv(t, testConfig(dead.LocalAddr().String(), up.addr))
	start := time.Now()
	r := e.ask(staffIP, "first.example", dns.TypeA, false, false)
	took := time.Since(start)
	if len(r.Answer) != 1 {
		t.Fatalf("answer %v", r.Answer)
	}
	if took > 900*time.Millisecond {
		t.Errorf("first query with a dead upstream took %v, want well under a second", took)
	}
	// The dead one had its full chance (tryTimeout) before it counts as
	// failed; from then on it is skipped.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if e.metric("schoolgate_dnsfilter_upstream_errors_total", "upstream", dead.LocalAddr().String(), "kind", "timeout") == 1 {
			break
		}
	}
	start = time.Now()
	e.ask(staffIP, "second.example", dns.TypeA, false, false)
	if took := time.Since(start); took > 200*time.Millisecond {
		t.Errorf("second query took %v; the dead upstream was not skipped", took)
	}
	if got := e.metric("schoolgate_dnsfilter_upstream_errors_total", "upstream", dead.LocalAddr().String(), "kind", "timeout"); got != 1 {
		t.Errorf("upstream_errors_total{dead,timeout} = %v, want 1", got)
	}
	if l := e.findLog("first.example", "A"); l["status"] != "NOERROR" || l["ms"].(float64) < 400 {
		t.Errorf("failover log line %v, want NOERROR after the first one's 400 ms alone", l)
	}
	if got := e.metric("schoolgate_dnsfilter_upstream_duration_seconds", "upstream", up.addr); got != 2 {
		t.Errorf("upstream_duration_seconds{good} count = %v, want 2", got)
	}
}

func TestAllUpstreamsDeadServfail(t *testing.T) {
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	e := newEnv(t, testConfig(dead.LocalAddr().String()))
	r := e.ask(staffIP, "x.example", dns.TypeA, false, false)
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode = %s, want SERVFAIL", rcodeOf(r))
	}
	if l := e.findLog("x.example", "A"); l["status"] != "SERVFAIL" {
		t.Errorf("log = %v", l)
	}
}

func TestNonClientRefused(t *testing.T) {
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	m := new(dns.Msg)
	m.SetQuestion("allowed.example.", dns.TypeANY)
	m.SetEdns0(4096, true)
	q, _ := m.Pack()
	qlen := len(q)
	rlen, r := e.rawExchange(strangerIP, m)
	if r.Rcode != dns.RcodeRefused || len(r.Answer)+len(r.Ns)+len(r.Extra) != 0 {
		t.Errorf("stranger got %s with %d records, want a bare REFUSED", rcodeOf(r), len(r.Answer)+len(r.Ns)+len(r.Extra))
	}
	if rlen > qlen {
		t.Errorf("answer to a stranger is %d bytes, query was %d: amplification", rlen, qlen)
	}
	if up.count("allowed.example.", "ANY") != 0 {
		t.Error("a stranger's query went upstream")
	}
	l := e.findLog("allowed.example", "ANY")
	if l["rule"] != "not_a_client" || l["status"] != "REFUSED" || l["verdict"] != "block" {
		t.Errorf("log = %v", l)
	}
	if got := e.metric("schoolgate_dnsfilter_queries_total", "verdict", "block", "rcode", "REFUSED"); got != 1 {
		t.Errorf("queries_total{block,REFUSED} = %v", got)
	}
}

func TestANYMinimal(t *testing.T) {
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	r := e.ask(staffIP, "allowed.example", dns.TypeANY, false, false)
	if len(r.Answer) != 1 {
		t.Fatalf("ANY answer %v", r.Answer)
	}
	if h, ok := r.Answer[0].(*dns.HINFO); !ok || h.Cpu != "RFC8482" {
		t.Errorf("ANY answer %v, want HINFO RFC8482", r.Answer[0])
	}
	if r := e.ask(studentIP, "casino.example", dns.TypeANY, false, false); r.Rcode != dns.RcodeNameError {
		t.Errorf("ANY for a blocked name: %s", rcodeOf(r))
	}
}

func TestRateLimit(t *testing.T) {
	up := standardUpstream(t)
	cfg := testConfig(up.addr)
	cfg.DNS.RateLimit = 5
	e := newEnv(t, cfg)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(floodIP)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to, _ := net.ResolveUDPAddr("udp", e.addr)
	const sent = 12
	for i := range sent {
		m := new(dns.Msg)
		m.SetQuestion("allowed.example.", dns.TypeA)
		m.Id = uint16(i + 1)
		b, _ := m.Pack()
		if _, err := conn.WriteToUDP(b, to); err != nil {
			t.Fatal(err)
		}
	}
	rcodes := map[int]int{}
	conn.SetReadDeadline(time.Now().Add(700 * time.Millisecond)) //nolint:errcheck
	buf := make([]byte, 2048)
	for {
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			break
		}
		m := new(dns.Msg)
		if m.Unpack(buf[:n]) == nil {
			rcodes[m.Rcode]++
		}
	}
	if rcodes[dns.RcodeSuccess] != 5 || rcodes[dns.RcodeRefused] != 1 {
		t.Errorf("answers by rcode %v, want 5 NOERROR and 1 REFUSED (the rest dropped)", rcodes)
	}
	if got := e.metric("schoolgate_dnsfilter_rate_limited_total"); got != sent-5 {
		t.Errorf("rate_limited_total = %v, want %d", got, sent-5)
	}
	n := 0
	for _, l := range e.logLines() {
		if l["rule"] == RuleRateLimited {
			n++
			if l["status"] != "REFUSED" || l["ip"] != floodIP || l["profile"] != "student" {
				t.Errorf("rate-limited line %v", l)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d rate_limited log lines, want 1 for the second", n)
	}
	// Other clients are not affected.
	if r := e.ask(staffIP, "allowed.example", dns.TypeA, false, false); r.Rcode != dns.RcodeSuccess {
		t.Errorf("staff after the flood: %s", rcodeOf(r))
	}
}

func TestGarbageThenService(t *testing.T) {
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(studentIP)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to, _ := net.ResolveUDPAddr("udp", e.addr)
	noQ := new(dns.Msg)
	noQ.Id = 7
	noQB, _ := noQ.Pack()
	twoQ := new(dns.Msg)
	twoQ.Id = 8
	twoQ.Question = []dns.Question{{Name: "a.example.", Qtype: dns.TypeA, Qclass: dns.ClassINET}, {Name: "b.example.", Qtype: dns.TypeA, Qclass: dns.ClassINET}}
	twoQB, _ := twoQ.Pack()
	resp := new(dns.Msg)
	resp.SetQuestion("allowed.example.", dns.TypeA)
	resp.Response = true
	respB, _ := resp.Pack()
	packets := [][]byte{
		{}, {0x01}, []byte("GET / HTTP/1.1\r\n\r\n"), make([]byte, 12), make([]byte, 600),
		{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, 'a'},              // a label running off the end
		{0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}, // a pointer loop
		respB, noQB, twoQB,
	}
	for _, p := range packets {
		conn.WriteToUDP(p, to) //nolint:errcheck
	}
	formerr := 0
	conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond)) //nolint:errcheck
	buf := make([]byte, 2048)
	for {
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			break
		}
		m := new(dns.Msg)
		if m.Unpack(buf[:n]) == nil && m.Rcode == dns.RcodeFormatError {
			formerr++
		}
	}
	if formerr < 2 {
		t.Errorf("%d FORMERR answers, want at least 2 (no question, two questions)", formerr)
	}
	r := e.ask(studentIP, "allowed.example", dns.TypeA, false, false)
	if len(r.Answer) != 1 {
		t.Errorf("service after garbage: %v", r.Answer)
	}
	if l := e.findLog("", ""); l["rule"] != RuleMalformed || l["status"] != "FORMERR" || l["ip"] != studentIP {
		t.Errorf("malformed query log line %v", l)
	}
	if got := e.metric("schoolgate_dnsfilter_malformed_total"); got < 2 {
		t.Errorf("malformed_total = %v, want >= 2", got)
	}
	// The two without exactly one question reach the handler; packets that
	// do not parse get their FORMERR from miekg and count as malformed.
	if got := e.metric("schoolgate_dnsfilter_queries_total", "rcode", "FORMERR"); got < 2 {
		t.Errorf("queries_total{FORMERR} = %v, want >= 2", got)
	}
}

func TestCacheHitIDAndTTL(t *testing.T) {
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	q := func(name string, id uint16, qtype uint16) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.Id = id
		r, err := e.exchange(staffIP, m, false)
		if err != nil {
			t.Fatal(err)
		}
		if r.Id != id {
			t.Fatalf("reply ID %d, want %d", r.Id, id)
		}
		return r
	}
	r1 := q("cached.example.", 1111, dns.TypeA)
	e.clock.advance(7 * time.Second)
	r2 := q("CacHed.Example.", 2222, dns.TypeA)
	if up.count("cached.example.", "A") != 1 {
		t.Errorf("upstream asked %d times, want 1", up.count("cached.example.", "A"))
	}
	if r2.Question[0].Name != "CacHed.Example." {
		t.Errorf("question echoed as %q, want the client's spelling", r2.Question[0].Name)
	}
	if got, want := r2.Answer[0].Header().Ttl, r1.Answer[0].Header().Ttl-7; got != want {
		t.Errorf("cached TTL = %d, want %d", got, want)
	}
	// Negative caching: the SOA minimum (30) bounds it.
	n1 := q("gone.nx.example.", 3, dns.TypeA)
	e.clock.advance(10 * time.Second)
	n2 := q("gone.nx.example.", 4, dns.TypeA)
	if n1.Rcode != dns.RcodeNameError || n2.Rcode != dns.RcodeNameError || up.count("gone.nx.example.", "A") != 1 {
		t.Errorf("negative caching: %s %s, upstream asked %d times", rcodeOf(n1), rcodeOf(n2), up.count("gone.nx.example.", "A"))
	}
	if ttl := n2.Ns[0].Header().Ttl; ttl != 20 {
		t.Errorf("cached SOA TTL = %d, want 30-10 = 20", ttl)
	}
	e.clock.advance(25 * time.Second)
	q("gone.nx.example.", 5, dns.TypeA)
	if up.count("gone.nx.example.", "A") != 2 {
		t.Errorf("expired negative answer not refetched")
	}
	if h, m := e.metric("schoolgate_dnsfilter_cache_hits_total"), e.metric("schoolgate_dnsfilter_cache_misses_total"); h != 2 || m != 3 {
		t.Errorf("cache hits/misses = %v/%v, want 2/3", h, m)
	}
	if got := e.metric("schoolgate_dnsfilter_cache_entries"); got != 2 {
		t.Errorf("cache_entries = %v, want 2", got)
	}
	if l := e.findLog("cached.example", "A"); l["status"] != "NOERROR" || l["verdict"] != "allow" || l["profile"] != "staff" {
		t.Errorf("cache hit log line %v", l)
	}
}

func TestReloadUpstreams(t *testing.T) {
	up1 := newFakeUpstream(t, "192.0.2.1")
	up2 := newFakeUpstream(t, "192.0.2.2")
	cfg := testConfig(up1.addr)
	e := newEnv(t, cfg)
	if a := e.ask(staffIP, "r.example", dns.TypeA, false, false).Answer[0].(*dns.A).A.String(); a != "192.0.2.1" {
		t.Fatalf("before reload: %s", a)
	}
	cfg2 := testConfig(up2.addr)
	cfg2.DNS.BlockedAnswer = "null"
	snap, err := policyBuild(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.reload(snap); err != nil {
		t.Fatal(err)
	}
	if a := e.ask(staffIP, "r.example", dns.TypeA, false, false).Answer[0].(*dns.A).A.String(); a != "192.0.2.2" {
		t.Errorf("after reload: %s, want the new upstream's answer (cache purged)", a)
	}
	if r := e.ask(studentIP, "casino.example", dns.TypeA, false, false); r.Rcode != dns.RcodeSuccess {
		t.Errorf("blocked_answer null not reloaded: %s", rcodeOf(r))
	}
	// A broken reload keeps the old settings.
	cfg3 := testConfig()
	snap3, err := policyBuild(cfg3)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.reload(snap3); err == nil {
		t.Error("a reload with no upstreams was accepted")
	}
	if r := e.ask(staffIP, "r2.example", dns.TypeA, false, false); len(r.Answer) != 1 {
		t.Errorf("after a bad reload: %v", r.Answer)
	}
}

func TestDig(t *testing.T) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("dig not installed")
	}
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	host, port, _ := net.SplitHostPort(e.addr)
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(dig, append([]string{"@" + host, "-p", port, "-b", studentIP, "+tries=1", "+time=3"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("dig %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run("casino.example", "A"); !strings.Contains(out, "status: NXDOMAIN") || !strings.Contains(out, "EDE: 15") {
		t.Errorf("dig blocked:\n%s", out)
	}
	if out := run("www.google.com", "A"); !strings.Contains(out, "forcesafesearch.google.com.") || !strings.Contains(out, "216.239.38.120") {
		t.Errorf("dig safe search:\n%s", out)
	}
	if out := run("+tcp", "allowed.example", "A"); !strings.Contains(out, "192.0.2.99") {
		t.Errorf("dig tcp:\n%s", out)
	}
	if out := run("+noedns", "+ignore", "big.example", "TXT"); !strings.Contains(out, " tc") {
		t.Errorf("dig truncation:\n%s", out)
	}
}

func TestAcceptAndChainOrder(t *testing.T) {
	var names []string
	for _, s := range chain {
		names = append(names, s.name)
	}
	want := "parse acl ratelimit sanity identity portal canary forward policy block safesearch any resolve"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("chain = %s, want %s", got, want)
	}
}

func TestMismatchedAnswerRejected(t *testing.T) {
	bad := newFakeUpstream(t, "203.0.113.66")
	bad.mangle.Store(true)
	good := newFakeUpstream(t, "192.0.2.7")
	e := newEnv(t, testConfig(bad.addr, good.addr))
	r := e.ask(staffIP, "m.example", dns.TypeA, false, false)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.7" {
		t.Errorf("answer %v, want the good upstream's 192.0.2.7", r.Answer)
	}
	if got := e.metric("schoolgate_dnsfilter_upstream_errors_total", "upstream", bad.addr, "kind", "mismatch"); got != 1 {
		t.Errorf("upstream_errors_total{bad,mismatch} = %v, want 1", got)
	}
}

// TestReloadWhileServing runs queries from several clients while the
// snapshot and settings are swapped (run with -race).
func TestReloadWhileServing(t *testing.T) {
	up1 := newFakeUpstream(t, "192.0.2.1")
	up2 := newFakeUpstream(t, "192.0.2.2")
	e := newEnv(t, testConfig(up1.addr))
	done := make(chan struct{})
	errc := make(chan error, 4)
	for w := range 4 {
		go func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					errc <- nil
					return
				default:
				}
				m := new(dns.Msg)
				m.SetQuestion(strings.Repeat("w", w+1)+"."+string(rune('a'+i%26))+".example.", dns.TypeA)
				r, err := e.exchange(staffIP, m, false)
				if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
					errc <- err
					return
				}
			}
		}()
	}
	for i := range 20 {
		cfg := testConfig(up1.addr)
		if i%2 == 0 {
			cfg = testConfig(up2.addr)
			cfg.Cache.DNS = 50 + i
		}
		snap, err := policyBuild(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.reload(snap); err != nil {
			t.Error(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(done)
	for range 4 {
		if err := <-errc; err != nil {
			t.Errorf("query during reloads: %v", err)
		}
	}
}

func TestMetricsLint(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed")
	}
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	e.ask(studentIP, "casino.example", dns.TypeA, false, false)
	e.ask(studentIP, "www.google.com", dns.TypeA, false, false)
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "schoolgate_dnsfilter_") {
			continue
		}
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(buf.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestStartReportsBindError(t *testing.T) {
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	// Same address, no SO_REUSEPORT on the TCP side: must fail, clearly.
	s2, err := New(Options{Addr: e.addr, Engine: e.engine})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(); err == nil || !strings.Contains(err.Error(), e.addr) {
		t.Errorf("Start on a used address: %v, want an error naming %s", err, e.addr)
	}
	if _, err := New(Options{Addr: "127.0.0.1:0", Engine: nil}); err == nil {
		t.Error("New without an engine: no error")
	}
}

func TestConcurrentMissesShareOneUpstreamQuery(t *testing.T) {
	up := newFakeUpstream(t, "192.0.2.8")
	up.delay.Store(int64(200 * time.Millisecond))
	e := newEnv(t, testConfig(up.addr))
	const clients = 10
	errc := make(chan error, clients)
	for range clients {
		go func() {
			m := new(dns.Msg)
			m.SetQuestion("popular.example.", dns.TypeA)
			r, err := e.exchange(staffIP, m, false)
			if err == nil && (len(r.Answer) != 1 || r.Id != m.Id) {
				err = errors.New(r.String())
			}
			errc <- err
		}()
	}
	for range clients {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
	if n := up.count("popular.example.", "A"); n != 1 {
		t.Errorf("upstream asked %d times for %d concurrent clients, want 1", n, clients)
	}
}

func TestCNAMECloakingBlocked(t *testing.T) {
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	for round := range 2 { // from the upstream, then from the cache
		r := e.ask(studentIP, "clip.example", dns.TypeA, false, false)
		if r.Rcode != dns.RcodeNameError || len(r.Answer) != 0 {
			t.Errorf("round %d: student clip.example (CNAME to streaming) = %s %v, want NXDOMAIN", round, rcodeOf(r), r.Answer)
		}
		l := e.findLog("clip.example", "A")
		if l["verdict"] != "block" || l["rule"] != "student#2" || fmt.Sprint(l["categories"]) != "[streaming]" {
			t.Errorf("round %d: log line %v, want the target's block", round, l)
		}
	}
	r := e.ask(staffIP, "clip.example", dns.TypeA, false, false)
	if len(r.Answer) != 2 {
		t.Errorf("staff clip.example = %v, want CNAME + A", r.Answer)
	}
}

// panicWriter panics on its first Write, as a stand-in for any bug below
// the handler.
type panicWriter struct {
	fakeWriter
	panicked bool
}

func (w *panicWriter) Write(b []byte) (int, error) {
	if !w.panicked {
		w.panicked = true
		panic("boom")
	}
	return w.fakeWriter.Write(b)
}

func TestHandlerRecoversFromPanic(t *testing.T) {
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	q := new(dns.Msg)
	q.SetQuestion("allowed.example.", dns.TypeA)
	w := &panicWriter{fakeWriter: fakeWriter{remote: &net.UDPAddr{IP: net.ParseIP(staffIP), Port: 1}}}
	e.srv.ServeDNS(w, q) // must not panic
	if !w.panicked {
		t.Fatal("writer was not called")
	}
	// The server still serves.
	if r := e.ask(staffIP, "allowed.example", dns.TypeA, false, false); len(r.Answer) != 1 {
		t.Errorf("after a panic: %v", r.Answer)
	}
}

func TestShutdown(t *testing.T) {
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	e.ask(staffIP, "allowed.example", dns.TypeA, false, false)
	if err := e.srv.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	c := &dns.Client{Net: "tcp", Timeout: 300 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("allowed.example.", dns.TypeA)
	if _, _, err := c.Exchange(m, e.addr); err == nil {
		t.Error("still answering over TCP after Shutdown")
	}
}

// TestWildcardBind: on a wildcard address the UDP answers go through
// miekg's per-packet source address handling; they must still arrive.
func TestWildcardBind(t *testing.T) {
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	s2, err := New(Options{Addr: "0.0.0.0:0", Engine: e.engine})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(); err != nil {
		t.Skipf("cannot bind a wildcard address here: %v", err)
	}
	defer s2.Shutdown(t.Context()) //nolint:errcheck
	_, port, _ := net.SplitHostPort(s2.Addr())
	e.addr = net.JoinHostPort("127.0.0.1", port)
	for _, tcp := range []bool{false, true} {
		if r := e.ask(staffIP, "allowed.example", dns.TypeA, tcp, false); len(r.Answer) != 1 {
			t.Errorf("tcp=%v: %v", tcp, r.Answer)
		}
	}
}

// TestQueriesRenewPortalSignIn: a DNS query is traffic — it renews a
// portal sign-in (an entry of a source with an idle time) for its idle
// time from the query, as a proxied request does.
func TestQueriesRenewPortalSignIn(t *testing.T) {
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	ip := netip.MustParseAddr(studentIP)
	const idle = 30 * time.Minute
	e.ids.SetIdle(identity.SourcePortal, idle)
	now := e.clock.now()
	e.ids.Set(ip, identity.Entry{User: "guest1", Source: identity.SourcePortal, Since: now, Until: now.Add(idle), End: now.Add(10 * time.Hour)})
	e.clock.advance(20 * time.Minute)
	e.ask(studentIP, "school.example", dns.TypeA, false, false)
	if l := e.findLog("school.example", "A"); l["user"] != "guest1" {
		t.Errorf("line user %v, want guest1", l["user"])
	}
	got, ok := e.ids.Lookup(ip, e.clock.now())
	if want := e.clock.now().Add(idle); !ok || !got.Until.Equal(want) {
		t.Fatalf("after a query at +20m the sign-in lasts until %v, want %v (30 idle minutes from the query)", got.Until, want)
	}
}

// TestVerdictMemoFollowsPolicy: a cached answer carries the last verdict
// on its name (entry.verdict), which must never outlive what it depends
// on: a schedule opening and closing, another profile for the address,
// a reload. Each question here is answered from the cache (one upstream
// query in all), so each verdict comes through the memo or past it.
func TestVerdictMemoFollowsPolicy(t *testing.T) {
	up := standardUpstream(t)
	cfg := testConfig(up.addr)
	cfg.Schedules = map[string]config.Schedule{"lesson": {
		Days: []time.Weekday{time.Sunday, time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday},
		From: 9 * 60, To: 9*60 + 2, Line: 9}}
	staff := cfg.Profiles["staff"]
	staff.Rules = append([]config.Rule{{Action: "block", Categories: []string{"streaming"}, When: []string{"lesson"}, Line: 10}}, staff.Rules...)
	cfg.Profiles["staff"] = staff
	e := newEnv(t, cfg)
	day := time.Now().UTC().Truncate(24 * time.Hour)
	e.clock.ns.Store(day.Add(8*time.Hour + 58*time.Minute).UnixNano())
	ask := func(want int, why string) {
		t.Helper()
		if r := e.ask(staffIP, "videos.example", dns.TypeA, false, true); r.Rcode != want {
			t.Errorf("%s: %s, want %s", why, rcodeOf(r), dns.RcodeToString[want])
		}
	}
	ask(dns.RcodeSuccess, "08:58, before the lesson")
	ask(dns.RcodeSuccess, "08:58 again (a hit)")
	e.clock.advance(2 * time.Minute)
	ask(dns.RcodeNameError, "09:00, the lesson began")
	ask(dns.RcodeNameError, "09:00 again")
	e.clock.advance(2 * time.Minute)
	ask(dns.RcodeSuccess, "09:02, the lesson ended")
	// Another profile for the same address (signed in as a student).
	now := e.clock.now()
	e.ids.Set(netip.MustParseAddr(staffIP), identity.Entry{User: "kid", Profile: "student", Source: identity.SourceAPI, Since: now, Until: now.Add(time.Hour)})
	ask(dns.RcodeNameError, "a student signed in")
	e.ids.Remove(netip.MustParseAddr(staffIP), "kid")
	ask(dns.RcodeSuccess, "signed out")
	// A reload that blocks streaming for staff all day.
	cfg2 := testConfig(up.addr)
	staff2 := cfg2.Profiles["staff"]
	staff2.Rules = append([]config.Rule{{Action: "block", Categories: []string{"streaming"}, Line: 10}}, staff2.Rules...)
	cfg2.Profiles["staff"] = staff2
	snap, err := policyBuild(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.reload(snap); err != nil {
		t.Fatal(err)
	}
	ask(dns.RcodeNameError, "after a reload blocking streaming")
	if n := up.count("videos.example.", "A"); n != 1 {
		t.Errorf("upstream asked %d times, want 1 (every other answer from the cache)", n)
	}
}
