package dnsfilter

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// The UDP read loop (IPv4 sockets bound to one address): instead of
// miekg's goroutine and full unpack per packet, each SO_REUSEPORT socket
// has one loop that reads a batch of packets with recvmmsg, runs the
// chain on each inline from a light parse of the wire (parseWire), and
// sends the batch's answers with one sendmmsg. What could wait (a cache
// miss going upstream, a SafeSearch lookup) continues on a goroutine of
// its own from that stage; packets the light parse does not take (EDNS
// options other than cookie and padding, several records, odd names,
// garbage) go the way miekg's server would take them (serveWire), on a
// goroutine. The chain, its answers and its log lines are the same.

// udpBatch is how many packets one recvmmsg may return.
const udpBatch = 32

// sendChunk is the most answers one sendmmsg carries. Sending on
// loopback delivers each datagram inside the call (a few µs apiece), so
// a call of 32 lasted over 100 µs: longer than the Go runtime's sysmon
// lets a syscall hold its P (20 µs when busy), so it took the P away
// in most calls, and with GOMAXPROCS 1 every such hand-off is a thread
// switch and back. Eight at a time kept most calls under that:
// bench/dns/run.sh hits went from ~95 to ~10 context switches per
// thousand queries and ~17% less CPU per query. On Linux amd64/arm64 the
// calls are raw system calls now, which sysmon does not see at all
// (mmsg_linux.go); whether longer chunks would pay there is not measured.
const sendChunk = 8

// udpReadSize is the read buffer per packet (miekg's server's UDPSize
// here): room for queries with EDNS options.
const udpReadSize = 4096

type udpLoop struct {
	s        *Server
	conn     *net.UDPConn
	bc       batchConn
	in       []udpMsg
	out      []udpMsg
	nout     int
	cur      netip.AddrPort // the sender of the packet being handled
	wg       *sync.WaitGroup
	work     chan func()   // to idle workers (unbuffered: taken at once or not at all)
	stop     chan struct{} // closed by close: idle workers leave
	stopOnce sync.Once
}

// batchConn reads and writes batches of datagrams on an IPv4 socket
// (mmsg_linux.go; mmsg_other.go elsewhere).
type batchConn interface {
	// readBatch fills ms[i].n and ms[i].addr for the packets read
	// into ms[i].buf[:cap]; it waits for at least one.
	readBatch(ms []udpMsg) (int, error)
	// writeBatch sends ms[i].buf[:ms[i].n] to ms[i].addr; it returns
	// how many were sent.
	writeBatch(ms []udpMsg) (int, error)
}

// udpMsg is one datagram of a batch.
type udpMsg struct {
	buf  []byte
	n    int
	addr netip.AddrPort
}

func newUDPLoop(s *Server, conn *net.UDPConn, wg *sync.WaitGroup) (*udpLoop, error) {
	bc, err := newBatchConn(conn, udpBatch)
	if err != nil {
		return nil, err
	}
	l := &udpLoop{s: s, conn: conn, bc: bc, wg: wg,
		work: make(chan func()), stop: make(chan struct{}),
		in: make([]udpMsg, udpBatch), out: make([]udpMsg, udpBatch)}
	for i := range l.in {
		l.in[i].buf = make([]byte, udpReadSize)
		l.out[i].buf = make([]byte, 0, 512)
	}
	return l, nil
}

// close stops the loop: its socket, then its idle workers.
func (l *udpLoop) close() {
	l.stopOnce.Do(func() {
		l.conn.Close()
		close(l.stop)
	})
}

// run reads until the socket is closed.
func (l *udpLoop) run() {
	defer l.wg.Done()
	for {
		n, err := l.bc.readBatch(l.in)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.s.logger.Debug("reading dns queries", zap.Error(err))
			time.Sleep(time.Millisecond) // never spin on a persistent error
			continue
		}
		for i := range n {
			m := &l.in[i]
			l.handle(m.buf[:m.n], m.addr)
		}
		l.flush()
	}
}

// handle answers one packet inline, or hands it to a goroutine.
func (l *udpLoop) handle(b []byte, from netip.AddrPort) {
	if !from.IsValid() {
		return
	}
	s := l.s
	if len(b) < 12 {
		s.m.malformed.Inc() // as miekg's server: no answer, counted
		return
	}
	if b[2]&0x80 != 0 {
		return // a response: ignored (acceptQuery)
	}
	r := requestPool.Get().(*request)
	*r = request{w: l, start: s.now(), began: time.Now(), inline: true}
	if !r.parseWire(b) {
		*r = request{}
		requestPool.Put(r)
		p := append([]byte(nil), b...)
		w := &udpWriter{conn: l.conn, to: from}
		l.goWork(func() { s.serveWire(p, w) })
		return
	}
	l.cur = from
	r.ip = from.Addr().Unmap()
	r.set = s.set.Load()
	r.snap = s.engine.Snapshot()
	s.serve(r, 1) // parseWire did the parse stage
}

// handOver runs the rest of an inline request's chain, from stage i, on
// a goroutine, answering with a writer of its own.
func (s *Server) handOver(r *request, i int) {
	l, ok := r.w.(*udpLoop)
	if !ok { // cannot happen: only the loop sets inline
		r.inline, r.deferred = false, false
		s.serve(r, i)
		return
	}
	r.inline, r.deferred = false, false
	r.w = &udpWriter{conn: l.conn, to: l.cur}
	l.goWork(func() { s.serve(r, i) })
}

// goWork runs f on a worker goroutine: an idle one if there is one, else
// a new one, which stays for more work until it has been idle for
// workerIdle (or Shutdown). A miss runs deep (miekg's exchange): a fresh
// goroutine per query would grow its stack every time, about a tenth of
// a miss's CPU.
func (l *udpLoop) goWork(f func()) {
	l.wg.Add(1)
	select {
	case l.work <- f:
		return
	default:
	}
	go l.worker(f)
}

const workerIdle = 10 * time.Second

func (l *udpLoop) worker(f func()) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		f()
		l.wg.Done()
		t.Reset(workerIdle)
		select {
		case f = <-l.work:
		case <-t.C:
			return
		case <-l.stop:
			return
		}
	}
}

// Write queues an answer to the current packet's sender; flush sends the
// batch.
func (l *udpLoop) Write(b []byte) (int, error) {
	if l.nout == len(l.out) {
		l.flush()
	}
	m := &l.out[l.nout]
	m.buf = append(m.buf[:0], b...)
	m.n = len(m.buf)
	m.addr = l.cur
	l.nout++
	return len(b), nil
}

func (l *udpLoop) flush() {
	for sent := 0; sent < l.nout; {
		n, err := l.bc.writeBatch(l.out[sent:min(l.nout, sent+sendChunk)])
		if err != nil {
			l.s.logger.Debug("writing dns answers", zap.Error(err))
			n = max(n, 1) // skip the answer that failed
		}
		sent += n
	}
	for i := range l.nout {
		if cap(l.out[i].buf) > 1<<16 {
			l.out[i].buf = make([]byte, 0, 512)
		}
	}
	l.nout = 0
}

func (l *udpLoop) LocalAddr() net.Addr  { return l.conn.LocalAddr() }
func (l *udpLoop) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(l.cur) }
func (l *udpLoop) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = l.Write(b)
	return err
}
func (l *udpLoop) Close() error        { return nil }
func (l *udpLoop) TsigStatus() error   { return nil }
func (l *udpLoop) TsigTimersOnly(bool) {}
func (l *udpLoop) Hijack()             {}

// udpWriter answers one packet directly (from a goroutine).
type udpWriter struct {
	conn *net.UDPConn
	to   netip.AddrPort
}

func (w *udpWriter) LocalAddr() net.Addr  { return w.conn.LocalAddr() }
func (w *udpWriter) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(w.to) }
func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
func (w *udpWriter) Write(b []byte) (int, error) { return w.conn.WriteToUDPAddrPort(b, w.to) }
func (w *udpWriter) Close() error                { return nil }
func (w *udpWriter) TsigStatus() error           { return nil }
func (w *udpWriter) TsigTimersOnly(bool)         {}
func (w *udpWriter) Hijack()                     {}

// serveWire does with a packet what miekg's server does before calling
// the handler (header, acceptQuery, unpack; FORMERR or NOTIMP for what it
// rejects, nothing for what it ignores), then calls it.
func (s *Server) serveWire(b []byte, w dns.ResponseWriter) {
	if len(b) < 12 {
		s.m.malformed.Inc() // miekg lets such a client hang: any reply could amplify
		return
	}
	be := func(i int) uint16 { return uint16(b[i])<<8 | uint16(b[i+1]) }
	dh := dns.Header{Id: be(0), Bits: be(2), Qdcount: be(4), Ancount: be(6), Nscount: be(8), Arcount: be(10)}
	req := new(dns.Msg)
	action := acceptQuery(dh)
	switch action {
	case dns.MsgIgnore:
		return
	case dns.MsgAccept:
		err := req.Unpack(b)
		if err == nil {
			s.ServeDNS(w, req)
			return
		}
		s.m.malformed.Inc()
	default:
		// miekg sets only the header before rejecting.
		req.Unpack(b[:12]) //nolint:errcheck // 12 bytes: the header alone, which parses
	}
	opcode := req.Opcode
	req.SetRcodeFormatError(req)
	req.Zero = false
	if action == dns.MsgRejectNotImplemented {
		req.Opcode = opcode
		req.Rcode = dns.RcodeNotImplemented
	}
	req.Ns, req.Answer, req.Extra = nil, nil, nil
	if err := w.WriteMsg(req); err != nil {
		s.logger.Debug("writing dns answer", zap.Error(err))
	}
}

// parseWire reads a plain query straight from the wire into r (what the
// parse stage takes from a dns.Msg): a standard query with one question
// whose name has only letters, digits, '-' and '_' (so that its
// presentation form is the wire's labels joined by dots), and at most an
// OPT record with no options other than cookie and padding, nothing
// after it. It reports false for anything else, which then goes the
// general way (serveWire), which decides exactly as before.
func (r *request) parseWire(b []byte) bool {
	if len(b) < 12+1+4 {
		return false
	}
	flags := uint16(b[2])<<8 | uint16(b[3])
	const qr, opcodeMask = 1 << 15, 0xF << 11
	if flags&(qr|opcodeMask) != 0 || b[4] != 0 || b[5] != 1 || b[6]|b[7]|b[8]|b[9]|b[10] != 0 || b[11] > 1 {
		return false
	}
	name, off, ok := wireName(b)
	if !ok || off+4 > len(b) {
		return false
	}
	qtype := uint16(b[off])<<8 | uint16(b[off+1])
	qclass := uint16(b[off+2])<<8 | uint16(b[off+3])
	off += 4
	if b[11] == 1 { // ARCOUNT
		if !r.parseOPT(b, off) {
			return false
		}
		off = len(b)
	}
	if off != len(b) {
		return false
	}
	r.id = uint16(b[0])<<8 | uint16(b[1])
	r.opcode = dns.OpcodeQuery
	r.rd = flags&(1<<8) != 0
	r.cd = flags&(1<<4) != 0
	r.qd = 1
	r.hasQ = true
	r.question = dns.Question{Name: name, Qtype: qtype, Qclass: qclass}
	// Without the final dot a lowercase name is already canonical: no
	// slow path, no copy (TestHostOfWithoutDot).
	r.host = hostOf(name[:len(name)-1])
	return true
}

// wireName reads the question's name from b[12:]: uncompressed labels of
// letters, digits, '-' and '_' only, at most 255 octets on the wire. It
// returns the name in presentation form (with its final dot) and the
// offset after it; ok is false for anything else, the root included
// (which goes the general way).
func wireName(b []byte) (name string, off int, ok bool) {
	off = 12
	var nb [256]byte
	n := 0
	for {
		if off >= len(b) {
			return "", 0, false
		}
		ll := int(b[off])
		if ll == 0 {
			off++
			break
		}
		if ll > 63 || off+1+ll > len(b) || off+1+ll-12 > 254 {
			return "", 0, false
		}
		for _, c := range b[off+1 : off+1+ll] {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", 0, false
			}
		}
		n += copy(nb[n:], b[off+1:off+1+ll])
		nb[n] = '.'
		n++
		off += 1 + ll
	}
	if n == 0 {
		return "", 0, false
	}
	return string(nb[:n]), off, true
}

// parseOPT reads the query's OPT record at b[off:], the last thing in it:
// root name, type 41, class = UDP size, TTL = extended rcode, version and
// flags (DO), then options, only cookie and padding. It reports false for
// anything else, an EDNS version beyond 0 included (BADVERS, the general
// way).
func (r *request) parseOPT(b []byte, off int) bool {
	if off+11 > len(b) || b[off] != 0 || b[off+1] != 0 || b[off+2] != byte(dns.TypeOPT) || b[off+6] != 0 {
		return false
	}
	r.edns = true
	r.udpSize = int(b[off+3])<<8 | int(b[off+4])
	r.do = b[off+7]&0x80 != 0
	rdlen := int(b[off+9])<<8 | int(b[off+10])
	off += 11
	if off+rdlen != len(b) {
		return false
	}
	for o := off; o < len(b); {
		if o+4 > len(b) {
			return false
		}
		code := uint16(b[o])<<8 | uint16(b[o+1])
		olen := int(b[o+2])<<8 | int(b[o+3])
		if (code != dns.EDNS0COOKIE && code != dns.EDNS0PADDING) || o+4+olen > len(b) {
			return false
		}
		o += 4 + olen
	}
	return true
}
