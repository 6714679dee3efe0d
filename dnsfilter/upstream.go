package dnsfilter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	// hedgeAfter is how long the filter waits for one upstream before it
	// asks the next one as well; the first keeps its chance (see tryTimeout).
	hedgeAfter = 400 * time.Millisecond
	// tryTimeout bounds one try: an answer arriving this late is still
	// used (a far, uncached name can take over a second), and only an
	// upstream silent for this long counts as failed.
	tryTimeout = 2500 * time.Millisecond
	// tcpTryTimeout bounds the TCP retry after a truncated UDP answer.
	tcpTryTimeout = 2 * time.Second
	// deadFor is how long an upstream that failed is skipped; after it, one
	// query probes it again while the others keep skipping it.
	deadFor = 15 * time.Second
	// upstreamUDPSize is the EDNS buffer size advertised upstream (the DNS
	// flag day 2020 value, avoiding IP fragmentation).
	upstreamUDPSize = 1232
	// The upstream UDP sockets (see connPool): each is used for at most
	// maxSocketUses queries, at least minIdleSockets are kept to choose
	// from, at most maxIdleSockets.
	maxSocketUses  = 16
	minIdleSockets = 8
	maxIdleSockets = 256
)

var (
	errAllUpstreamsFailed = errors.New("every upstream failed")
	errMismatchedAnswer   = errors.New("answer does not match the question")
	// errOversized: a UDP answer bigger than the size we advertised; it
	// cannot be trusted whole (a middlebox may have cut it), so it is
	// treated as truncated and asked again over TCP.
	errOversized = errors.New("udp answer larger than advertised")
)

type upstream struct {
	addr      string
	tcp       *dns.Client
	pool      *connPool
	deadUntil atomic.Int64 // unix nanoseconds; 0 when healthy
	dur       prometheus.Observer
	errs      map[string]prometheus.Counter
}

// upstreams is an ordered list of servers: dns.upstreams, or the servers
// of one dns.forward zone.
type upstreams struct {
	list []*upstream
	key  string // the configured list, to spot a change on reload
}

// normalizeUpstream accepts host:port or a bare host (port 53).
func normalizeUpstream(a string) (string, error) {
	a = strings.TrimSpace(a)
	if a == "" {
		return "", errors.New("empty upstream address")
	}
	if _, _, err := net.SplitHostPort(a); err == nil {
		return a, nil
	}
	if strings.Count(a, ":") > 1 && !strings.HasPrefix(a, "[") { // bare IPv6
		return net.JoinHostPort(a, "53"), nil
	}
	if strings.ContainsAny(a, "[]") {
		return "", fmt.Errorf("upstream %q: not host:port", a)
	}
	return net.JoinHostPort(a, "53"), nil
}

func newUpstreams(addrs []string, m *metrics) (*upstreams, error) {
	if len(addrs) == 0 {
		return nil, errors.New("dns.upstreams is empty")
	}
	us := &upstreams{key: joinUpstreams(addrs)}
	for _, a := range addrs {
		na, err := normalizeUpstream(a)
		if err != nil {
			return nil, err
		}
		u := &upstream{
			addr: na,
			tcp:  &dns.Client{Net: "tcp", Timeout: tcpTryTimeout},
			pool: newConnPool(na),
			dur:  m.upstreamDur.WithLabelValues(na),
			errs: make(map[string]prometheus.Counter, len(upstreamErrorKinds)),
		}
		for _, k := range upstreamErrorKinds {
			u.errs[k] = m.upstreamErrors.WithLabelValues(na, k)
		}
		us.list = append(us.list, u)
	}
	return us, nil
}

// usable reports whether u should be tried now. A dead upstream becomes
// usable for exactly one caller when its time is up (that caller probes it).
func (u *upstream) usable(now int64) bool {
	d := u.deadUntil.Load()
	if d == 0 {
		return true
	}
	if now < d {
		return false
	}
	return u.deadUntil.CompareAndSwap(d, now+int64(deadFor))
}

// maxUpstreams bounds the list a query walks without allocating.
const maxUpstreams = 8

// candidates returns the upstreams to ask, in order: those not known dead,
// or every one when all are.
func (us *upstreams) candidates(buf *[maxUpstreams]*upstream) []*upstream {
	now := time.Now().UnixNano()
	c := buf[:0]
	for _, u := range us.list {
		if len(c) < maxUpstreams && u.usable(now) {
			c = append(c, u)
		}
	}
	if len(c) == 0 {
		c = append(c, us.list[:min(len(us.list), maxUpstreams)]...)
	}
	return c
}

// exchange asks the upstreams in order and returns the first good answer.
// q is built by the caller and not changed. The first upstream has
// hedgeAfter to answer alone; after that the next one is asked too, and
// so on, while each one asked keeps waiting for its own answer until
// tryTimeout: a slow answer is used, and never counts against its
// upstream. An error, SERVFAIL or REFUSED moves on to the next at once;
// if none does better, the last SERVFAIL or REFUSED is returned.
func (us *upstreams) exchange(q *dns.Msg) (*dns.Msg, error) {
	wire, err := q.Pack()
	if err != nil {
		return nil, err
	}
	var buf [maxUpstreams]*upstream
	cands := us.candidates(&buf)
	var o outcome
	// The usual case runs without a goroutine: the first upstream answers
	// within hedgeAfter.
	for i, u := range cands {
		t, err := u.send(wire)
		if err != nil {
			o.lastErr = err
			continue
		}
		m, err := t.wait(q, t.sent.Add(hedgeAfter))
		if isTimeout(err) {
			return us.slow(q, wire, cands[i+1:], t, o)
		}
		if o.take(t.finish(q, m, err)) {
			return o.m, nil
		}
	}
	return o.result()
}

// outcome gathers the results of the tries of one exchange.
type outcome struct {
	m        *dns.Msg // the answer, once take reports true
	fallback *dns.Msg // the last SERVFAIL or REFUSED
	lastErr  error
}

// take records one try's result and reports whether it is the answer.
func (o *outcome) take(u *upstream, m *dns.Msg, err error) bool {
	switch {
	case err != nil:
		o.lastErr = err
	case m.Rcode == dns.RcodeServerFailure || m.Rcode == dns.RcodeRefused:
		u.errs[errRcode].Inc()
		o.fallback = m
	default:
		o.m = m
		return true
	}
	return false
}

func (o *outcome) result() (*dns.Msg, error) {
	if o.fallback != nil {
		return o.fallback, nil
	}
	if o.lastErr == nil {
		o.lastErr = errAllUpstreamsFailed
	}
	return nil, o.lastErr
}

type tryResult struct {
	u   *upstream
	m   *dns.Msg
	err error
}

// slow continues an exchange whose try t has not been answered within
// hedgeAfter: t keeps waiting on a goroutine while the rest are asked,
// one more every hedgeAfter (or at once when a try fails).
func (us *upstreams) slow(q *dns.Msg, wire []byte, rest []*upstream, t *udpTry, o outcome) (*dns.Msg, error) {
	results := make(chan tryResult, len(rest)+1) // buffered: an abandoned try never blocks
	go func() {
		m, err := t.wait(q, t.sent.Add(tryTimeout))
		u, m, err := t.finish(q, m, err)
		results <- tryResult{u, m, err}
	}()
	pending := 1
	start := func(u *upstream) {
		pending++
		go func() {
			t, err := u.send(wire)
			if err != nil {
				results <- tryResult{u, nil, err}
				return
			}
			m, err := t.wait(q, t.sent.Add(tryTimeout))
			u, m, err = t.finish(q, m, err)
			results <- tryResult{u, m, err}
		}()
	}
	// t has had its hedgeAfter alone: the next one is asked now.
	if len(rest) > 0 {
		start(rest[0])
		rest = rest[1:]
	}
	hedge := time.NewTimer(hedgeAfter)
	defer hedge.Stop()
	for pending > 0 || len(rest) > 0 {
		if pending == 0 {
			start(rest[0])
			rest = rest[1:]
			hedge.Reset(hedgeAfter)
		}
		select {
		case r := <-results:
			pending--
			if o.take(r.u, r.m, r.err) {
				return o.m, nil
			}
		case <-hedge.C:
			if len(rest) > 0 {
				start(rest[0])
				rest = rest[1:]
				hedge.Reset(hedgeAfter)
			}
		}
	}
	return o.result()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// udpTry is one query sent to one upstream over UDP, on a socket of its
// own until it is answered.
type udpTry struct {
	u    *upstream
	c    *pooledConn
	id   uint16
	sent time.Time
}

// send sends the packed query wire to u with a fresh random ID.
func (u *upstream) send(wire []byte) (*udpTry, error) {
	c, err := u.pool.get()
	if err != nil {
		u.failed(err)
		return nil, fmt.Errorf("asking %s: %w", u.addr, err)
	}
	// A fresh unpredictable ID per try (the runtime's generator is ChaCha8,
	// seeded by the kernel: cheaper than crypto/rand per query).
	t := &udpTry{u: u, c: c, id: uint16(rand.Uint32()), sent: time.Now()}
	b := append(c.buf[:0], wire...)
	binary.BigEndian.PutUint16(b, t.id)
	if _, err := c.Write(b); err != nil {
		c.Close()
		u.failed(err)
		return nil, fmt.Errorf("asking %s: %w", u.addr, err)
	}
	return t, nil
}

// wait reads the answer to t until the deadline. Packets that are not
// an answer with t's ID (late answers to an earlier query, forgeries)
// are skipped. An answer bigger than we advertised is errOversized.
func (t *udpTry) wait(q *dns.Msg, deadline time.Time) (*dns.Msg, error) {
	c := t.c
	if err := c.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	for {
		n, err := c.Read(c.buf[:cap(c.buf)])
		if err != nil {
			return nil, err
		}
		b := c.buf[:n]
		if n < 12 || binary.BigEndian.Uint16(b) != t.id || b[2]&0x80 == 0 {
			continue
		}
		if n > upstreamUDPSize {
			return nil, errOversized
		}
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			return nil, fmt.Errorf("%w: %w", errMismatchedAnswer, err)
		}
		return m, nil
	}
}

// finish completes a try with the outcome of wait: TCP after a truncated
// (or oversized) answer, the answer checked against the question, the
// socket kept or closed, the upstream's health and metrics updated.
func (t *udpTry) finish(q *dns.Msg, m *dns.Msg, err error) (*upstream, *dns.Msg, error) {
	u := t.u
	if err == nil && m.Truncated || errors.Is(err, errOversized) {
		t.c.uses++
		u.pool.put(t.c, true) // the exchange completed: the socket is clean
		t.c = nil
		m, _, err = u.tcp.Exchange(q.Copy(), u.addr)
		if err == nil && m.Id != q.Id {
			err = errMismatchedAnswer
		}
	} else if err == nil {
		m.Id = q.Id // the caller's ID, not the try's
	}
	if t.c != nil {
		t.c.uses++
		// A socket whose try failed is never reused, so that a late
		// answer cannot be read by another query.
		u.pool.put(t.c, err == nil)
		t.c = nil
	}
	if err == nil {
		err = checkAnswer(q, m)
	}
	if err != nil {
		u.failed(err)
		return u, nil, fmt.Errorf("asking %s: %w", u.addr, err)
	}
	u.deadUntil.Store(0)
	u.dur.Observe(time.Since(t.sent).Seconds())
	return u, m, nil
}

// failed counts an error of u and, unless it was a wrong answer (which
// says nothing about the path), skips u for deadFor.
func (u *upstream) failed(err error) {
	kind := errNetwork
	switch {
	case isTimeout(err):
		kind = errTimeout
	case errors.Is(err, dns.ErrId), errors.Is(err, errMismatchedAnswer):
		kind = errMismatch
	}
	u.errs[kind].Inc()
	if kind != errMismatch {
		u.deadUntil.Store(time.Now().Add(deadFor).UnixNano())
	}
}

// checkAnswer makes sure r answers q.
func checkAnswer(q, r *dns.Msg) error {
	if !r.Response || r.Id != q.Id || len(r.Question) != 1 {
		return errMismatchedAnswer
	}
	a, b := q.Question[0], r.Question[0]
	if a.Qtype != b.Qtype || a.Qclass != b.Qclass || !strings.EqualFold(a.Name, b.Name) {
		return errMismatchedAnswer
	}
	return nil
}

// connPool keeps connected UDP sockets to one upstream for reuse. Each
// query takes a socket at random from at least minIdleSockets (a new one
// when fewer are idle), and a socket serves at most maxSocketUses queries
// before it is closed: source ports (chosen at random by the kernel) are
// unpredictable from one query to the next (RFC 5452), while the cost of a
// fresh socket per query (socket, connect, poller registration, close:
// over half of the CPU of a cache miss) is mostly saved. A socket whose
// exchange failed is never reused.
type connPool struct {
	addr string
	ua   *net.UDPAddr // addr, resolved once (it is an IP address and port)
	mu   sync.Mutex
	idle []*pooledConn
}

type pooledConn struct {
	*net.UDPConn
	uses int
	buf  []byte // the query out, the answer in
}

// readBufSize is one byte more than we advertise: a datagram that fills
// it was bigger than we said we take (errOversized; the kernel cuts it to
// the buffer, and the ID is still there to check).
const readBufSize = upstreamUDPSize + 1

func newConnPool(addr string) *connPool {
	p := &connPool{addr: addr}
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		p.ua = net.UDPAddrFromAddrPort(ap)
	}
	return p
}

func (p *connPool) get() (*pooledConn, error) {
	p.mu.Lock()
	if n := len(p.idle); n >= minIdleSockets {
		i := rand.IntN(n)
		c := p.idle[i]
		p.idle[i] = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	if p.ua == nil {
		return nil, fmt.Errorf("upstream %s is not an IP address and port", p.addr)
	}
	c, err := net.DialUDP("udp", nil, p.ua)
	if err != nil {
		return nil, err
	}
	return &pooledConn{UDPConn: c, buf: make([]byte, 0, readBufSize)}, nil
}

func (p *connPool) put(c *pooledConn, ok bool) {
	if ok && c.uses < maxSocketUses {
		p.mu.Lock()
		if len(p.idle) < maxIdleSockets {
			p.idle = append(p.idle, c)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
	c.Close()
}

// close closes the idle sockets (the upstream list was replaced).
func (p *connPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

// close releases the idle sockets of every upstream.
func (us *upstreams) close() {
	for _, u := range us.list {
		u.pool.close()
	}
}
