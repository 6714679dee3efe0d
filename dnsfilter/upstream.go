package dnsfilter

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	// udpTryTimeout bounds one UDP try, so that a dead first upstream costs
	// half a second before the next one is asked.
	udpTryTimeout = 500 * time.Millisecond
	// tcpTryTimeout bounds the TCP retry after a truncated UDP answer.
	tcpTryTimeout = 2 * time.Second
	// deadFor is how long an upstream that failed is skipped; after it, one
	// query probes it again while the others keep skipping it.
	deadFor = 15 * time.Second
	// upstreamUDPSize is the EDNS buffer size advertised upstream (the DNS
	// flag day 2020 value, avoiding IP fragmentation).
	upstreamUDPSize = 1232
	// maxSocketUses and maxIdleSockets bound the reuse of upstream UDP
	// sockets (see connPool).
	maxSocketUses  = 32
	maxIdleSockets = 256
)

var errAllUpstreamsFailed = errors.New("every upstream failed")

type upstream struct {
	addr      string
	udp, tcp  *dns.Client
	pool      *connPool
	deadUntil atomic.Int64 // unix nanoseconds; 0 when healthy
	dur       prometheus.Observer
	errs      map[string]prometheus.Counter
}

// upstreams is the ordered list of dns.upstreams.
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
			udp:  &dns.Client{Net: "udp", Timeout: udpTryTimeout, UDPSize: upstreamUDPSize},
			tcp:  &dns.Client{Net: "tcp", Timeout: tcpTryTimeout},
			pool: &connPool{addr: na, free: make(chan *pooledConn, maxIdleSockets)},
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

// exchange asks the upstreams in order and returns the first good answer.
// q is built by the caller and not changed. SERVFAIL and REFUSED move on
// to the next upstream; if none does better, the last such answer is
// returned.
func (us *upstreams) exchange(q *dns.Msg) (*dns.Msg, error) {
	var fallback *dns.Msg
	var lastErr error
	tried := 0
	for pass := 0; pass < 2; pass++ {
		for _, u := range us.list {
			// The first pass skips upstreams known dead; the second, run
			// only if every one was skipped, tries them anyway.
			if pass == 0 && !u.usable(time.Now().UnixNano()) {
				continue
			}
			tried++
			r, err := u.exchange(q)
			if err != nil {
				lastErr = err
				continue
			}
			if r.Rcode == dns.RcodeServerFailure || r.Rcode == dns.RcodeRefused {
				u.errs[errRcode].Inc()
				fallback = r
				continue
			}
			return r, nil
		}
		if tried > 0 {
			break
		}
	}
	if fallback != nil {
		return fallback, nil
	}
	if lastErr == nil {
		lastErr = errAllUpstreamsFailed
	}
	return nil, lastErr
}

func (u *upstream) exchange(q *dns.Msg) (*dns.Msg, error) {
	start := time.Now()
	r, err := u.exchangeUDP(q)
	if err == nil && r.Truncated {
		r, _, err = u.tcp.Exchange(q, u.addr)
	}
	if err == nil {
		err = checkAnswer(q, r)
	}
	if err != nil {
		kind := errNetwork
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			kind = errTimeout
		case errors.Is(err, dns.ErrId), errors.Is(err, errMismatchedAnswer):
			kind = errMismatch
		}
		u.errs[kind].Inc()
		if kind != errMismatch {
			u.deadUntil.Store(time.Now().Add(deadFor).UnixNano())
		}
		return nil, fmt.Errorf("asking %s: %w", u.addr, err)
	}
	u.deadUntil.Store(0)
	u.dur.Observe(time.Since(start).Seconds())
	return r, nil
}

var errMismatchedAnswer = errors.New("answer does not match the question")

// checkAnswer makes sure r answers q (the ID is checked by miekg).
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

func (u *upstream) exchangeUDP(q *dns.Msg) (*dns.Msg, error) {
	pc, err := u.pool.get()
	if err != nil {
		return nil, err
	}
	r, _, err := u.udp.ExchangeWithConn(q, pc.Conn)
	pc.uses++
	u.pool.put(pc, err == nil)
	return r, err
}

// connPool keeps connected UDP sockets to one upstream for reuse. A socket
// serves one query at a time and at most maxSocketUses queries, then it is
// closed: source ports (chosen at random by the kernel) keep changing,
// while the cost of a fresh socket per query (socket, connect, poller
// registration, close: over half of the CPU of a cache miss) is mostly
// saved. A socket whose exchange failed is never reused, so a late answer
// cannot be read by the next query (miekg also skips answers with another
// ID).
type connPool struct {
	addr string
	free chan *pooledConn
}

type pooledConn struct {
	*dns.Conn
	uses int
}

func (p *connPool) get() (*pooledConn, error) {
	select {
	case c := <-p.free:
		return c, nil
	default:
	}
	c, err := net.DialTimeout("udp", p.addr, udpTryTimeout)
	if err != nil {
		return nil, err
	}
	return &pooledConn{Conn: &dns.Conn{Conn: c, UDPSize: upstreamUDPSize}}, nil
}

func (p *connPool) put(c *pooledConn, ok bool) {
	if ok && c.uses < maxSocketUses {
		select {
		case p.free <- c:
			return
		default:
		}
	}
	c.Close()
}

// close closes the idle sockets (the upstream list was replaced).
func (p *connPool) close() {
	for {
		select {
		case c := <-p.free:
			c.Close()
		default:
			return
		}
	}
}

// close releases the idle sockets of every upstream.
func (us *upstreams) close() {
	for _, u := range us.list {
		u.pool.close()
	}
}
