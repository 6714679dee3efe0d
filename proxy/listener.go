package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Why a client connection was refused: the fixed label set of
// connections_refused_total.
const (
	refusedMaxConns  = "max_connections"
	refusedPerClient = "per_client"
	refusedNonClient = "non_client"
)

// Connections from addresses outside `clients` are only ever answered
// 403 not_a_client and closed; they are counted apart, in a small pool of
// their own, so that strangers cannot take the clients' slots.
const (
	maxNonClientConns      = 64
	maxNonClientConnsPerIP = 4
)

// connSlots caps the client connections open at once, in all and per
// client address, across every listener of the proxy (explicit and
// transparent): proxy.max_connections is one budget of file descriptors.
// A connection past a cap is accepted and answered at once (a short 503
// page on an HTTP listener, a plain close on the TLS one), counted and
// logged (at most one line per refuseLogEvery), rather than left waiting
// in the kernel's backlog where nobody sees why the proxy stopped
// answering.
type connSlots struct {
	set       func() *settings // the caps in force, read at each accept
	gauge     prometheus.Gauge
	refusedBy map[string]prometheus.Counter
	logger    *zap.Logger

	mu         sync.Mutex
	open       int
	byIP       map[netip.Addr]int
	nonClients int // open connections from non-clients, counted in byIP too

	// refusing bounds the goroutines answering refused connections; past
	// it a refused connection is just closed.
	refusing    chan struct{}
	refusedLast atomic.Int64 // when the last refusal line was logged (unix ns)
	refusedN    atomic.Int64 // refusals since then
}

func newConnSlots(set func() *settings, m *metrics, logger *zap.Logger) *connSlots {
	return &connSlots{
		set:       set,
		gauge:     m.activeConns,
		refusedBy: m.connsRefusedBy,
		logger:    logger,
		byIP:      make(map[netip.Addr]int),
		refusing:  make(chan struct{}, refuseWriters),
	}
}

// limitListener is one listener taking its connections' slots from the
// proxy's connSlots.
type limitListener struct {
	net.Listener
	*connSlots
	bodyIdle time.Duration
	// isClient reports whether an address is one of `clients`; others go
	// to the non-client pool. nil: everyone is a client.
	isClient func(netip.Addr) bool
	// onRefused is told of each answer net/http gives before any handler
	// runs (a request it cannot parse): what the client sent, and the
	// status (see clientConn.Write).
	onRefused func(ip netip.Addr, head []byte, status int)
	// closeRefused: a refused connection is closed without an answer (a
	// TLS listener, where an HTTP page would be noise to the client).
	closeRefused bool
}

const (
	refuseLogEvery  = 10 * time.Second
	refuseWriters   = 64
	refuseWriteWait = time.Second
	refuseDrainWait = 200 * time.Millisecond
)

var refusedPage = func() []byte {
	body := "<!doctype html><title>Busy</title><p>The school's web filter is serving as many connections as it can. Try again in a moment.</p>\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n" +
		"Retry-After: 5\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

func newLimitListener(ln net.Listener, slots *connSlots, o *Options) *limitListener {
	return &limitListener{Listener: ln, connSlots: slots, bodyIdle: o.BodyIdleTimeout}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		var ip netip.Addr
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			ip = ta.AddrPort().Addr().Unmap()
		}
		nonClient := l.isClient != nil && !l.isClient(ip)
		if reason := l.admit(ip, nonClient); reason != "" {
			l.refuse(c, ip, reason)
			continue
		}
		l.gauge.Inc()
		return &clientConn{Conn: c, l: l, ip: ip, nonClient: nonClient}, nil
	}
}

// admit takes a slot for a connection from ip, or says which cap is full.
func (l *connSlots) admit(ip netip.Addr, nonClient bool) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if nonClient {
		if l.nonClients >= maxNonClientConns || l.byIP[ip] >= maxNonClientConnsPerIP {
			return refusedNonClient
		}
		l.nonClients++
		l.byIP[ip]++
		return ""
	}
	set := l.set()
	if l.open >= set.maxConns {
		return refusedMaxConns
	}
	if l.byIP[ip] >= set.perClient {
		return refusedPerClient
	}
	l.open++
	l.byIP[ip]++
	return ""
}

func (l *connSlots) release(ip netip.Addr, nonClient bool) {
	l.mu.Lock()
	if nonClient {
		l.nonClients--
	} else {
		l.open--
	}
	if n := l.byIP[ip] - 1; n > 0 {
		l.byIP[ip] = n
	} else {
		delete(l.byIP, ip)
	}
	l.mu.Unlock()
	l.gauge.Dec()
}

// refuse answers c with the 503 page and closes it, off the accept loop.
func (l *limitListener) refuse(c net.Conn, ip netip.Addr, reason string) {
	l.refusedBy[reason].Inc()
	l.refusedN.Add(1)
	if last := l.refusedLast.Load(); time.Since(time.Unix(0, last)) >= refuseLogEvery &&
		l.refusedLast.CompareAndSwap(last, time.Now().UnixNano()) {
		msg := "refusing client connections: proxy.max_connections reached"
		switch reason {
		case refusedPerClient:
			msg = "refusing client connections: too many from one address"
		case refusedNonClient:
			msg = "refusing connections from addresses outside clients: their small pool is full"
		}
		set := l.set()
		l.logger.Warn(msg, zap.String("reason", reason), zap.Stringer("ip", ip),
			zap.Int64("refused_since_last_line", l.refusedN.Swap(0)), zap.Int("max_connections", set.maxConns),
			zap.Int("max_per_client", set.perClient))
	}
	if l.closeRefused {
		c.Close()
		return
	}
	select {
	case l.refusing <- struct{}{}:
	default:
		c.Close()
		return
	}
	go func() {
		defer func() { <-l.refusing }()
		defer c.Close()
		// The answer waits for the request's first bytes (an HTTP client
		// takes bytes that come before its request for a broken
		// connection), and what follows them is read before closing, so
		// that the close is a FIN and not a reset that could lose the page.
		var buf [4096]byte
		c.SetReadDeadline(time.Now().Add(refuseWriteWait)) //nolint:errcheck
		if _, err := c.Read(buf[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
		c.SetWriteDeadline(time.Now().Add(refuseWriteWait)) //nolint:errcheck
		if _, err := c.Write(refusedPage); err != nil {
			return
		}
		closeWrite(c)
		c.SetReadDeadline(time.Now().Add(refuseDrainWait)) //nolint:errcheck
		io.Copy(io.Discard, io.LimitReader(c, 64<<10))     //nolint:errcheck
	}()
}

// clientConn is an accepted client connection that gives its slot back
// when closed (once). It also watches request bodies: while armed (a
// request body is being read), a connection whose reads bring no byte
// for bodyIdle is closed, so a client that announces a body and stalls
// cannot hold a slot for long. Every read that brings bytes counts, so a
// slow upload that progresses is never cut.
type clientConn struct {
	net.Conn
	l         *limitListener
	ip        netip.Addr
	nonClient bool // in the non-client pool
	closed    atomic.Bool
	lastRead  atomic.Int64 // unix ns of the last read that brought bytes
	armed     atomic.Bool
	stalled   atomic.Bool // closed by the body watch

	wmu   sync.Mutex
	watch *time.Timer

	// The bytes of a request read before a handler takes it: if net/http
	// refuses the request instead (400, 431, 505 ...), its answer is
	// written here with no handler, and the access log still gets a line
	// naming what the client asked for.
	hmu      sync.Mutex
	head     []byte
	inReq    bool // a handler has the request
	hijacked bool // a tunnel or WebSocket: no more requests on it
}

// headCap bounds the bytes kept of a request that has no handler yet:
// enough for the request line and the first headers.
const headCap = 4 << 10

func (c *clientConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && c.armed.Load() {
		c.lastRead.Store(time.Now().UnixNano())
	}
	if n > 0 && c.l.onRefused != nil {
		c.hmu.Lock()
		if !c.inReq && !c.hijacked && len(c.head) < headCap {
			c.head = append(c.head, b[:min(n, headCap-len(c.head))]...)
		}
		c.hmu.Unlock()
	}
	return n, err
}

// Write sees every answer; one that starts a status line while no handler
// has a request is net/http refusing what it read.
func (c *clientConn) Write(b []byte) (int, error) {
	if c.l.onRefused != nil && len(b) >= 12 && bytes.HasPrefix(b, []byte("HTTP/1.")) {
		c.hmu.Lock()
		var head []byte
		if !c.inReq && !c.hijacked && len(c.head) > 0 {
			head = c.head
			c.head = nil
		}
		c.hmu.Unlock()
		if head != nil {
			status, _ := strconv.Atoi(string(b[9:12]))
			c.l.onRefused(c.ip, head, status)
		}
	}
	return c.Conn.Write(b)
}

// startRequest and endRequest bracket a handler's work on a request: what
// is read meanwhile is its body, not a new request.
func (c *clientConn) startRequest() {
	c.hmu.Lock()
	c.inReq, c.head = true, c.head[:0]
	c.hmu.Unlock()
}

// endRequest is startRequest's end; nil (a connection that is not a
// clientConn) does nothing.
func (c *clientConn) endRequest() {
	if c == nil {
		return
	}
	c.hmu.Lock()
	c.inReq, c.head = false, c.head[:0]
	c.hmu.Unlock()
}

// hijack marks the connection as no longer HTTP.
func (c *clientConn) hijack() {
	c.hmu.Lock()
	c.hijacked, c.head = true, nil
	c.hmu.Unlock()
}

func (c *clientConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.wmu.Lock()
		if c.watch != nil {
			c.watch.Stop()
		}
		c.wmu.Unlock()
		c.l.release(c.ip, c.nonClient)
	}
	return err
}

// armBody starts watching a request body being read.
func (c *clientConn) armBody() {
	idle := c.l.bodyIdle
	if idle <= 0 {
		return
	}
	c.lastRead.Store(time.Now().UnixNano())
	c.armed.Store(true)
	c.wmu.Lock()
	if c.watch == nil {
		c.watch = time.AfterFunc(idle, c.checkBody)
	} else {
		c.watch.Reset(idle)
	}
	c.wmu.Unlock()
}

// disarmBody stops watching: the body is read, or the request has none.
func (c *clientConn) disarmBody() { c.armed.Store(false) }

func (c *clientConn) checkBody() {
	if !c.armed.Load() || c.closed.Load() {
		return
	}
	idle := c.l.bodyIdle
	if since := time.Since(time.Unix(0, c.lastRead.Load())); since < idle {
		c.wmu.Lock()
		c.watch.Reset(idle - since)
		c.wmu.Unlock()
		return
	}
	c.stalled.Store(true)
	c.Close()
}

// tcp returns the underlying TCP connection, so that a tunnel can relay
// with splice(2) between two *net.TCPConn.
func (c *clientConn) tcp() (*net.TCPConn, bool) {
	t, ok := c.Conn.(*net.TCPConn)
	return t, ok
}

// bodyWatch is a request body read from a watched connection: the watch
// ends when the body does.
type bodyWatch struct {
	io.ReadCloser
	cc *clientConn
}

func (b *bodyWatch) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.cc.disarmBody()
	}
	return n, err
}
