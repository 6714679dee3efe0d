package dnsfilter

import (
	"bytes"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/schoolgate/schoolgate/internal/testenv"
)

// parseWireSeeds are packets for FuzzParseWire and TestParseWire: plain
// queries the UDP loop reads itself, and some it must leave to miekg.
func parseWireSeeds(t testing.TB) [][]byte {
	var out [][]byte
	add := func(m *dns.Msg) {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	for _, s := range []struct {
		name  string
		qtype uint16
		edns  bool
		do    bool
	}{
		{"allowed.example.", dns.TypeA, false, false},
		{"CacHed.Example.", dns.TypeAAAA, true, true},
		{"_sip._tcp.example.", dns.TypeSRV, true, false},
		{"a\\.b.example.", dns.TypeA, false, false},    // an escaped dot: miekg's way
		{"sp\\032ce.example.", dns.TypeA, true, false}, // a space: miekg's way
		{".", dns.TypeNS, false, false},
		{"x.example.", dns.TypeANY, false, false},
	} {
		m := new(dns.Msg)
		m.SetQuestion(s.name, s.qtype)
		m.RecursionDesired = !s.do
		m.CheckingDisabled = s.do
		if s.edns {
			m.SetEdns0(1232, s.do)
		}
		add(m)
	}
	m := new(dns.Msg)
	m.SetQuestion("cookie.example.", dns.TypeA)
	m.SetEdns0(4096, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	add(m)
	m = new(dns.Msg)
	m.SetQuestion("subnet.example.", dns.TypeA)
	m.SetEdns0(4096, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(192, 0, 2, 0).To4()})
	add(m)
	m = new(dns.Msg)
	m.SetQuestion("notify.example.", dns.TypeSOA)
	m.Opcode = dns.OpcodeNotify
	add(m)
	b := out[0]
	out = append(out, append(append([]byte(nil), b...), 0, 0)) // trailing bytes
	out = append(out, b[:len(b)-1])                            // cut short
	return out
}

// TestHostOfWithoutDot: parseWire normalises the name without its final
// dot (the fast path of categories.NormalizeHost); the host must be what
// the parse stage gets from the whole name, for every name parseWire
// takes: upper case, digits-only and xn-- labels, '_' and '-' anywhere.
func TestHostOfWithoutDot(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 5))
	const alphabet = "abcxnzABXZ0189-_"
	labels := []string{"xn--bcher-kva", "XN--BCHER-KVA", "123", "0", "_dmarc", "-", "localhost", "in-addr", "arpa"}
	took := 0
	for range 3000 {
		var name strings.Builder
		for range 1 + rng.IntN(5) {
			if rng.IntN(3) == 0 {
				name.WriteString(labels[rng.IntN(len(labels))])
			} else {
				for range 1 + rng.IntN(12) {
					name.WriteByte(alphabet[rng.IntN(len(alphabet))])
				}
			}
			name.WriteByte('.')
		}
		m := new(dns.Msg)
		m.SetQuestion(name.String(), dns.TypeA)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if checkParseWire(t, b) {
			took++
		}
	}
	if took < 2900 {
		t.Fatalf("parseWire took only %d of 3000 names", took)
	}
}

// checkParseWire: whatever parseWire takes, miekg must parse to the same
// request (what the parse stage takes from the dns.Msg).
func checkParseWire(t *testing.T, b []byte) bool {
	var fast request
	if !fast.parseWire(b) {
		return false
	}
	if len(b) < 12 {
		t.Fatalf("took a %d-byte packet", len(b))
	}
	dh := dns.Header{Bits: uint16(b[2])<<8 | uint16(b[3]), Qdcount: uint16(b[4])<<8 | uint16(b[5]),
		Ancount: uint16(b[6])<<8 | uint16(b[7]), Nscount: uint16(b[8])<<8 | uint16(b[9]), Arcount: uint16(b[10])<<8 | uint16(b[11])}
	if acceptQuery(dh) != dns.MsgAccept {
		t.Fatalf("took %x, which acceptQuery does not accept", b)
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatalf("took %x, which miekg does not parse: %v", b, err)
	}
	slow := request{q: m}
	(&Server{}).parse(&slow)
	slow.q = nil
	if fast != slow {
		t.Fatalf("%x:\nparseWire %+v\nparse     %+v", b, fast, slow)
	}
	return true
}

func TestParseWire(t *testing.T) {
	took := 0
	for _, b := range parseWireSeeds(t) {
		if checkParseWire(t, b) {
			took++
		}
	}
	// allowed, CacHed, _sip._tcp and ANY, cookie; not the escaped names,
	// the root, the subnet option, NOTIFY, trailing bytes, a short one.
	if took != 5 {
		t.Errorf("parseWire took %d of the seeds, want 5", took)
	}
}

// FuzzParseWire: the UDP loop's own parse never panics and never differs
// from miekg's on what it takes.
func FuzzParseWire(f *testing.F) {
	for _, b := range parseWireSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkParseWire(t, b) })
}

// TestUDPLoopManyInFlight: a burst of hits and misses on one socket (so
// that the loop reads and answers them in batches, and hands misses to
// goroutines) all get their own answer, and one log line each.
func TestUDPLoopManyInFlight(t *testing.T) {
	up := standardUpstream(t)
	cfg := testConfig(up.addr)
	cfg.DNS.RateLimit = 0
	e := newEnv(t, cfg)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(staffIP)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to, _ := net.ResolveUDPAddr("udp", e.addr)
	const n = 200
	name := func(i int) string { return "n" + strconv.Itoa(i%50) + ".burst.example." } // 50 misses, 150 hits or shared flights
	var wg sync.WaitGroup
	got := make(map[uint16]string)
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 2048)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		for range n {
			k, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			m := new(dns.Msg)
			if m.Unpack(buf[:k]) == nil && len(m.Question) == 1 && len(m.Answer) == 1 {
				mu.Lock()
				got[m.Id] = m.Question[0].Name
				mu.Unlock()
			}
		}
	}()
	for i := range n {
		m := new(dns.Msg)
		m.SetQuestion(name(i), dns.TypeA)
		m.Id = uint16(i + 1)
		b, _ := m.Pack()
		if _, err := conn.WriteToUDP(b, to); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			time.Sleep(20 * time.Millisecond) // let the misses be cached
		}
	}
	wg.Wait()
	// UDP on loopback may still drop under load: most must arrive, each
	// answering its own question.
	if len(got) < n*9/10 {
		t.Errorf("%d of %d answers", len(got), n)
	}
	for id, q := range got {
		if q != name(int(id)-1) {
			t.Errorf("answer %d is for %s, want %s", id, q, name(int(id)-1))
		}
	}
	lines := 0
	for _, l := range e.logLines() {
		if h, _ := l["host"].(string); len(h) > 0 && l["ip"] == staffIP && l["method"] == "A" && l["verdict"] == "allow" {
			lines++
		}
	}
	// One line per query the filter read (loopback may drop a few before
	// it reads them): at least one per answer, never more than were sent.
	if lines < len(got) || lines > n {
		t.Errorf("%d log lines for %d answers to %d queries", lines, len(got), n)
	}
}

// BenchmarkUDPLoopHit is a cache hit as the UDP loop handles it: the
// light parse, the chain inline, the answer queued for sendmmsg (the
// syscalls are left out). Compare BenchmarkPacketHit: the same packet the
// way miekg's server took it (unpack, then the handler).
func BenchmarkUDPLoopHit(b *testing.B) {
	e, pkt, from := hitBenchEnv(b)
	benchUDPLoop(b, e, [][]byte{pkt}, from.AddrPort())
}

// BenchmarkUDPLoopHitNames is BenchmarkUDPLoopHit over 1,000 cached
// names in turn, as bench/dns/run.sh asks them: each hit finds its
// entries (the answer's, the verdict's) colder than one name's.
// Both caches are as big as by default, so every hit is a hit in each.
func BenchmarkUDPLoopHitNames(b *testing.B) {
	up := standardUpstream(b)
	cfg := testConfig(up.addr)
	cfg.DNS.RateLimit = 0
	cfg.Cache.Verdicts, cfg.Cache.DNS = 100000, 100000 // the defaults: every name stays in both
	e := newEnv(b, cfg)
	from := &net.UDPAddr{IP: net.ParseIP(staffIP), Port: 40000}
	pkts := make([][]byte, 1000)
	for i := range pkts {
		q := new(dns.Msg)
		q.SetQuestion("n"+strconv.Itoa(i)+".cached.example.", dns.TypeA)
		q.SetEdns0(1232, false)
		pkt, err := q.Pack()
		if err != nil {
			b.Fatal(err)
		}
		pkts[i] = pkt
		e.srv.ServeDNS(&fakeWriter{remote: from}, q) // fill the cache
	}
	benchUDPLoop(b, e, pkts, from.AddrPort())
}

// benchUDPLoop has a UDP loop on a loopback socket handle pkts in turn,
// from ap, and reports all the CPU a packet costs besides ns/op: the
// access-log writer's included (it runs beside the loop when there is a
// second CPU, so ns/op leaves it out), steadier than ns/op on a shared
// machine. Every packet must be answered with one record.
func benchUDPLoop(b *testing.B, e *env, pkts [][]byte, ap netip.AddrPort) {
	b.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	var wg sync.WaitGroup
	l, err := newUDPLoop(e.srv, conn, &wg)
	if err != nil {
		b.Fatal(err)
	}
	if err := e.log.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0, n := testenv.ProcessCPU(), 0
	for b.Loop() {
		l.handle(pkts[n%len(pkts)], ap)
		l.nout = 0
		n++
	}
	if err := e.log.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(testenv.ProcessCPU()-cpu0)/float64(n), "cpu-ns/op")
	if r := new(dns.Msg); r.Unpack(l.out[0].buf) != nil || len(r.Answer) != 1 {
		b.Fatalf("bad answer %x", l.out[0].buf)
	}
}

// BenchmarkPacketHit: see BenchmarkUDPLoopHit.
func BenchmarkPacketHit(b *testing.B) {
	e, pkt, from := hitBenchEnv(b)
	w := &fakeWriter{remote: from}
	b.ReportAllocs()
	for b.Loop() {
		e.srv.servePacket(pkt, w)
	}
	if r := new(dns.Msg); r.Unpack(w.last) != nil || len(r.Answer) != 1 {
		b.Fatalf("bad answer %x", w.last)
	}
}

func hitBenchEnv(b *testing.B) (*env, []byte, *net.UDPAddr) {
	up := standardUpstream(b)
	cfg := testConfig(up.addr)
	cfg.DNS.RateLimit = 0
	e := newEnv(b, cfg)
	q := new(dns.Msg)
	q.SetQuestion("cached.example.", dns.TypeA)
	q.SetEdns0(1232, false)
	pkt, err := q.Pack()
	if err != nil {
		b.Fatal(err)
	}
	from := &net.UDPAddr{IP: net.ParseIP(staffIP), Port: 40000}
	e.srv.ServeDNS(&fakeWriter{remote: from}, q) // fill the cache
	return e, pkt, from
}

// FuzzUDPLoop feeds arbitrary packets to the UDP loop, from a client and
// from a stranger: it must never panic, answer at most once inline, and
// never answer a stranger inline with more bytes than it sent.
func FuzzUDPLoop(f *testing.F) {
	for _, b := range parseWireSeeds(f) {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(make([]byte, 12))
	up := standardUpstream(f)
	e := newEnv(f, testConfig(up.addr))
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	defer conn.Close()
	var wg sync.WaitGroup
	l, err := newUDPLoop(e.srv, conn, &wg)
	if err != nil {
		f.Fatal(err)
	}
	defer func() { l.close(); wg.Wait() }()
	client := netip.AddrPortFrom(netip.MustParseAddr(juniorIP), 9) // discard: answers from workers go nowhere
	stranger := netip.AddrPortFrom(netip.MustParseAddr(strangerIP), 9)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, from := range []netip.AddrPort{client, stranger} {
			l.nout = 0
			l.handle(b, from)
			if l.nout > 1 {
				t.Fatalf("%d answers to one packet", l.nout)
			}
			if from == stranger && l.nout == 1 && len(l.out[0].buf) > len(b) {
				t.Fatalf("stranger sent %d bytes got %d back", len(b), len(l.out[0].buf))
			}
		}
		l.nout = 0
	})
}

// TestBatchConn: a batch written reaches its addresses whole, and a batch
// read returns each datagram with its sender, whatever the platform's
// batchConn (raw recvmmsg/sendmmsg on Linux).
func TestBatchConn(t *testing.T) {
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	srv, peerA, peerB := listen(), listen(), listen()
	bc, err := newBatchConn(srv, 8)
	if err != nil {
		t.Fatal(err)
	}
	addrOf := func(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

	// Read: five datagrams from two senders, one of them empty, one large.
	sent := [][]byte{[]byte("one"), {}, bytes.Repeat([]byte{0xab}, 3000), []byte("four"), []byte("five")}
	from := []*net.UDPConn{peerA, peerB, peerA, peerB, peerA}
	for i, b := range sent {
		if _, err := from[i].WriteToUDPAddrPort(b, addrOf(srv)); err != nil {
			t.Fatal(err)
		}
	}
	ms := make([]udpMsg, 8)
	for i := range ms {
		ms[i].buf = make([]byte, udpReadSize)
	}
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	for got := 0; got < len(sent); {
		n, err := bc.readBatch(ms)
		if err != nil {
			t.Fatalf("readBatch after %d: %v", got, err)
		}
		for i := range n {
			if want := addrOf(from[got]); ms[i].addr != want {
				t.Errorf("datagram %d from %v, want %v", got, ms[i].addr, want)
			}
			if !bytes.Equal(ms[i].buf[:ms[i].n], sent[got]) {
				t.Errorf("datagram %d is %d bytes %.8x, want %d bytes", got, ms[i].n, ms[i].buf[:ms[i].n], len(sent[got]))
			}
			got++
		}
	}

	// Write: four answers to the two peers, as the loop sends them.
	out := make([]udpMsg, 4)
	for i := range out {
		to := peerA
		if i%2 == 1 {
			to = peerB
		}
		out[i] = udpMsg{buf: []byte("answer " + strconv.Itoa(i)), addr: addrOf(to)}
		out[i].n = len(out[i].buf)
	}
	if n, err := bc.writeBatch(out); n != len(out) || err != nil {
		t.Fatalf("writeBatch = %d, %v", n, err)
	}
	buf := make([]byte, 100)
	for _, r := range []struct {
		c    *net.UDPConn
		want []string
	}{{peerA, []string{"answer 0", "answer 2"}}, {peerB, []string{"answer 1", "answer 3"}}} {
		r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for _, want := range r.want {
			n, src, err := r.c.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatal(err)
			}
			if string(buf[:n]) != want || src != addrOf(srv) {
				t.Errorf("got %q from %v, want %q from %v", buf[:n], src, want, addrOf(srv))
			}
		}
	}
}
