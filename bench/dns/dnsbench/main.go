// Command dnsbench is the upstream for bench/dns/run.sh: a tiny
// authoritative server that answers every A question with an address
// (TTL one day) and every other type with NODATA, and a probe that waits
// for a DNS server to answer.
//
//	dnsbench serve ADDR        serve on ADDR (UDP and TCP) until killed
//	dnsbench probe ADDR NAME   exit 0 once ADDR answers NAME, 1 after 2 minutes
package main

import (
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"time"

	"github.com/miekg/dns"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: dnsbench serve ADDR | probe ADDR NAME")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2])
	case "probe":
		name := "probe.bench.example."
		if len(os.Args) > 3 {
			name = dns.Fqdn(os.Args[3])
		}
		os.Exit(probe(os.Args[2], name))
	default:
		fmt.Fprintf(os.Stderr, "dnsbench: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

func serve(addr string) {
	h := dns.HandlerFunc(answer)
	errc := make(chan error, 2)
	for _, n := range []string{"udp", "tcp"} {
		srv := &dns.Server{Addr: addr, Net: n, Handler: h, UDPSize: 4096}
		go func() { errc <- srv.ListenAndServe() }()
	}
	fmt.Fprintln(os.Stderr, "dnsbench: serving on", addr)
	fmt.Fprintln(os.Stderr, "dnsbench:", <-errc)
	os.Exit(1)
}

func answer(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	if len(q.Question) == 1 && q.Question[0].Qtype == dns.TypeA {
		h := fnv.New32a()
		h.Write([]byte(q.Question[0].Name))
		v := h.Sum32()
		m.Answer = []dns.RR{&dns.A{
			Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 86400},
			A:   net.IPv4(198, 18, byte(v>>8), byte(v)),
		}}
	} else if len(q.Question) == 1 {
		m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 3600},
			Ns: "ns.bench.example.", Mbox: "h.bench.example.", Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 3600}}
	}
	if o := q.IsEdns0(); o != nil {
		m.SetEdns0(o.UDPSize(), o.Do())
	}
	w.WriteMsg(m) //nolint:errcheck // best effort
}

func probe(addr, name string) int {
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if r, _, err := c.Exchange(m, addr); err == nil && r.Rcode == dns.RcodeSuccess {
			return 0
		}
	}
	fmt.Fprintf(os.Stderr, "dnsbench: %s does not answer %s\n", addr, name)
	return 1
}
