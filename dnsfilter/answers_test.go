package dnsfilter

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/schoolgate/schoolgate/policy"
)

// TestAnswersPerClient: the filter tells policy.Answers what it answered
// each client, on a miss and on a cache hit, over UDP (the read loop) and
// TCP, until the answer expires; what one client was told counts for no
// other, and neither does a blocked name or another type of question.
func TestAnswersPerClient(t *testing.T) {
	up := newFakeUpstream(t, "192.0.2.1",
		"cdn.example. 300 IN A 192.0.2.7",
		"cdn.example. 300 IN A 192.0.2.8",
		"cdn.example. 300 IN AAAA 2001:db8::7",
		"casino.example. 300 IN A 192.0.2.66",
		"short.example. 60 IN A 192.0.2.9")
	answers := policy.NewAnswers(1000, 100)
	e := newEnvWith(t, testConfig(up.addr), func(o *Options) { o.Answers = answers })
	student, staff, junior := netip.MustParseAddr(studentIP), netip.MustParseAddr(staffIP), netip.MustParseAddr(juniorIP)
	a7, a8, a9 := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("192.0.2.8"), netip.MustParseAddr("192.0.2.9")
	v6 := netip.MustParseAddr("2001:db8::7")

	e.ask(studentIP, "cdn.example", dns.TypeA, false, false) // a miss
	e.ask(studentIP, "cdn.example", dns.TypeAAAA, true, true)
	e.ask(studentIP, "casino.example", dns.TypeA, false, false) // blocked for students
	e.ask(studentIP, "short.example", dns.TypeA, false, false)
	e.ask(staffIP, "www.example", dns.TypeA, false, false) // the upstream's default: 192.0.2.1
	e.ask(staffIP, "cdn.example", dns.TypeTXT, false, false)
	now := e.clock.now()
	for _, tc := range []struct {
		client netip.Addr
		name   string
		addr   netip.Addr
		want   bool
	}{
		{student, "cdn.example", a7, true},
		{student, "cdn.example", a8, true},
		{student, "cdn.example", v6, true},
		{student, "casino.example", netip.MustParseAddr("192.0.2.66"), false}, // answered NXDOMAIN
		{staff, "www.example", netip.MustParseAddr("192.0.2.1"), true},
		{student, "www.example", netip.MustParseAddr("192.0.2.1"), false}, // the staff's answer
		{staff, "cdn.example", a7, false},                                 // the student's answer; staff asked for TXT
		{junior, "cdn.example", a7, false},                                // never asked
	} {
		if got := answers.Has(tc.client, tc.name, tc.addr, now); got != tc.want {
			t.Errorf("Has(%s, %s, %s) = %v, want %v", tc.client, tc.name, tc.addr, got, tc.want)
		}
	}
	// A cache hit for another client: now that one was told too.
	e.ask(juniorIP, "cdn.example", dns.TypeA, false, false)
	if !answers.Has(junior, "cdn.example", a8, now) {
		t.Error("a cache hit was not remembered for its client")
	}
	if got := up.count("cdn.example.", "A"); got != 1 {
		t.Errorf("upstream asked %d times for cdn.example A, want 1 (the second was a hit)", got)
	}
	if got := answers.Names(student, a7, now); !slices.Equal(got, []string{"cdn.example"}) {
		t.Errorf("Names(student, %s) = %v", a7, got)
	}
	// Until the answer expires, and no longer.
	e.clock.advance(2 * 60e9)
	if answers.Has(student, "short.example", a9, e.clock.now()) || !answers.Has(student, "cdn.example", a7, e.clock.now()) {
		t.Error("answers not held for their TTL")
	}
}

// BenchmarkCachedPathAnswers is BenchmarkCachedPath in transparent
// gateway mode: each hit also tells policy.Answers what the client was
// answered. Compare the two: the difference is the memory's cost.
func BenchmarkCachedPathAnswers(b *testing.B) {
	benchCachedPath(b, func(o *Options) { o.Answers = policy.NewAnswers(1<<17, 1<<10) })
}
