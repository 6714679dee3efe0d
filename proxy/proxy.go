package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/identity"
	"github.com/schoolgate/schoolgate/logging"
	"github.com/schoolgate/schoolgate/policy"
)

// Options wires the proxy to the rest of schoolgate.
type Options struct {
	Engine *policy.Engine
	Log    *logging.Writer
	// Identity is the table of who is signed in where: proxy sign-ins
	// are recorded in it, and a request without credentials where none
	// are required is named by it (nil: neither).
	Identity   *identity.Table
	Registerer prometheus.Registerer
	Logger     *zap.Logger
	// AdminAddr is the admin listener's address, never reachable through the proxy.
	AdminAddr string
	// PAC, when set, serves the proxy auto-config file to a GET for
	// /proxy.pac or /wpad.dat addressed to the proxy itself (origin-form,
	// not a proxied URL), from a client: browsers then find the proxy
	// without reaching the admin listener.
	PAC http.Handler
	// Portal, when set, is the sign-in page (portal.listen): requests for
	// portal.hostname are handed to it, and clients in portal.networks
	// that nobody is signed in at are sent to it (portal.go).
	Portal Portal

	// The tuning below has sensible defaults (zero values); tests shorten
	// the timeouts.

	// DialTimeout bounds connecting to an upstream server (default 10s).
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds waiting for an upstream's response
	// headers once the request is sent (default 60s); past it: 504.
	ResponseHeaderTimeout time.Duration
	// ReadHeaderTimeout bounds reading a client's request headers (default 10s).
	ReadHeaderTimeout time.Duration
	// ClientIdleTimeout closes a client's idle keep-alive connection (default 2m).
	ClientIdleTimeout time.Duration
	// WriteIdleTimeout cuts a response when the client accepts no bytes
	// for this long (default 2m): a peer that stopped reading or vanished
	// must not hold a goroutine and an upstream connection.
	WriteIdleTimeout time.Duration
	// HelloTimeout is how long a new tunnel waits for the client's first
	// bytes (its TLS ClientHello) before it is closed (default 30s).
	HelloTimeout time.Duration
	// TLSPorts are the CONNECT ports whose tunnels must start with a TLS
	// ClientHello (default [443]); on the other connect_ports a tunnel
	// whose first bytes are not TLS at all is relayed unread.
	TLSPorts []int
	// TunnelIdleTimeout closes a tunnel with no traffic either way (default 5m).
	TunnelIdleTimeout time.Duration
	// MaxTunnels caps concurrent CONNECT tunnels (default:
	// max_connections); a CONNECT past it gets 503.
	MaxTunnels int
	// MaxConnections caps concurrent client connections (default: the
	// config's proxy.max_connections, followed at each reload). A
	// connection past it is answered 503 at once (and counted in
	// connections_refused_total).
	MaxConnections int
	// MaxConnsPerClient caps concurrent connections from one client
	// address, so that one machine cannot take every slot (default: a
	// quarter of MaxConnections, at least 64 — a terminal server or a NAT
	// is one address for many people — and at most MaxConnections).
	MaxConnsPerClient int
	// ConnectionBudget, when set, bounds max_connections from above: what
	// the process's file descriptors allow the proxy (each connection may
	// hold two, the client's and the upstream's). serve derives it from
	// RLIMIT_NOFILE.
	ConnectionBudget int
	// BodyIdleTimeout closes a client connection when a request body
	// being read brings no byte for this long (default 60s): a client that
	// announces a body and stalls must not hold a connection slot. A slow
	// upload that keeps moving is never cut.
	BodyIdleTimeout time.Duration
	// RootCAs verifies upstream certificates (nil: the system's).
	RootCAs *x509.CertPool
	// Resolver resolves upstream names (nil: the system's).
	Resolver *net.Resolver
	// Answers is what the DNS filter recently answered (nil: nothing):
	// transparent mode accepts a destination the client was given for
	// the name it names, and decides a hello without SNI on the names
	// that led to its address.
	Answers *policy.Answers
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	// Content configures the content classifier (content.go).
	Content ContentOptions
}

// Proxy is the forward proxy. It is an http.Handler: plain HTTP goes
// through goproxy with a verifying transport; CONNECT is handled here so
// that the tunnel can be relayed by the kernel and its ClientHello checked.
type Proxy struct {
	o      Options
	engine *policy.Engine
	alog   *logging.Writer
	ids    *identity.Table
	logger *zap.Logger
	m      *metrics
	gp     *goproxy.ProxyHttpServer
	tr     *http.Transport
	ssTr   map[string]*http.Transport // SafeSearch's, by enforcing name (safesearch.go)
	dialer *net.Dialer
	auth   *authCache
	srv    *http.Server
	now    func() time.Time

	set atomic.Pointer[settings] // the CA and limits in force (settings.go)

	content *content // nil when content classification is off

	tp transparent         // the transparent listeners (transparent.go)
	tm *transparentMetrics // their counters

	adminAddr guardAddr
	selfAddr  atomic.Pointer[guardAddr]
	localIPs  []netip.Addr

	slots       *connSlots   // client connections open on every listener, bounded by settings
	tunnelsOpen atomic.Int64 // bounded by settings.maxTunnels
	tmu         sync.Mutex
	tunnels     map[*tunnelConns]struct{}

	serving  atomic.Bool
	stopOnce sync.Once
}

// request is the state of one request, filled in stages and logged once
// at the end (finish).
type request struct {
	start   time.Time
	elapsed time.Duration
	snap    *policy.Snapshot
	ip      netip.Addr
	user    string
	named   string // the profile the identity table named for user, if any
	profile string
	method  string
	host    string
	url     string
	cats    categories.Set
	verdict policy.Verdict
	rule    string
	status  int
	bytes   int64
	err     error
	authed  bool // identity already established (a request inside an intercepted tunnel)
	quiet   bool // handed to the portal, which logs its sign-ins: no line here
	// authFailed: credentials were sent and refused; the line says
	// "auth":"failed" beside the name tried.
	authFailed bool
	cw         countingWriter
	sess       *logging.Session // journaled while open (beginSession)

	// classified is the content classifier's note when it gave cats.
	classified string
	// ss is the SafeSearch lock the decision gave (safesearch.go);
	// safeSearch says it was applied, for the log.
	ss         *policy.SafeSearch
	safeSearch bool
	// seen is what the tunnel a request came through hid of its
	// destination (innerTunnel.seen), decided on with the request.
	seen categories.Set
	// mode is "transparent" for traffic the firewall redirected
	// (transparent.go), whose original destination is dst.
	mode string
	dst  netip.AddrPort
	// dstHost is the name dst was checked to be an address of
	// (checkDestination): an intercepted connection's requests inherit it.
	dstHost string
}

type stateKey struct{}

// connKey holds a request's *clientConn in its context.
type connKey struct{}

const viaValue = "1.1 schoolgate"

// New returns a proxy.
func New(o Options) (*Proxy, error) {
	if o.Engine == nil || o.Engine.Snapshot() == nil {
		return nil, errors.New("proxy: no policy engine")
	}
	o.setDefaults()
	cfg := o.Engine.Snapshot().Config
	p := &Proxy{
		o:       o,
		engine:  o.Engine,
		alog:    o.Log,
		ids:     o.Identity,
		logger:  o.Logger,
		m:       newMetrics(o.Registerer),
		tm:      newTransparentMetrics(),
		auth:    newAuthCache(4096, runtime.GOMAXPROCS(0)),
		now:     o.Now,
		tunnels: make(map[*tunnelConns]struct{}),
	}
	if o.AdminAddr != "" {
		ga, err := parseGuardAddr(o.AdminAddr)
		if err != nil {
			return nil, fmt.Errorf("parsing the admin address %q: %w", o.AdminAddr, err)
		}
		p.adminAddr = ga
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(p.tm.collectors()...)
	}
	p.auth.dirs.logger = p.logger
	p.localIPs = localAddrs()
	p.content = newContent(o.Content, o.Engine, o.Registerer, cfg, p.logger)
	set, err := p.buildSettings(o.Engine.Snapshot(), nil)
	if err != nil {
		return nil, err
	}
	p.set.Store(set)
	p.slots = newConnSlots(p.settings, p.m, p.logger)
	p.newTransport()
	p.gp = p.newGoproxy()
	p.srv = p.newServer()
	return p, nil
}

// setDefaults fills what the caller left zero (the config's own settings
// are the proxy's settings, settings.go).
func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	setDefault(&o.DialTimeout, 10*time.Second)
	setDefault(&o.ResponseHeaderTimeout, 60*time.Second)
	setDefault(&o.ReadHeaderTimeout, 10*time.Second)
	setDefault(&o.ClientIdleTimeout, 2*time.Minute)
	setDefault(&o.WriteIdleTimeout, 2*time.Minute)
	setDefault(&o.HelloTimeout, 30*time.Second)
	setDefault(&o.TunnelIdleTimeout, 5*time.Minute)
	if o.TLSPorts == nil {
		o.TLSPorts = []int{443}
	}
	setDefault(&o.BodyIdleTimeout, 60*time.Second)
}

// newTransport makes the dialer and the verifying upstream transport
// (and the SafeSearch engines' own transports over it).
func (p *Proxy) newTransport() {
	o := &p.o
	p.dialer = &net.Dialer{
		Timeout:   o.DialTimeout,
		KeepAlive: 30 * time.Second,
		Resolver:  o.Resolver,
		// The guard runs after name resolution, on the address about to be
		// connected: a name that resolves to a denied address is refused too.
		ControlContext: p.guardDial,
	}
	p.tr = &http.Transport{
		Proxy:                  nil,           // never the environment's proxy
		DialContext:            p.dialContext, // a redirected request's original destination (transparent.go)
		TLSClientConfig:        newTLSConfig(o.RootCAs),
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  o.ResponseHeaderTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           8192,
		MaxIdleConnsPerHost:    1024,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 256 << 10,
		// Bodies pass through as the server encoded them, for the
		// Accept-Encoding the client sent.
		DisableCompression: true,
		// HTTP/2 to upstreams that offer it: an intercepted page's many
		// requests share one connection (WebSocket upgrades stay HTTP/1.1).
		ForceAttemptHTTP2: true,
	}
	p.ssTr = p.safeSearchTransports(p.tr)
}

// newGoproxy is goproxy with our transport and round tripper, keeping
// the client's Accept-Encoding and cleaning response headers.
func (p *Proxy) newGoproxy() *goproxy.ProxyHttpServer {
	gp := goproxy.NewProxyHttpServer()
	gp.Tr = p.tr
	gp.ConnectDial = nil
	gp.KeepAcceptEncoding = true
	gp.Logger = goproxyLogger{p.logger}
	rt := roundTripper{p}
	gp.OnRequest().DoFunc(func(r *http.Request, ctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
		ctx.RoundTripper = rt
		return r, nil
	})
	gp.OnResponse().DoFunc(func(resp *http.Response, _ *goproxy.ProxyCtx) *http.Response {
		if resp != nil {
			cleanResponseHeaders(resp)
		}
		return resp
	})
	return gp
}

// newServer is the HTTP server for the client connections the listener
// admits (listener.go).
func (p *Proxy) newServer() *http.Server {
	return &http.Server{
		Handler:           p,
		ReadHeaderTimeout: p.o.ReadHeaderTimeout,
		IdleTimeout:       p.o.ClientIdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(p.logger.Named("http")),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if cc, ok := c.(*clientConn); ok {
				return context.WithValue(ctx, connKey{}, cc)
			}
			return ctx
		},
		ConnState: func(c net.Conn, s http.ConnState) {
			if cc, ok := c.(*clientConn); ok {
				disarmIdle(cc, s)
				if s == http.StateHijacked {
					cc.hijack()
				}
			}
		},
	}
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// isClient reports whether ip is one of the config's clients.
func (p *Proxy) isClient(ip netip.Addr) bool { return p.engine.Snapshot().IsClient(ip) }

// Serve serves on ln until Shutdown.
func (p *Proxy) Serve(ln net.Listener) error {
	if ga, err := parseGuardAddr(ln.Addr().String()); err == nil {
		p.selfAddr.Store(&ga)
	}
	p.serving.Store(true)
	ll := newLimitListener(ln, p.slots, &p.o)
	ll.onRefused = p.logRefused
	ll.isClient = p.isClient
	err := p.srv.Serve(ll)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, lets in-flight requests finish until ctx ends.
// Tunnels still open when ctx ends are closed.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.serving.Store(false)
	err := errors.Join(p.srv.Shutdown(ctx), p.closeTransparent(ctx))
	// Hijacked connections (tunnels, WebSockets) are not the server's to
	// wait for; wait for them here.
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		p.tmu.Lock()
		n := len(p.tunnels)
		if n == 0 || ctx.Err() != nil {
			for tc := range p.tunnels {
				tc.close()
			}
			p.tmu.Unlock()
			break
		}
		p.tmu.Unlock()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	p.tr.CloseIdleConnections()
	for _, tr := range p.ssTr {
		tr.CloseIdleConnections()
	}
	return err
}

// newRequest is the state of a request that has just come: when, the
// snapshot that decides it, the client's address.
func (p *Proxy) newRequest(r *http.Request) *request {
	st := &request{start: p.now(), snap: p.engine.Snapshot(), method: r.Method}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		st.ip = ap.Addr().Unmap()
	}
	return st
}

// beginRequest readies the client connection for a request and returns
// it (nil when it is not one of the listener's), for the caller to defer
// its endRequest. A deadline left by the previous request on the
// connection (see countingWriter) must not cut this one.
func beginRequest(w http.ResponseWriter, r *http.Request) *clientConn {
	if d, ok := w.(writeDeadliner); ok {
		d.SetWriteDeadline(time.Time{}) //nolint:errcheck
	}
	cc, _ := r.Context().Value(connKey{}).(*clientConn)
	if cc != nil {
		cc.startRequest()
	}
	return cc
}

// ServeHTTP handles one request of a client connection.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := p.newRequest(r)
	if p.o.PAC != nil && isPACRequest(r) && st.snap.IsClient(st.ip) {
		// Not a proxied request: no decision, no access-log line, no
		// sign-in (a browser fetches its PAC file before any).
		p.o.PAC.ServeHTTP(w, r)
		return
	}
	defer p.finish(st)
	cc := beginRequest(w, r)
	defer cc.endRequest()
	if r.Method == http.MethodConnect {
		if cc != nil {
			cc.disarmBody()
		}
		if !p.servePortal(w, r, st) {
			p.serveConnect(w, r, st)
		}
		return
	}
	watchBody(cc, r)
	if p.servePortal(w, r, st) {
		return
	}
	p.servePlain(w, r, st)
	p.noteStall(cc, st)
}

// isPACRequest reports whether r asks the proxy itself for its PAC file:
// a GET or HEAD in origin-form (GET /wpad.dat, not GET http://host/...).
func isPACRequest(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.URL.IsAbs() || r.URL.Host != "" {
		return false
	}
	return r.URL.Path == "/proxy.pac" || r.URL.Path == "/wpad.dat"
}

// watchBody puts r's body, if it has one, under cc's body watch until it
// ends (and, if the handler leaves some unread, while the server discards
// the rest); a request without a body disarms the watch. cc may be nil.
func watchBody(cc *clientConn, r *http.Request) {
	if cc == nil {
		return
	}
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		cc.armBody()
		r.Body = &bodyWatch{ReadCloser: r.Body, cc: cc}
	} else {
		cc.disarmBody()
	}
}

// disarmIdle ends cc's body watch once its connection is idle between
// requests: a body the handler left unread (a blocked upload) is
// discarded by the server past the watch, so the watch would otherwise
// stay armed and cut a kept-alive connection as stalled.
func disarmIdle(cc *clientConn, s http.ConnState) {
	if s == http.StateIdle && cc != nil {
		cc.disarmBody()
	}
}

// noteStall records in st that the body watch closed cc: the client
// stopped sending the request's body.
func (p *Proxy) noteStall(cc *clientConn, st *request) {
	if cc != nil && cc.stalled.Load() {
		p.recordOutcome(st, errClientGone)
		p.logger.Debug("request body stalled: connection closed", zap.String("host", st.host), zap.Stringer("ip", st.ip))
	}
}

// servePlain handles an absolute-URI request: decided on the full URL.
func (p *Proxy) servePlain(w http.ResponseWriter, r *http.Request, st *request) {
	if !r.URL.IsAbs() || r.URL.Host == "" {
		st.host = clip(r.Host, 253)
		p.fail(w, st, &BadRequestError{Msg: "this is a web proxy: requests must name a full http:// address"})
		return
	}
	// Credentials in the URL (http://user:pw@host/) are neither logged,
	// shown, decided on nor forwarded: RFC 9110 §4.2.4 deprecates them and
	// browsers do not send them in a request line.
	r.URL.User = nil
	st.url = cleanURL(r.URL)
	if r.URL.Scheme != "http" && r.URL.Scheme != "https" {
		st.host = clip(r.URL.Host, 253)
		p.fail(w, st, &BadRequestError{Msg: "only http and https addresses can be fetched"})
		return
	}
	host, ok := categories.NormalizeHost(r.URL.Host)
	if !ok || !dialableHost(host) {
		st.host = clip(r.URL.Host, 253)
		p.fail(w, st, &BadRequestError{Msg: "the address has no valid host name"})
		return
	}
	if port := r.URL.Port(); port != "" {
		if _, ok := parsePort(port); !ok {
			st.host = host
			p.fail(w, st, &BadRequestError{Msg: "the address has a bad port number (1 to 65535)"})
			return
		}
	}
	st.host = host
	if err := p.identify(st, r); err != nil {
		p.fail(w, st, err)
		return
	}
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	if err := p.decide(st, host, path); err != nil {
		p.fail(w, st, err)
		return
	}
	// Redirected: the destination must be the Host's, except for a
	// SafeSearch engine, sent to its SafeSearch servers (safesearch.go).
	if st.dst.IsValid() && st.ss == nil {
		if err := p.checkDestination(st, host); err != nil {
			p.fail(w, st, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), origDstKey{}, st.dst))
	}

	cleanRequestHeaders(r.Header)
	// After the hop-by-hop headers are gone: a Connection header naming
	// the lock's header must not take it off again.
	lockSafeSearch(r, st)
	addVia(r.Header)
	st.cw = countingWriter{ResponseWriter: w, writeIdle: p.o.WriteIdleTimeout}
	p.beginSession(st)
	r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
	p.gp.ServeHTTP(&st.cw, r)
	if st.err == nil {
		st.status = st.cw.status
	}
	st.bytes = st.cw.n
	if st.cw.hijacked != nil {
		// goproxy relays a WebSocket until one side closes, then leaves
		// the client's connection open; close it here.
		st.cw.hijacked.Close()
	}
}

// proxyAuthTTL is how long a proxy sign-in names its address in the
// identity table after the last request that carried it.
const proxyAuthTTL = 15 * time.Minute

// identify finds who is asking: the authenticated user when auth is
// required, and the profile that applies.
func (p *Proxy) identify(st *request, r *http.Request) error {
	snap := st.snap
	if st.authed {
		st.profile = snap.ProfileOf(policy.Args{User: st.user, Profile: st.named, IP: st.ip})
		if st.user == "" && p.portalRequired(st) {
			// Redirected traffic from an address nobody signed in at.
			return p.signInFirst(st, r.Method == http.MethodConnect)
		}
		return nil
	}
	// A non-client is refused by the decision (not_a_client), never asked
	// for a password.
	if snap.Config.Users.RequireAuth && snap.IsClient(st.ip) {
		v := r.Header.Get("Proxy-Authorization")
		if v == "" {
			// A sign-in at the portal stands in for proxy credentials.
			if e, ok := p.portalSignedIn(st); ok {
				st.user, st.named = e.User, e.Profile
				st.profile = snap.ProfileOf(policy.Args{User: st.user, Profile: st.named, IP: st.ip})
				return nil
			}
			st.profile = snap.Profile("", st.ip)
			if p.portalRequired(st) {
				return p.signInFirst(st, r.Method == http.MethodConnect)
			}
			return &AuthError{Reason: "no credentials"}
		}
		user, named, err := p.auth.verifyCred(r.Context(), snap, st.ip, v, st.start)
		if err != nil {
			st.profile = snap.Profile("", st.ip)
			// The line of a failed sign-in names the account tried, so
			// that `logs search -user` finds guessing at it.
			if tried, _, ok := parseBasic(v); ok {
				st.user = clip(tried, 128)
			}
			st.authFailed = true
			return err
		}
		// named: the profile a directory user's groups give ("" for a
		// user of the users file, whose profile the policy knows).
		st.user, st.named = user, named
		if p.ids != nil {
			p.ids.Saw(st.ip, user, named, identity.SourceProxyAuth, proxyAuthTTL, st.start)
		}
	} else if e, ok := p.ids.Touch(st.ip, st.start); ok && snap.IsClient(st.ip) {
		// No credentials asked for: the name RADIUS, the logon API, the
		// portal (or an earlier proxy sign-in) gave this address.
		st.user, st.named = e.User, e.Profile
	} else if p.portalRequired(st) {
		st.profile = snap.Profile("", st.ip)
		return p.signInFirst(st, r.Method == http.MethodConnect)
	}
	st.profile = snap.ProfileOf(policy.Args{User: st.user, Profile: st.named, IP: st.ip})
	return nil
}

// decide asks the policy, the one decision path.
func (p *Proxy) decide(st *request, host, path string) error {
	d := p.engine.Decide(policy.Args{User: st.user, Profile: st.named, IP: st.ip, Host: host, Path: path, Time: st.start, Seen: st.seen})
	st.profile, st.cats, st.verdict, st.rule = d.Profile, d.Categories, d.Verdict, d.Rule
	st.classified, st.ss = d.Classified, d.SafeSearch
	if d.Path != "" {
		// The log and the block page show the reading that was decided on.
		st.url = decidedURL(st.url, d.Path)
	}
	if d.Verdict == policy.Block {
		return &BlockedError{Rule: d.Rule, Reason: d.Reason}
	}
	return nil
}

// recordOutcome notes err in st: status, and for refusals the verdict and
// the named rule.
func (p *Proxy) recordOutcome(st *request, err error) {
	st.err = err
	var rule string
	st.status, rule = outcomeOf(err)
	if rule != "" {
		st.verdict, st.rule = policy.Block, rule
	}
	switch rule {
	case policy.RuleDenyDestinations:
		p.m.upstreamError(kindDenied)
	case ruleProxyAuth:
		p.m.authFailures.Inc()
	case ruleOverload:
		p.m.refusedOverload.Inc()
	}
	var ue *UpstreamError
	if errors.As(err, &ue) {
		p.m.upstreamError(ue.Kind)
		p.logger.Debug("upstream failure", zap.String("host", st.host), zap.Error(err))
	}
}

// fail answers the client with the page for err.
func (p *Proxy) fail(w http.ResponseWriter, st *request, err error) {
	p.recordOutcome(st, err)
	if st.status == statusClientGone {
		return
	}
	body := p.page(st, err)
	h := w.Header()
	setPageHeaders(h, len(body))
	if st.status == http.StatusProxyAuthRequired {
		h.Set("Proxy-Authenticate", `Basic realm="schoolgate"`)
	}
	if se, ok := err.(*SignInError); ok && !se.Tunnel {
		h.Set("Location", se.URL)
	}
	if st.rule == policy.RuleNotAClient {
		// Nothing more will be served on it: a refused non-client must
		// not keep a connection slot with keep-alive.
		h.Set("Connection", "close")
	}
	w.WriteHeader(st.status)
	n, _ := w.Write(body)
	st.bytes = int64(n)
}

func (p *Proxy) page(st *request, err error) []byte {
	if policy.IsStatutory(st.rule) {
		return statutoryPage(st.rule)
	}
	cfg := st.snap.Config
	return renderPage(pageFor(st, err, cfg.Proxy.BlockPage, cfg.Location))
}

// finish logs the request once and counts it.
func (p *Proxy) finish(st *request) {
	if st.quiet {
		return
	}
	st.elapsed = p.now().Sub(st.start)
	if st.status == 0 {
		st.status = statusClientGone
	}
	p.m.observe(st)
	if p.alog == nil {
		return
	}
	e := p.entry(st)
	st.sess.End(p.alog, &e) // Log, for a request that was not a session
}

// entry is st's access-log line.
func (p *Proxy) entry(st *request) logging.Entry {
	ip := ""
	if st.ip.IsValid() {
		ip = st.ip.String()
	}
	return logging.Entry{
		Time:       st.start,
		Src:        "proxy",
		User:       st.user,
		IP:         ip,
		Profile:    st.profile,
		Method:     st.method,
		Host:       st.host,
		URL:        st.url,
		Categories: st.cats,
		Verdict:    st.verdict.String(),
		Rule:       st.rule,
		HTTPStatus: st.status,
		Bytes:      st.bytes,
		Duration:   st.elapsed,
		Classified: st.classified,
		SafeSearch: st.safeSearch,
		Mode:       st.mode,
		AuthFailed: st.authFailed,
	}
}

// beginSession journals st from now on, so that a crash before it ends
// still leaves its line (a download, a WebSocket or a tunnel can last
// hours, and its line is written when it ends).
func (p *Proxy) beginSession(st *request) {
	if p.alog != nil {
		e := p.entry(st)
		st.sess = p.alog.Begin(&e)
		st.cw.sess = st.sess
	}
}

// roundTripper sends goproxy's requests with the proxy's transport and
// turns a failure into a page instead of goproxy's raw error text.
type roundTripper struct{ p *Proxy }

func (rt roundTripper) RoundTrip(req *http.Request, _ *goproxy.ProxyCtx) (*http.Response, error) {
	st, ok := req.Context().Value(stateKey{}).(*request)
	rt.p.content.prepare(req, st)
	resp, err := rt.p.transportFor(st).RoundTrip(req)
	if err == nil {
		return rt.p.content.inspect(rt.p, req, resp, st), nil
	}
	if !ok {
		return nil, err
	}
	out := upstreamOutcome(req.Context(), err)
	rt.p.recordOutcome(st, out)
	body := []byte{}
	if st.status != statusClientGone {
		body = rt.p.page(st, out)
	}
	return pageResponse(req, st.status, body), nil
}

// setPageHeaders sets the headers of one of our pages of n bytes: never
// cached, never sniffed as anything but HTML.
func setPageHeaders(h http.Header, n int) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(n))
	h.Set("X-Content-Type-Options", "nosniff")
}

// pageResponse wraps one of our HTML pages (block, 502, 504) as the
// response to req, for outcomes decided inside goproxy's round trip.
func pageResponse(req *http.Request, status int, body []byte) *http.Response {
	h := make(http.Header, 4)
	setPageHeaders(h, len(body))
	return &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}

// hopHeaders are the hop-by-hop headers of RFC 9110 §7.6.1 (and their
// pre-standard spellings), never forwarded.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHop removes the hop-by-hop headers of h, and those named in its
// Connection header, except the Upgrade/Connection pair of a WebSocket
// handshake (which goproxy relays itself).
func removeHop(h http.Header, keepUpgrade bool) {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			f = strings.TrimSpace(f)
			if f == "" || (keepUpgrade && strings.EqualFold(f, "upgrade")) {
				continue
			}
			h.Del(f)
		}
	}
	for _, k := range hopHeaders {
		if keepUpgrade && (k == "Connection" || k == "Upgrade") {
			continue
		}
		if _, ok := h[k]; ok {
			delete(h, k)
		}
	}
}

func isUpgrade(h http.Header) bool {
	if _, ok := h["Upgrade"]; !ok {
		return false
	}
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "upgrade") {
				return true
			}
		}
	}
	return false
}

// viaHeader is shared by every message without a Via of its own: its
// capacity is its length, so an append elsewhere copies it.
var viaHeader = []string{viaValue}

func addVia(h http.Header) {
	if old, ok := h["Via"]; ok {
		h["Via"] = append(old[:len(old):len(old)], viaValue)
		return
	}
	h["Via"] = viaHeader[:1:1]
}

func cleanRequestHeaders(h http.Header) { removeHop(h, isUpgrade(h)) }

func cleanResponseHeaders(resp *http.Response) {
	removeHop(resp.Header, resp.StatusCode == http.StatusSwitchingProtocols && isUpgrade(resp.Header))
	addVia(resp.Header)
}

// countingWriter records the status and counts the body bytes sent to the
// client; it keeps the ResponseWriter's optional interfaces goproxy uses.
// Every write first moves the connection's write deadline writeIdle ahead,
// so a client that stops reading is cut after writeIdle without progress
// (the deadline left after the last write also bounds the server's final
// flush; ServeHTTP clears it for the next request).
type countingWriter struct {
	http.ResponseWriter
	status    int
	n         int64
	hijacked  net.Conn
	writeIdle time.Duration
	sess      *logging.Session // told the status and bytes, for the journal
}

type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

func (c *countingWriter) touch() {
	if c.writeIdle <= 0 {
		return
	}
	if d, ok := c.ResponseWriter.(writeDeadliner); ok {
		d.SetWriteDeadline(time.Now().Add(c.writeIdle)) //nolint:errcheck // a closed conn fails the write
	}
}

func (c *countingWriter) WriteHeader(code int) {
	if c.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		c.status = code
		c.sess.SetStatus(code)
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
		c.sess.SetStatus(http.StatusOK)
	}
	c.touch()
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	c.sess.Add(int64(n))
	return n, err
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// ReadFrom copies the upstream body in chunks through Write, so that each
// chunk refreshes the write deadline; the buffer is pooled.
func (c *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var total int64
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			m, werr := c.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

func (c *countingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (c *countingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := c.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be taken over")
	}
	conn, brw, err := h.Hijack()
	if err == nil {
		c.hijacked = conn
	}
	return conn, brw, err
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

type goproxyLogger struct{ l *zap.Logger }

func (g goproxyLogger) Printf(format string, v ...any) {
	g.l.Debug("goproxy", zap.String("msg", strings.TrimSpace(fmt.Sprintf(format, v...))))
}

// clip cuts s to at most n bytes, bounding what a client's text (a
// method, a URL) costs in a log line.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
