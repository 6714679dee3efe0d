package proxy

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/net/http2"
	"golang.org/x/sys/unix"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/policy"
)

// Transparent gateway mode: the school's gateway redirects its clients'
// TCP port 80 and 443 traffic to two listeners (schoolgate firewall writes
// the rules). The client never spoke to a proxy, so where it was going
// comes from the socket (SO_ORIGINAL_DST, the address before the redirect);
// what it names (Host, SNI) is decided on, and must belong to that address:
// otherwise an allowed name could carry a connection to a blocked site's
// address (host_mismatch).

// modeTransparent is the access log's mode of redirected traffic.
const modeTransparent = "transparent"

// ruleNoOriginalDst refuses a connection to a transparent listener that
// the firewall did not redirect (its destination is the listener itself).
const ruleNoOriginalDst = "not_redirected"

// ip6tSOOriginalDst is IP6T_SO_ORIGINAL_DST (linux/netfilter_ipv6/ip6_tables.h),
// which x/sys/unix does not name.
const ip6tSOOriginalDst = 80

// connDstKey holds a transparent HTTP connection's original destination
// (netip.AddrPort) in its requests' contexts; origDstKey holds it in a
// request's once the destination was checked to be the Host's: the
// dialer connects there.
type (
	connDstKey struct{}
	origDstKey struct{}
)

// originalDst returns where c was going before the firewall redirected it:
// SO_ORIGINAL_DST for IPv4, IP6T_SO_ORIGINAL_DST for IPv6 (the address
// conntrack recorded before NAT). A connection that was not redirected
// has its own local address as the answer, or none.
func originalDst(c *net.TCPConn) (netip.AddrPort, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	la, _ := c.LocalAddr().(*net.TCPAddr)
	v6 := la != nil && la.IP.To4() == nil
	var (
		ap   netip.AddrPort
		gerr error
	)
	err = rc.Control(func(fd uintptr) {
		if !v6 {
			// sockaddr_in is 16 bytes; IPv6Mreq (20) is the smallest
			// fixed-size getsockopt struct x/sys offers that holds it.
			m, err := unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, unix.SO_ORIGINAL_DST)
			if err != nil {
				gerr = err
				return
			}
			b := m.Multiaddr[:]
			ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), binary.BigEndian.Uint16(b[2:4]))
			return
		}
		// sockaddr_in6 is 28 bytes: IPv6MTUInfo (32) holds it.
		m, err := unix.GetsockoptIPv6MTUInfo(int(fd), unix.SOL_IPV6, ip6tSOOriginalDst)
		if err != nil {
			gerr = err
			return
		}
		// The port field holds the kernel's bytes, in network order.
		var pb [2]byte
		binary.NativeEndian.PutUint16(pb[:], m.Addr.Port)
		ap = netip.AddrPortFrom(netip.AddrFrom16(m.Addr.Addr), binary.BigEndian.Uint16(pb[:]))
	})
	if err == nil {
		err = gerr
	}
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("reading the original destination: %w", err)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// redirectedDst returns c's original destination, or an error when c was
// not redirected (it came to the listener's own address).
func redirectedDst(c net.Conn) (netip.AddrPort, error) {
	tcp, ok := c.(*net.TCPConn)
	if !ok {
		if cc, isCC := c.(*clientConn); isCC {
			tcp, ok = cc.tcp()
		}
	}
	if !ok {
		return netip.AddrPort{}, errors.New("not a TCP connection")
	}
	dst, err := originalDst(tcp)
	if err != nil {
		return dst, err
	}
	if la, ok := c.LocalAddr().(*net.TCPAddr); ok {
		l := la.AddrPort()
		if netip.AddrPortFrom(l.Addr().Unmap(), l.Port()) == dst {
			return netip.AddrPort{}, errors.New("the connection was not redirected by the firewall")
		}
	}
	return dst, nil
}

// transparentMetrics are the transparent listeners' counters.
type transparentMetrics struct {
	conns    *prometheus.CounterVec // verdict
	allow    prometheus.Counter
	block    prometheus.Counter
	mismatch prometheus.Counter
	noSNI    prometheus.Counter
}

func newTransparentMetrics() *transparentMetrics {
	m := &transparentMetrics{
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schoolgate_transparent_connections_total",
			Help: "Redirected connections (HTTPS) and requests (HTTP) on the transparent listeners, by verdict.",
		}, []string{"verdict"}),
		mismatch: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "schoolgate_transparent_host_mismatch_total",
			Help: "Redirected connections refused because their destination address does not belong to the name they gave (Host or SNI).",
		}),
		noSNI: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "schoolgate_transparent_no_sni_total",
			Help: "Redirected HTTPS connections whose ClientHello named no server (decided as ip-literal).",
		}),
	}
	m.allow = m.conns.WithLabelValues(policy.Allow.String())
	m.block = m.conns.WithLabelValues(policy.Block.String())
	return m
}

func (m *transparentMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.conns, m.mismatch, m.noSNI}
}

func (m *transparentMetrics) count(st *request) {
	if st.verdict == policy.Block {
		m.block.Inc()
	} else {
		m.allow.Inc()
	}
}

// transparent is the state of the transparent listeners.
type transparent struct {
	once sync.Once
	srv  *http.Server // port 80's requests

	mu  sync.Mutex
	lns map[net.Listener]struct{} // port 443's listeners, closed by Shutdown
}

// ServeTransparentHTTP serves redirected port 80 traffic on ln until
// Shutdown: each request is decided on its Host and path like an explicit
// proxy request (with the block page), and sent to the connection's
// original destination, which must belong to the Host.
func (p *Proxy) ServeTransparentHTTP(ln net.Listener) error {
	p.tp.once.Do(func() {
		p.tp.srv = &http.Server{
			Handler:           http.HandlerFunc(p.serveTransparentHTTP),
			ReadHeaderTimeout: p.srv.ReadHeaderTimeout,
			IdleTimeout:       p.srv.IdleTimeout,
			MaxHeaderBytes:    p.srv.MaxHeaderBytes,
			ErrorLog:          p.srv.ErrorLog,
			ConnContext: func(ctx context.Context, c net.Conn) context.Context {
				ctx = p.srv.ConnContext(ctx, c)
				if dst, err := redirectedDst(c); err == nil {
					ctx = context.WithValue(ctx, connDstKey{}, dst)
				}
				return ctx
			},
			ConnState: p.srv.ConnState,
		}
	})
	p.serving.Store(true)
	ll := newLimitListener(ln, p.slots, &p.o)
	ll.onRefused = p.logRefused
	ll.isClient = p.isClient
	err := p.tp.srv.Serve(ll)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// serveTransparentHTTP handles one redirected HTTP request: it becomes the
// absolute-URI request an explicit proxy would get, with the original
// destination as where it is sent.
func (p *Proxy) serveTransparentHTTP(w http.ResponseWriter, r *http.Request) {
	st := p.newRequest(r)
	st.mode, st.authed = modeTransparent, true
	defer p.tm.count(st)
	defer p.finish(st)
	cc := beginRequest(w, r)
	defer cc.endRequest()
	p.signedIn(st)
	dst, ok := r.Context().Value(connDstKey{}).(netip.AddrPort)
	if !ok {
		st.host = clip(r.Host, 253)
		p.fail(w, st, &BlockedError{Rule: ruleNoOriginalDst,
			Reason: "this connection came to the filter's transparent listener without the firewall redirecting it"})
		return
	}
	if r.Method == http.MethodConnect || r.URL.IsAbs() {
		st.host = clip(r.Host, 253)
		p.fail(w, st, &BadRequestError{Msg: "a redirected connection carries ordinary requests, not proxy requests"})
		return
	}
	host := r.Host
	if host == "" { // HTTP/1.0 without Host: the address is all there is
		host = dst.Addr().String()
		if dst.Addr().Is6() {
			host = "[" + host + "]"
		}
	}
	if _, _, err := net.SplitHostPort(host); err != nil && dst.Port() != 80 {
		h := host
		if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
			h = h[1 : len(h)-1]
		}
		host = net.JoinHostPort(h, strconv.Itoa(int(dst.Port())))
	}
	r.URL.Scheme, r.URL.Host = "http", host
	if p.isPortalHost(st.snap, host) && st.snap.IsClient(st.ip) {
		st.quiet = true
		p.o.Portal.ServeHTTP(w, r)
		return
	}
	st.dst = dst
	watchBody(cc, r)
	p.servePlain(w, r, st)
	p.noteStall(cc, st)
}

// signedIn names st with the user the identity table holds for its
// address (a proxy sign-in, RADIUS, the logon API), if any: a redirected
// connection carries no credentials.
func (p *Proxy) signedIn(st *request) {
	if e, ok := p.ids.Touch(st.ip, st.start); ok {
		st.user, st.named = e.User, e.Profile
	}
}

// checkDestination refuses (host_mismatch) a redirected request or
// connection whose original destination is not an address of host, the
// name decided on: a literal address must be the destination itself, a
// name must resolve to it through the proxy's resolver.
func (p *Proxy) checkDestination(st *request, host string) error {
	addr := st.dst.Addr()
	if host == st.dstHost {
		return nil // checked already (an intercepted connection's, for each request inside)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Unmap() == addr {
			return nil
		}
	} else if p.o.Answers.Has(st.ip, host, addr, st.start) || p.resolvesTo(host, addr) {
		st.dstHost = host
		return nil
	}
	p.tm.mismatch.Inc()
	return &BlockedError{Rule: ruleHostMismatch,
		Reason: fmt.Sprintf("this connection goes to %s, which is not an address of %s", addr, host)}
}

// dialContext is the transport's dialer: a redirected request is sent to
// its original destination (checked against its Host), anything else to
// the address the name resolves to.
func (p *Proxy) dialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if dst, ok := ctx.Value(origDstKey{}).(netip.AddrPort); ok {
		if _, port, err := net.SplitHostPort(address); err == nil && port == strconv.Itoa(int(dst.Port())) {
			address = dst.String()
		}
	}
	return p.dialer.DialContext(ctx, network, address)
}

// ServeTransparentHTTPS serves redirected port 443 traffic on ln until
// Shutdown: each connection's ClientHello is read (reassembled across
// segments and records), decided on its SNI (no SNI: as ip-literal; ECH
// hiding the name: as ech), checked to go to an address of that name, and
// then relayed to the original destination, the hello's bytes first. A
// blocked connection is cut.
func (p *Proxy) ServeTransparentHTTPS(ln net.Listener) error {
	p.tp.mu.Lock()
	if p.tp.lns == nil {
		p.tp.lns = make(map[net.Listener]struct{})
	}
	p.tp.lns[ln] = struct{}{}
	p.tp.mu.Unlock()
	p.serving.Store(true)
	ll := newLimitListener(ln, p.slots, &p.o)
	ll.isClient, ll.closeRefused = p.isClient, true
	var delay time.Duration
	for {
		c, err := ll.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
				errors.Is(err, syscall.ECONNABORTED) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		go p.serveTransparentTLS(c)
	}
}

// closeTransparent closes the transparent HTTPS listeners and shuts the
// HTTP one down.
func (p *Proxy) closeTransparent(ctx context.Context) error {
	p.tp.mu.Lock()
	for ln := range p.tp.lns {
		ln.Close()
	}
	p.tp.lns = nil
	p.tp.mu.Unlock()
	if p.tp.srv != nil {
		return p.tp.srv.Shutdown(ctx)
	}
	return nil
}

// serveTransparentTLS handles one redirected HTTPS connection, in steps:
// read its ClientHello (readTransparentHello), decide on the name it gives
// (decideHello), then show a blocked one the block page or cut it, and
// check that an allowed one goes to an address of that name before it is
// intercepted (an intercepted host: TLS terminated and every request
// inside decided on its full URL, as in an intercepted CONNECT) or
// relayed to its original destination.
func (p *Proxy) serveTransparentTLS(c net.Conn) {
	st := &request{start: p.now(), snap: p.engine.Snapshot(), method: http.MethodConnect, mode: modeTransparent}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		st.ip = ap.Addr().Unmap()
	}
	tc := &tunnelConns{client: c, up: nopConn{}}
	defer func() {
		if r := recover(); r != nil {
			p.logger.Error("transparent connection panic", zap.Any("panic", r), zap.Stack("stack"))
		}
		tc.close()
		p.finish(st)
		p.tm.count(st)
	}()
	p.signedIn(st)
	st.profile = st.snap.Profile(st.user, st.ip)
	h, err := p.readTransparentHello(st, c)
	if err != nil {
		p.cut(st, err)
		return
	}
	if p.portalHello(st, c, h) {
		if st.quiet { // handed to the portal: its connection now
			tc = &tunnelConns{client: nopConn{}, up: nopConn{}}
		}
		return
	}
	blocked := p.decideHello(st, h)
	mitm := p.settings().mitm
	// A host the school intercepts is intercepted blocked or not, as an
	// intercepted CONNECT is (each request inside decided on its URL, the
	// block page for blocked ones); only when the hello names it, since a
	// device without SNI asks for the address (Host: the address), which a
	// certificate and requests for a name from the DNS filter would not
	// match; and never for what the hello hides (ip-literal, ech) or a
	// system refusal.
	intercept := mitm != nil && h.hello.sni != "" && st.snap.Intercepts(st.host, st.cats) &&
		(blocked == nil || st.seen.Empty() && !isSystemRule(st.rule))
	if blocked != nil && !intercept {
		// With the school CA, a named host's block page, in TLS with a
		// certificate minted for it, as for a blocked CONNECT.
		if mitm != nil && h.name != "" && st.seen.Empty() && !isSystemRule(st.rule) {
			p.serveTransparentTerminated(c, h.buf, newInnerTunnel(tunnelBlockPage, st, int(st.dst.Port()), blocked, mitm))
			return
		}
		p.cut(st, blocked)
		return
	}
	if err := p.checkHelloDestination(st, h); err != nil {
		p.cut(st, err)
		return
	}
	if n := p.tunnelsOpen.Add(1); n > int64(p.settings().maxTunnels) {
		p.tunnelsOpen.Add(-1)
		p.cut(st, &OverloadError{What: "too many tunnels open"})
		return
	}
	defer p.tunnelsOpen.Add(-1)
	if intercept {
		p.serveTransparentTerminated(c, h.buf, newInnerTunnel(tunnelIntercept, st, int(st.dst.Port()), nil, mitm))
		return
	}
	p.relayTransparent(st, tc, h)
}

// transparentHello is what a redirected HTTPS connection's first bytes
// say: the bytes read (to be replayed), the ClientHello, and the name it
// is decided on (the SNI, or a name the DNS filter gave this client for
// the address; "" for neither).
type transparentHello struct {
	buf   []byte
	hello helloInfo
	name  string
}

// readTransparentHello notes c's original destination in st and reads its
// ClientHello. A connection that was not redirected, is not TLS, or names
// no host name is refused; one that left or said nothing in time gives
// errClientGone.
func (p *Proxy) readTransparentHello(st *request, c net.Conn) (*transparentHello, error) {
	dst, err := redirectedDst(c)
	if err != nil {
		st.host = "-"
		return nil, &BlockedError{Rule: ruleNoOriginalDst, Reason: err.Error()}
	}
	st.dst = dst
	st.host = dst.Addr().String()
	buf, hello, err := peekClientHello(c, make([]byte, 0, 4096), p.o.HelloTimeout)
	switch {
	case err == nil:
	case errors.Is(err, errNotTLS):
		return nil, &BlockedError{Rule: ruleTLSRequired, Reason: "not TLS on a redirected HTTPS port"}
	case errors.Is(err, errMalformed):
		return nil, &BlockedError{Rule: ruleTLSMalformed, Reason: "malformed TLS ClientHello"}
	default:
		return nil, errClientGone
	}
	h := &transparentHello{buf: buf, hello: hello}
	if hello.sni != "" {
		n, ok := categories.NormalizeHost(hello.sni)
		if !ok || !dialableHost(n) {
			return nil, &BlockedError{Rule: ruleTLSMalformed, Reason: "the TLS server name (SNI) is not a host name"}
		}
		h.name, st.host = n, n
	}
	return h, nil
}

// decideHello decides the connection st on the name its hello gives. A
// hello without SNI is decided on the names the DNS filter recently gave
// this client for the address, each of which must be allowed (the log
// names the one that blocked, else the latest, which h.name becomes);
// without any, on the address, as ip-literal.
func (p *Proxy) decideHello(st *request, h *transparentHello) error {
	if h.name != "" {
		st.seen = policy.Hidden(st.host, policy.Hello{SNI: h.name, ECH: h.hello.ech})
		return p.decide(st, st.host, "")
	}
	p.tm.noSNI.Inc()
	names := p.o.Answers.Names(st.ip, st.dst.Addr(), st.start)
	if len(names) == 0 {
		st.seen = policy.Hidden(st.host, policy.Hello{ECH: h.hello.ech})
		return p.decide(st, st.host, "")
	}
	for _, n := range slices.Backward(names) {
		st.host = n
		if blocked := p.decide(st, n, ""); blocked != nil {
			return blocked
		}
	}
	h.name = st.host
	return nil
}

// checkHelloDestination refuses (host_mismatch) a connection whose SNI
// names a host the original destination is not an address of. A
// SafeSearch engine's name is exempt: it goes to its SafeSearch servers,
// whatever address the client chose (the DNS filter answers it with
// theirs). A name from the DNS filter's answers to this client is the
// address's already.
func (p *Proxy) checkHelloDestination(st *request, h *transparentHello) error {
	if st.ss != nil {
		return nil
	}
	if h.hello.sni == "" {
		st.dstHost = h.name
		return nil
	}
	return p.checkDestination(st, h.name)
}

// relayTransparent dials where st goes (its original destination, or a
// SafeSearch engine's servers) and relays the connection there, the hello
// first.
func (p *Proxy) relayTransparent(st *request, tc *tunnelConns, h *transparentHello) {
	dial := st.dst.String()
	if st.ss != nil {
		dial = net.JoinHostPort(dialHost(st, h.name), strconv.Itoa(int(st.dst.Port())))
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.o.DialTimeout)
	up, err := p.dialer.DialContext(ctx, "tcp", dial)
	cancel()
	if err != nil {
		p.recordOutcome(st, upstreamOutcome(ctx, err))
		return
	}
	tc.up = up
	defer p.trackTunnel(tc)()
	st.status = http.StatusOK
	p.beginSession(st)
	p.relay(st, tc, h.buf, int(st.dst.Port()), true) // redirected port 443: TLS only
}

// cut notes in st that its connection was refused (err) after the client
// got nothing but a closed connection: the refusal's 403 on the line.
func (p *Proxy) cut(st *request, err error) {
	p.recordOutcome(st, err)
	if st.status != statusClientGone {
		st.status = statusCut
	}
}

// serveTransparentTerminated terminates a redirected connection's TLS
// with a certificate the school CA mints for its SNI (the ClientHello
// already read is replayed to the TLS server), then serves the requests
// inside as those of an intercepted or block-page CONNECT tunnel t
// (terminate.go): each decided on its full URL, naming t's host or
// refused with 421, forwarded to the original destination.
func (p *Proxy) serveTransparentTerminated(c net.Conn, hello []byte, t *innerTunnel) {
	tc := &tunnelConns{client: c, up: c}
	defer p.trackTunnel(tc)()
	c.SetDeadline(time.Now().Add(p.o.HelloTimeout)) //nolint:errcheck // a failed handshake says it
	if t.kind != tunnelBlockPage {
		t.st.status = http.StatusOK
	}
	p.beginSession(t.st)
	tconn := tls.Server(&prefixConn{Conn: c, prefix: hello}, p.terminateTLS(t))
	if err := tconn.Handshake(); err != nil {
		p.logger.Debug("transparent connection: TLS handshake failed", zap.String("host", t.host), zap.Error(err))
		return
	}
	c.SetDeadline(time.Time{}) //nolint:errcheck
	p.serveHTTPConn(tconn, c, t, tconn.ConnectionState().NegotiatedProtocol == http2.NextProtoTLS)
}

// nopConn stands for a tunnel's upstream before it is dialled.
type nopConn struct{ net.Conn }

func (nopConn) Close() error { return nil }
