package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/http2"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/policy"
)

// A CONNECT tunnel is either relayed (tunnel.go) or terminated by the
// proxy and read as HTTP, one request at a time, each decided and logged
// like plain HTTP:
//
//   - port 80, always (whatever proxy.connect_ports says): browsers tunnel
//     ws:// (and some http://) that way, and an opaque tunnel would reach any
//     Host behind an allowed name;
//   - an intercepted host: TLS with a certificate minted from the school CA;
//   - a blocked host, when the school has a CA: TLS again, just to show the
//     block page (a browser shows no answer to a CONNECT of its own).
//
// Inside, every request must name the tunnel's host (Host, absolute-form
// authority, HTTP/2 :authority), or it is refused with 421 (host_mismatch):
// the upstream gets exactly the host that was decided on.

type tunnelKind uint8

const (
	tunnelRelay     tunnelKind = iota // relayed by the kernel, ClientHello checked
	tunnelIntercept                   // TLS terminated, requests decided and forwarded
	tunnelBlockPage                   // TLS terminated, every request gets the block page
	tunnelHTTP                        // port 80: plain HTTP, requests decided and forwarded
)

// httpPort is the CONNECT port always read as HTTP.
const httpPort = 80

// ruleHostMismatch is logged for a request (or a tunnel's TLS server name)
// that names another host than the CONNECT did.
const ruleHostMismatch = "host_mismatch"

// tunnelKindFor says how a CONNECT to port, decided as st (blocked is the
// host's refusal, if any), is served, whether it is let in at all, and the
// school CA it terminates TLS with (the settings' of this moment: a reload
// does not change an open tunnel's).
func (p *Proxy) tunnelKindFor(st *request, port int, blocked error) (tunnelKind, bool, *interceptor) {
	if port == httpPort {
		return tunnelHTTP, true, nil
	}
	mitm := p.settings().mitm
	open := false
	for _, cp := range st.snap.Config.Proxy.ConnectPorts {
		open = open || cp == port
	}
	switch {
	case mitm != nil && st.snap.Intercepts(st.host, st.cats):
		return tunnelIntercept, open, mitm
	case blocked != nil:
		return tunnelBlockPage, open && mitm != nil, mitm
	default:
		return tunnelRelay, open, nil
	}
}

// innerTunnel is a terminated tunnel: the CONNECT it answers (logged when
// it ends) and the authority every request inside must name.
type innerTunnel struct {
	kind      tunnelKind
	st        *request
	host      string // the CONNECT's normalised host
	port      int
	scheme    string       // of the requests inside: https, or http on port 80
	authority string       // host[:port] as a URL of that scheme writes it
	blocked   error        // tunnelBlockPage: the page every request gets
	mitm      *interceptor // mints the certificate (TLS kinds)
	// seen is what the ClientHello hid (policy.Hidden: ip-literal for an
	// address named by no SNI), set by the handshake; every request
	// inside is decided with it.
	seen categories.Set

	// mu guards st while the requests of a block-page tunnel note what
	// they were shown (HTTP/2 serves several at once).
	mu sync.Mutex
}

func newInnerTunnel(kind tunnelKind, st *request, port int, blocked error, mitm *interceptor) *innerTunnel {
	t := &innerTunnel{kind: kind, st: st, host: st.host, port: port, scheme: "https", blocked: blocked, mitm: mitm}
	def := 443
	if kind == tunnelHTTP {
		t.scheme, def = "http", httpPort
	}
	t.authority = hostPort(st.host, port, def)
	if kind != tunnelBlockPage {
		// The tunnel is not a visit: the requests inside are, each on its
		// own line with its own rule (the block page for blocked ones), and
		// the report counts them so.
		st.verdict, st.rule = policy.Allow, ruleIntercept
	} else {
		// A refusal whatever the device makes of the TLS that follows.
		st.status = statusCut
	}
	return t
}

// defaultPort is the port a Host without one names inside t.
func (t *innerTunnel) defaultPort() int {
	if t.scheme == "http" {
		return httpPort
	}
	return 443
}

// agree checks that r names t's host and port: r.Host is the Host header
// of an origin-form request, the authority of an absolute-form one (whose
// Host header RFC 9112 §3.2.2 says to ignore, as net/http does) or
// HTTP/2's :authority; r.URL.Host is set for absolute form only. An empty
// Host (HTTP/1.0) names nothing else and agrees.
func (t *innerTunnel) agree(r *http.Request) error {
	for _, a := range [2]string{r.Host, r.URL.Host} {
		if a == "" {
			continue
		}
		host, port, ok := splitAuthority(a, t.defaultPort())
		if !ok || host != t.host || port != t.port {
			return &HostMismatchError{Tunnel: t.authority, Asked: clip(a, 260)}
		}
	}
	return nil
}

// splitAuthority reads a Host header or URL authority as a normalised
// host and a port (def when it names none).
func splitAuthority(a string, def int) (string, int, bool) {
	hostRaw, port := a, def
	if h, p, ok := splitHostPort(a); ok {
		hostRaw, port = h, p
	} else if i := strings.LastIndexByte(a, ':'); i >= 0 && i == len(a)-1 {
		hostRaw = a[:i] // "host:" names the default port (RFC 3986 §3.2.3)
	}
	host, ok := categories.NormalizeHost(hostRaw)
	return host, port, ok
}

// serveTerminated answers the CONNECT st with 200, terminates TLS unless t
// is plain HTTP, and serves the requests inside until the client is done.
func (p *Proxy) serveTerminated(w http.ResponseWriter, r *http.Request, st *request, t *innerTunnel) {
	client, first, ok := p.hijackConnect(w, st, 0)
	if !ok {
		return
	}
	tc := &tunnelConns{client: client, up: client}
	defer p.trackTunnel(tc)()
	var conn net.Conn = client
	if len(first) > 0 {
		conn = &prefixConn{Conn: client, prefix: first}
	}
	client.SetDeadline(time.Now().Add(p.o.HelloTimeout)) //nolint:errcheck // a failed write says it
	if _, err := io.WriteString(client, establishedLine(r)); err != nil {
		p.recordOutcome(st, errClientGone)
		return
	}
	if t.kind != tunnelBlockPage {
		st.status = http.StatusOK
	}
	p.beginSession(st) // a tunnel can last hours: journaled, as a relayed one is
	h2 := false
	if t.kind != tunnelHTTP {
		tconn := tls.Server(conn, p.terminateTLS(t))
		if err := tconn.Handshake(); err != nil {
			p.logger.Debug("terminated tunnel: TLS handshake failed", zap.String("host", t.host), zap.Error(err))
			return
		}
		conn = tconn
		h2 = tconn.ConnectionState().NegotiatedProtocol == http2.NextProtoTLS
	}
	client.SetDeadline(time.Time{}) //nolint:errcheck
	p.serveHTTPConn(conn, client, t, h2)
}

// serveHTTPConn serves the requests of t read from conn (client's, or
// the TLS on it) until the client is done.
func (p *Proxy) serveHTTPConn(conn, client net.Conn, t *innerTunnel, h2 bool) {
	// The TLS records of request bodies arrive through the client's
	// connection: its body watch cuts a stalled HTTP/1 upload here too.
	// HTTP/2 multiplexes bodies on the connection, so a stream gets a read
	// deadline of its own instead (streamBody).
	cc, _ := client.(*clientConn)
	if h2 {
		cc = nil
	}
	var handlers sync.WaitGroup
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		p.serveInner(w, r, t, cc)
	})
	srv := &http.Server{
		ReadHeaderTimeout: p.o.ReadHeaderTimeout,
		IdleTimeout:       p.o.ClientIdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          p.srv.ErrorLog,
		ConnState:         func(_ net.Conn, s http.ConnState) { disarmIdle(cc, s) },
		Handler:           handler,
	}
	if h2 {
		h2s := &http2.Server{MaxConcurrentStreams: 100, IdleTimeout: p.o.ClientIdleTimeout}
		h2s.ServeConn(conn, &http2.ServeConnOpts{BaseConfig: srv, Handler: handler})
		// Handlers are started by ServeConn's loop only, so every Add
		// came before this Wait.
		handlers.Wait()
		return
	}
	done := make(chan struct{})
	srv.Serve(&oneConnListener{c: &notifyConn{Conn: conn, done: done}, done: done}) //nolint:errcheck // ends when the conn does
	<-done
}

// errSNIMismatch fails the handshake of an intercepted tunnel whose TLS
// server name is not the CONNECT's host.
var errSNIMismatch = errors.New("the TLS server name is not the CONNECT host")

// terminateTLS is the TLS server side of t: a certificate for the CONNECT
// host (only), HTTP/2 or HTTP/1.1. An intercepted tunnel whose ClientHello
// names another host fails its handshake and is logged host_mismatch; a
// block-page tunnel shows its page whatever the name.
func (p *Proxy) terminateTLS(t *innerTunnel) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{http2.NextProtoTLS, "http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if t.kind == tunnelIntercept && hello.ServerName == "" {
				t.seen = policy.Hidden(t.host, policy.Hello{})
			}
			if t.kind == tunnelIntercept && hello.ServerName != "" {
				if name, ok := categories.NormalizeHost(hello.ServerName); !ok || name != t.host {
					p.sniMismatch(t.st, name, hello.ServerName)
					return nil, errSNIMismatch
				}
			}
			return t.mitm.cert(t.host)
		},
	}
}

// sniMismatch notes in st (the CONNECT) that its tunnel was refused because
// the ClientHello named another host; the log line names that host, with
// a cut tunnel's 403.
func (p *Proxy) sniMismatch(st *request, name, raw string) {
	p.logger.Info("tunnel refused: the TLS server name (SNI) is not the CONNECT host; domain fronting",
		zap.String("connect_host", st.host), zap.String("sni", clip(raw, 260)), zap.Stringer("ip", st.ip),
		zap.String("user", st.user))
	if name != "" {
		d := p.engine.Decide(policy.Args{User: st.user, Profile: st.named, IP: st.ip, Host: name, Time: st.start})
		st.host, st.cats = name, d.Categories
	}
	st.verdict, st.rule, st.status = policy.Block, ruleHostMismatch, statusCut
}

// serveInner serves one request read inside the terminated tunnel t.
func (p *Proxy) serveInner(w http.ResponseWriter, r *http.Request, t *innerTunnel, cc *clientConn) {
	st := t.st
	inner := &request{start: p.now(), snap: p.engine.Snapshot(), method: r.Method, ip: st.ip, user: st.user, named: st.named, authed: true,
		seen: t.seen, mode: st.mode, dst: st.dst, dstHost: st.dstHost}
	r.URL.User = nil
	if t.kind == tunnelBlockPage {
		// Nothing is forwarded: the tunnel exists to show the CONNECT's
		// block page, and its one log line (the CONNECT's) says it was.
		r.URL.Scheme, r.URL.Host = t.scheme, t.authority
		inner.host, inner.url, inner.profile, inner.cats = st.host, cleanURL(r.URL), st.profile, st.cats
		p.fail(w, inner, t.blocked)
		t.mu.Lock()
		st.status = inner.status
		st.bytes += inner.bytes
		if st.url == "" {
			st.url = inner.url
		}
		t.mu.Unlock()
		return
	}
	defer p.finish(inner)
	if r.Method == http.MethodConnect {
		// Answered (goproxy would), it would open a blind tunnel inside
		// this one, where another TLS could name any host.
		inner.host = t.host
		p.fail(w, inner, &BadRequestError{Msg: "CONNECT inside a tunnel is not allowed"})
		return
	}
	if err := t.agree(r); err != nil {
		p.refuseMismatch(w, r, t, inner, err)
		return
	}
	r.URL.Scheme, r.URL.Host, r.Host = t.scheme, t.authority, t.authority
	var sw *streamWatch
	if cc != nil {
		watchBody(cc, r)
	} else {
		sw = p.streamBody(w, r)
	}
	p.servePlain(w, r, inner)
	p.noteStall(cc, inner)
	if sw != nil && sw.stalled.Load() {
		// The stream was reset: what the upstream failure page said never
		// reached the client, who stopped sending.
		p.recordOutcome(inner, errClientGone)
	}
}

// refuseMismatch answers a request that names another host than its
// tunnel with 421; its log line names the host it asked for, with that
// host's categories, and the rule host_mismatch.
func (p *Proxy) refuseMismatch(w http.ResponseWriter, r *http.Request, t *innerTunnel, inner *request, err error) {
	asked := r.URL.Host
	if asked == "" {
		asked = r.Host
	}
	inner.host = clip(asked, 253)
	if h, _, ok := splitAuthority(asked, t.defaultPort()); ok {
		inner.host = h
		d := p.engine.Decide(policy.Args{User: inner.user, Profile: inner.named, IP: inner.ip, Host: h, Time: inner.start})
		inner.profile, inner.cats = d.Profile, d.Categories
	}
	u := *r.URL
	u.Scheme, u.Host = t.scheme, asked
	inner.url = cleanURL(&u)
	p.logger.Info("request refused: its Host is not the tunnel's host; domain fronting",
		zap.String("tunnel", t.authority), zap.String("host", inner.host), zap.Stringer("ip", inner.ip),
		zap.String("user", inner.user))
	p.fail(w, inner, err)
}

// streamBody gives an HTTP/2 request body the body watch's idle limit as
// a read deadline of its stream, renewed by every read that brings bytes:
// a stalled upload is reset without cutting the other streams.
func (p *Proxy) streamBody(w http.ResponseWriter, r *http.Request) *streamWatch {
	if r.Body == nil || r.Body == http.NoBody || p.o.BodyIdleTimeout <= 0 {
		return nil
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(p.o.BodyIdleTimeout)) != nil {
		return nil
	}
	sw := &streamWatch{ReadCloser: r.Body, rc: rc, idle: p.o.BodyIdleTimeout}
	r.Body = sw
	return sw
}

type streamWatch struct {
	io.ReadCloser
	rc      *http.ResponseController
	idle    time.Duration
	stalled atomic.Bool // a read hit the deadline
}

func (s *streamWatch) Read(b []byte) (int, error) {
	n, err := s.ReadCloser.Read(b)
	if n > 0 && err == nil {
		s.rc.SetReadDeadline(time.Now().Add(s.idle)) //nolint:errcheck // the stream is gone then
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		s.stalled.Store(true)
	}
	return n, err
}

// prefixConn reads prefix first, then the connection.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// oneConnListener serves one connection: the second Accept waits for it to
// close, so that http.Server.Serve returns when the connection ends.
type oneConnListener struct {
	c    net.Conn
	done chan struct{}
	used bool
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if !l.used {
		l.used = true
		return l.c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return l.c.LocalAddr() }

type notifyConn struct {
	net.Conn
	done chan struct{}
	once sync.Once
}

func (c *notifyConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.done) })
	return err
}

// errDetached ends a relay's copy when its tunnel is read as HTTP instead.
var errDetached = errors.New("tunnel detached to be read as HTTP")

// detachHTTP stops relaying tc, whose client's first bytes (first) are an
// HTTP request, closes the upstream connection (no byte was sent to it)
// and serves the requests as in a tunnel to port 80: each one decided
// on its Host and path. downExited closes when the relay's
// server-to-client copy has stopped.
func (p *Proxy) detachHTTP(st *request, tc *tunnelConns, first []byte, port int, downExited <-chan struct{}) {
	tc.detached.Store(true)
	tc.up.SetReadDeadline(time.Now()) //nolint:errcheck // wakes the copy, which sees detached
	<-downExited
	tc.up.Close()
	p.logger.Debug("tunnel carries HTTP: read as HTTP", zap.String("host", st.host), zap.Int("port", port))
	t := newInnerTunnel(tunnelHTTP, st, port, nil, nil)
	p.serveHTTPConn(&prefixConn{Conn: tc.client, prefix: first}, tc.client, t, false)
}

// maxRequestLine bounds how much of a tunnel's first line is read to see
// whether it is an HTTP request.
const maxRequestLine = 8 << 10

// readHTTPStart reads c's first line (buf holds the bytes already read),
// for up to timeout, and reports whether it is an HTTP/1 request line
// ("GET /path HTTP/1.1"). It returns every byte read, to be relayed when
// it is not. A line of another text protocol ("NICK x", "SSH-2.0-...")
// is not HTTP.
func readHTTPStart(c net.Conn, buf []byte, timeout time.Duration) ([]byte, bool) {
	if len(buf) == 0 || buf[0] < 'A' || buf[0] > 'Z' {
		return buf, false
	}
	c.SetReadDeadline(time.Now().Add(timeout)) //nolint:errcheck // a closed conn fails the read
	defer c.SetReadDeadline(time.Time{})       //nolint:errcheck
	for {
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			return buf, isRequestLine(buf[:i])
		}
		if len(buf) >= maxRequestLine {
			return buf, false
		}
		if cap(buf)-len(buf) < 512 {
			buf = append(buf[:len(buf):len(buf)], make([]byte, 4096)...)[:len(buf)]
		}
		n, err := c.Read(buf[len(buf):min(cap(buf), maxRequestLine)])
		buf = buf[:len(buf)+n]
		if err != nil {
			return buf, false
		}
	}
}

// isRequestLine reports whether line (without its LF) is
// "METHOD SP target SP HTTP/1.x", the method upper-case letters.
func isRequestLine(line []byte) bool {
	line = bytes.TrimSuffix(line, []byte("\r"))
	method, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || len(method) == 0 || len(method) > 16 {
		return false
	}
	for _, b := range method {
		if b < 'A' || b > 'Z' {
			return false
		}
	}
	target, version, ok := bytes.Cut(rest, []byte(" "))
	return ok && len(target) > 0 && (string(version) == "HTTP/1.1" || string(version) == "HTTP/1.0")
}
