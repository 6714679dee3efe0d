package portal

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/net/netutil"

	"github.com/schoolgate/schoolgate/identity"
	"github.com/schoolgate/schoolgate/internal/mint"
	"github.com/schoolgate/schoolgate/logging"
	"github.com/schoolgate/schoolgate/policy"
	"github.com/schoolgate/schoolgate/proxy"
)

// Rules of the portal's access-log lines.
const (
	RuleSignIn  = "portal_signin"
	RuleSignOut = "portal_signout"
)

// maxConns bounds the portal's concurrent connections: every device of a
// guest network may load the page at once, but it must not take the
// descriptors the proxy and the DNS need.
const maxConns = 512

// Options wire the portal to the rest of schoolgate.
type Options struct {
	Engine   *policy.Engine
	Identity *identity.Table
	// Authenticate checks a user name and password from the client at ip
	// as a proxy sign-in is checked (proxy.Proxy.Authenticate) and returns
	// the profile the directory names ("" for a users-file user).
	Authenticate func(ctx context.Context, ip netip.Addr, user, pass string) (profile string, err error)
	Log          *logging.Writer // sign-ins and sign-outs (nil: not logged)
	Logger       *zap.Logger
	Registerer   prometheus.Registerer
	// Now is the clock (time.Now when nil); tests set it.
	Now func() time.Time
}

// Server is the portal: an http.Handler, served on its own listener
// (Serve) and on connections the proxy hands over (ServeConn).
type Server struct {
	o      Options
	secret [32]byte // keys the forms' tokens
	useTLS bool     // fixed at start: portal.listen and the certificate's presence
	set    atomic.Pointer[settings]
	port   atomic.Int32 // the bound port, once Serve runs
	srv    *http.Server
	handed *connListener
	tlsCfg *tls.Config
	m      *metrics
}

// settings is what a reload may change: the certificate.
type settings struct {
	own    *tls.Certificate // portal.cert and portal.key
	minter *minter          // else minted from the school CA
}

// minter mints the portal's certificate from the school CA, again a day
// before it expires.
type minter struct {
	ca   []byte // the school CA's certificate (DER)
	host string
	mu   sync.Mutex
	cert *tls.Certificate
	make func(host string, now time.Time) (*tls.Certificate, error)
}

func (m *minter) get(now time.Time) (*tls.Certificate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cert != nil && m.cert.Leaf.NotAfter.Sub(now) > 24*time.Hour {
		return m.cert, nil
	}
	c, err := m.make(m.host, now)
	if err != nil {
		return nil, err
	}
	m.cert = c
	return c, nil
}

// New returns the portal for the engine's snapshot.
func New(o Options) (*Server, error) {
	if o.Engine == nil || o.Engine.Snapshot() == nil || o.Identity == nil || o.Authenticate == nil {
		return nil, errors.New("portal: the engine, the identity table and the authenticator are needed")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	cfg := &o.Engine.Snapshot().Config.Portal
	if !cfg.Enabled() {
		return nil, errors.New("portal: portal.listen is not set")
	}
	s := &Server{o: o, useTLS: !cfg.PlainHTTP(), handed: newConnListener(), m: newMetrics(o.Registerer)}
	if _, err := rand.Read(s.secret[:]); err != nil {
		return nil, fmt.Errorf("portal: no randomness for the form tokens: %w", err)
	}
	commit, err := s.Prepare(o.Engine.Snapshot())
	if err != nil {
		return nil, err
	}
	commit()
	s.tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}, GetCertificate: s.certificate}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          zap.NewStdLog(o.Logger.Named("http")),
	}
	go s.srv.Serve(s.wrap(s.handed)) //nolint:errcheck // ends with Shutdown
	return s, nil
}

// Prepare builds the portal's settings for snap without installing them
// (a certificate that cannot be loaded or minted changes nothing); the
// returned commit installs them, with snap's portal.idle_minutes for the
// identity table's portal sign-ins.
func (s *Server) Prepare(snap *policy.Snapshot) (commit func(), err error) {
	cfg := snap.Config
	p := cfg.Portal
	next := &settings{}
	switch {
	case p.Cert != "":
		// Loaded even by a plain HTTP portal (which serves it after a
		// restart): a pair that cannot be used refuses the reload now.
		if next.own, err = p.LoadCert(); err != nil {
			return nil, fmt.Errorf("portal.cert: %w", err)
		}
	case !s.useTLS:
	case cfg.Proxy.Intercept != nil:
		ca, caKey, err := cfg.Proxy.Intercept.LoadCA()
		if err != nil {
			return nil, fmt.Errorf("portal: %w", err)
		}
		// The same CA and name keep the certificate minted.
		if old := s.set.Load(); old != nil && old.minter != nil && old.minter.host == p.Hostname && bytes.Equal(old.minter.ca, ca.Raw) {
			next.minter = old.minter
			break
		}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		next.minter = &minter{ca: ca.Raw, host: p.Hostname, make: func(host string, now time.Time) (*tls.Certificate, error) {
			return mint.Leaf(ca, caKey, key, host, now, 30*24*time.Hour)
		}}
		if _, err := next.minter.get(s.o.Now()); err != nil {
			return nil, fmt.Errorf("portal: %w", err)
		}
	default:
		return nil, errors.New("portal: the portal serves TLS, but neither portal.cert nor proxy.intercept (the school CA) gives it a certificate")
	}
	return func() {
		s.set.Store(next)
		s.o.Identity.SetIdle(identity.SourcePortal, p.Idle())
	}, nil
}

func (s *Server) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	st := s.set.Load()
	if st.own != nil {
		return st.own, nil
	}
	if st.minter != nil {
		return st.minter.get(s.o.Now())
	}
	return nil, errors.New("portal: no certificate")
}

// wrap is ln with the connection cap, in TLS unless the portal is plain HTTP.
func (s *Server) wrap(ln net.Listener) net.Listener {
	ln = netutil.LimitListener(ln, maxConns)
	if s.useTLS {
		return tls.NewListener(ln, s.tlsCfg)
	}
	return ln
}

// Serve serves the portal on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		s.port.Store(int32(a.Port))
	}
	err := s.srv.Serve(s.wrap(ln))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ServeConn serves the portal on c, a client connection the proxy took
// over (a CONNECT to portal.hostname): TLS and HTTP as on the portal's
// own listener, with the client's own address.
func (s *Server) ServeConn(c net.Conn) {
	s.handed.push(c)
}

// Shutdown stops the portal, letting requests in flight finish until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}

// base is the portal's origin as clients reach it: scheme, hostname and
// the listener's port when it is not the scheme's.
func (s *Server) base() string {
	p := s.o.Engine.Snapshot().Config.Portal
	scheme, def := "https", 443
	if !s.useTLS {
		scheme, def = "http", 80
	}
	port := int(s.port.Load())
	if port == 0 {
		if _, ps, err := net.SplitHostPort(p.Listen); err == nil {
			port, _ = strconv.Atoi(ps)
		}
	}
	host := p.Hostname
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != 0 && port != def {
		host += ":" + strconv.Itoa(port)
	}
	return scheme + "://" + host
}

// SignInURL is the sign-in page's address, to come back to original
// (an http or https URL; anything else is left out).
func (s *Server) SignInURL(original string) string {
	u := s.base() + "/"
	if r := safeReturn(original, ""); r != "" {
		u += "?url=" + url.QueryEscape(r)
	}
	return u
}

// safeReturn is raw when it is an absolute http or https URL without
// credentials, not the portal's own host, and of sane length; else "".
// Nothing else is ever redirected to: no javascript:, data: or
// scheme-relative //host, no open redirect.
func safeReturn(raw, portalHost string) string {
	if raw == "" || len(raw) > 2048 || strings.ContainsAny(raw, "\x00\r\n\t\\ ") {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Opaque != "" {
		return ""
	}
	if portalHost != "" && strings.EqualFold(u.Hostname(), portalHost) {
		return ""
	}
	return u.String()
}

// endOfDay is the first instant of the day after t's, in loc.
func endOfDay(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}

// ServeHTTP answers one request for the portal.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil && v != http.ErrAbortHandler {
			s.o.Logger.Error("portal request panic", zap.Any("panic", v), zap.Stack("stack"))
		}
	}()
	if s.useTLS && r.TLS == nil {
		// The proxy handed over a plain HTTP request: passwords go in TLS only.
		u := s.base() + r.URL.Path
		if r.URL.RawQuery != "" {
			u += "?" + r.URL.RawQuery
		}
		setHeaders(w.Header())
		http.Redirect(w, r, u, http.StatusPermanentRedirect)
		return
	}
	rq := s.newRequest(r)
	switch {
	case r.URL.Path == "/signin" && r.Method == http.MethodPost:
		s.signIn(w, r, rq)
	case r.URL.Path == "/signout" && r.Method == http.MethodPost:
		s.signOut(w, r, rq)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		s.page(w, r, rq)
	default:
		setHeaders(w.Header())
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// request is one portal request's state.
type request struct {
	start time.Time
	snap  *policy.Snapshot
	ip    netip.Addr
	token string // the form token for the client's cookie ("" until set)
}

func (s *Server) newRequest(r *http.Request) *request {
	rq := &request{start: s.o.Now(), snap: s.o.Engine.Snapshot()}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		rq.ip = ap.Addr().Unmap()
	}
	return rq
}

// basePage is the page's frame for rq.
func (s *Server) basePage(rq *request) pageData {
	bp := rq.snap.Config.Proxy.BlockPage
	d := pageData{Status: http.StatusOK, Organisation: bp.Organisation, Contact: strings.TrimSpace(bp.Contact), Token: rq.token}
	if rq.ip.IsValid() {
		d.Device = rq.ip.String()
	}
	return d
}

// page is GET: the sign-in form, or who is signed in and the sign-out form.
func (s *Server) page(w http.ResponseWriter, r *http.Request, rq *request) {
	rq.token = s.ensureToken(w, r)
	d := s.basePage(rq)
	d.Return = safeReturn(r.URL.Query().Get("url"), rq.snap.Config.Portal.Hostname)
	if r.URL.Query().Get("signedout") == "1" {
		d.Notice = "You are signed out."
	}
	s.fillSignedIn(&d, rq)
	writePage(w, d)
}

// fillSignedIn fills d with who the identity table names at rq's
// address, or with the sign-in form's title.
func (s *Server) fillSignedIn(d *pageData, rq *request) {
	e, ok := s.o.Identity.Lookup(rq.ip, rq.start)
	if ok && e.Source != identity.SourcePortal {
		// Named by RADIUS, the logon API or a proxy sign-in: that name
		// does not stand in for a sign-in here (where require_auth is on,
		// the proxy sends such a device here), so the form is shown; a
		// sign-in replaces the name.
		d.Notice = "This device is known to the web filter as " + e.User + " (" + e.Source + "). Sign in to use it as yourself."
		ok = false
	}
	if ok {
		d.SignedIn = true
		d.Title = "You are signed in"
		d.Lead = "The school's web filter knows this device as yours."
		d.User = e.User
		d.Profile = rq.snap.ProfileOf(policy.Args{User: e.User, Profile: e.Profile, IP: rq.ip})
		if e.Source == identity.SourcePortal {
			d.Until = "until " + strconv.Itoa(rq.snap.Config.Portal.IdleMinutes) + " minutes without use, or the end of the day (" +
				e.End.In(rq.snap.Location()).Format("15:04 Monday") + ")"
		}
		return
	}
	d.Title = "Sign in to use the web"
	d.Lead = "This network needs your school user name and password before you can use the web."
}

// signIn is POST /signin.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request, rq *request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if !s.formAllowed(w, r, rq) {
		return
	}
	user := strings.TrimSpace(r.PostFormValue("user"))
	pass := r.PostFormValue("password")
	rq.token = s.ensureToken(w, r) // the form shown again after a failure
	d := s.basePage(rq)
	d.Title, d.Lead = "Sign in to use the web", "This network needs your school user name and password before you can use the web."
	d.Return = safeReturn(r.PostFormValue("url"), rq.snap.Config.Portal.Hostname)
	d.User = user
	if !rq.snap.IsClient(rq.ip) {
		s.m.signins(resultRefused)
		d.Status, d.Error = http.StatusForbidden, "This device is not one the school's web filter serves, so it cannot sign in here."
		writePage(w, d)
		return
	}
	if user == "" || pass == "" {
		d.Status, d.Error = http.StatusBadRequest, "Type your user name and your password."
		writePage(w, d)
		return
	}
	named, err := s.o.Authenticate(r.Context(), rq.ip, user, pass)
	if err != nil {
		d.Status, d.Error = s.failure(err)
		s.log(rq, r, user, named, RuleSignIn, d.Status, true)
		writePage(w, d)
		return
	}
	p := rq.snap.Config.Portal
	end := endOfDay(rq.start, rq.snap.Location())
	until := rq.start.Add(p.Idle())
	if until.After(end) {
		until = end
	}
	since := rq.start
	if e, ok := s.o.Identity.Lookup(rq.ip, rq.start); ok && e.User == user {
		since = e.Since
	}
	s.o.Identity.Set(rq.ip, identity.Entry{User: user, Profile: named, Source: identity.SourcePortal, Since: since, Until: until, End: end})
	s.m.signins(resultOK)
	to := d.Return
	if to == "" {
		to = "/"
	}
	s.log(rq, r, user, named, RuleSignIn, http.StatusSeeOther, false)
	s.o.Logger.Info("portal sign-in", zap.String("user", user), zap.Stringer("ip", rq.ip))
	setHeaders(w.Header())
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// failure maps a refused sign-in to its status and what the page says;
// a wrong password and an unknown user read the same.
func (s *Server) failure(err error) (int, string) {
	var ae *proxy.AuthError
	reason := ""
	if errors.As(err, &ae) {
		reason = ae.Reason
	}
	switch {
	case strings.HasPrefix(reason, "too many failed sign-ins"), reason == "another sign-in from this address is being checked":
		s.m.signins(resultLimited)
		return http.StatusTooManyRequests, "Too many sign-ins failed for this account or from this device. Wait a few seconds and try again."
	case reason == "the directory cannot be reached":
		s.m.signins(resultUnavailable)
		return http.StatusServiceUnavailable, "The school's user directory cannot be reached, so your password cannot be checked. Try again in a few minutes."
	case reason == "wrong password", reason == "unknown user", reason == "malformed credentials":
		s.m.signins(resultFailed)
		return http.StatusUnauthorized, "The user name or password was not right, so you are not signed in. Check that Caps Lock is off."
	default:
		s.m.signins(resultFailed)
		return http.StatusUnauthorized, "Your account cannot sign in at the moment."
	}
}

// signOut is POST /signout: the portal sign-in at the client's address ends.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request, rq *request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if !s.formAllowed(w, r, rq) {
		return
	}
	if e, ok := s.o.Identity.Lookup(rq.ip, rq.start); ok && e.Source == identity.SourcePortal &&
		s.o.Identity.Remove(rq.ip, e.User) {
		s.m.signouts.Inc()
		s.log(rq, r, e.User, e.Profile, RuleSignOut, http.StatusSeeOther, false)
		s.o.Logger.Info("portal sign-out", zap.String("user", e.User), zap.Stringer("ip", rq.ip))
	}
	setHeaders(w.Header())
	http.Redirect(w, r, "/?signedout=1", http.StatusSeeOther)
}

// log writes the access-log line of a sign-in or sign-out: user is the
// name (tried, for a failure), named the profile the directory gave.
func (s *Server) log(rq *request, r *http.Request, user, named, rule string, status int, failed bool) {
	if s.o.Log == nil {
		return
	}
	verdict := policy.Allow.String()
	if failed {
		verdict = policy.Block.String()
	}
	e := logging.Entry{
		Time: rq.start, Src: "proxy", User: clip(user, 128), IP: rq.ip.String(),
		Profile: rq.snap.ProfileOf(policy.Args{User: user, Profile: named, IP: rq.ip}),
		Method:  r.Method, Host: rq.snap.Config.Portal.Hostname, URL: s.base() + r.URL.Path,
		Verdict: verdict, Rule: rule, HTTPStatus: status, Duration: s.o.Now().Sub(rq.start), AuthFailed: failed,
	}
	if failed {
		e.Profile = rq.snap.Profile("", rq.ip)
	}
	s.o.Log.Log(&e)
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// connListener is a listener of the connections the proxy hands over.
type connListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnListener() *connListener {
	return &connListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return handedAddr{} }

type handedAddr struct{}

func (handedAddr) Network() string { return "proxy" }
func (handedAddr) String() string  { return "handed over by the proxy" }
