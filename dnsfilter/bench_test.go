package dnsfilter

import (
	"net"
	"strconv"
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkCachedPath is the handler on a cache hit: what nearly every
// query of a school day costs (policy decision, cache copy, log line).
func BenchmarkCachedPath(b *testing.B) { benchCachedPath(b, nil) }

// benchCachedPath times hits of one cached name on the handler of a
// server whose options opts changes (nil: none), and checks the last
// answer.
func benchCachedPath(b *testing.B, opts func(*Options)) {
	up := standardUpstream(b)
	cfg := testConfig(up.addr)
	cfg.DNS.RateLimit = 0 // the loop is faster than any device
	e := newEnvWith(b, cfg, opts)
	q := new(dns.Msg)
	q.SetQuestion("cached.example.", dns.TypeA)
	q.SetEdns0(1232, false)
	w := &fakeWriter{remote: &net.UDPAddr{IP: net.ParseIP(staffIP), Port: 40000}}
	e.srv.ServeDNS(w, q) // fill the cache
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.srv.ServeDNS(w, q)
	}
	b.StopTimer()
	if r := new(dns.Msg); r.Unpack(w.last) != nil || len(r.Answer) != 1 {
		b.Fatalf("bad answer %x", w.last)
	}
}

// BenchmarkCachedPathParallel spreads hits over 1,000 names on every core,
// to show the cache shards and the limiter do not serialise.
func BenchmarkCachedPathParallel(b *testing.B) {
	up := standardUpstream(b)
	cfg := testConfig(up.addr)
	cfg.Cache.DNS = 100000
	cfg.DNS.RateLimit = 0
	e := newEnv(b, cfg)
	const names = 1000
	qs := make([]*dns.Msg, names)
	for i := range qs {
		qs[i] = new(dns.Msg)
		qs[i].SetQuestion("n"+strconv.Itoa(i)+".cached.example.", dns.TypeA)
		e.srv.ServeDNS(&fakeWriter{remote: &net.UDPAddr{IP: net.ParseIP(staffIP), Port: 40000}}, qs[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &fakeWriter{remote: &net.UDPAddr{IP: net.ParseIP(staffIP), Port: 40000}}
		i := 0
		for pb.Next() {
			e.srv.ServeDNS(w, qs[i%names])
			i++
		}
	})
}

// BenchmarkCacheGet is the cache lookup alone.
func BenchmarkCacheGet(b *testing.B) {
	c := newCache(1000)
	m := new(dns.Msg)
	m.SetQuestion("a.example.", dns.TypeA)
	m.Response = true
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "a.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.IPv4(192, 0, 2, 1)}}
	en, ok := newEntry(m, 100, minTTL)
	if !ok {
		b.Fatal("not cacheable")
	}
	k := cacheKey{name: "a.example.", qtype: dns.TypeA, qclass: dns.ClassINET}
	c.put(k, en)
	b.ReportAllocs()
	for b.Loop() {
		if c.get(k, 101) == nil {
			b.Fatal("miss")
		}
	}
}

// BenchmarkMissPath is the handler on a cache miss: a unique name each
// time, answered by a real upstream on 127.0.0.1.
func BenchmarkMissPath(b *testing.B) {
	up := standardUpstream(b)
	cfg := testConfig(up.addr)
	cfg.DNS.RateLimit = 0
	e := newEnv(b, cfg)
	b.ReportAllocs()
	i := 0
	b.RunParallel(func(pb *testing.PB) {
		w := &fakeWriter{remote: &net.UDPAddr{IP: net.ParseIP(staffIP), Port: 40000}}
		q := new(dns.Msg)
		for pb.Next() {
			i++ // racy on purpose: uniqueness is all that matters, and collisions are rare
			q.SetQuestion("m"+strconv.Itoa(i)+".miss.example.", dns.TypeA)
			e.srv.ServeDNS(w, q)
		}
	})
}
