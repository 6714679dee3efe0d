package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/internal/netnstest"
	"github.com/schoolgate/schoolgate/policy"
)

// Devices of the transparent tests, inside their network namespace: the
// first asked the DNS filter (policy.Answers), the second never did.
const (
	deviceA = "127.0.0.5"
	deviceB = "127.0.0.6"
	// elsewhere is where the proxy's own resolver sends the test's CDN
	// names: nothing listens there, so a request that reaches its upstream
	// went to the original destination, not to a name resolved again.
	elsewhere = "127.0.0.3"
)

// transparentEnv is a proxy serving redirected HTTPS in a network
// namespace of its own: connections from the devices there to
// upstreamIP's TLS ports are redirected by nftables to the proxy's
// transparent listener, whose SO_ORIGINAL_DST gives the upstream; the
// proxy dials the upstreams outside, where they listen.
type transparentEnv struct {
	*env
	ns      string
	p       *Proxy
	schools *tls.Config // a device's TLS: trusts the school CA only
	port    int         // the upstream (certificates from another CA)
}

func newTransparentEnv(t *testing.T, answers *policy.Answers, opts ...func(*Options)) *transparentEnv {
	t.Helper()
	ns := netnstest.New(t, "sgpt", "nft")
	e := newEnv(t, envConfig{edit: func(cfg string) string {
		return strings.Replace(cfg, "urls: [allowed.test/forbidden]", "urls: [allowed.test/forbidden, www.intercepted.test/forbidden]", 1)
	}})
	schoolCA, _ := testCA(t, e.dir)
	upCA, upKey := testCA(t, t.TempDir())
	port := seenTLSUpstream(t, &seenHosts{}, true, leafCert(t, upCA, upKey, "www.intercepted.test", "cdn.test"))
	o := interceptOptions(t, e, schoolCA, "domains: [www.intercepted.test, www.casino.test]", func(o *Options) {
		o.RootCAs = poolOf(upCA)
		o.Resolver = testDNSWith(t, map[string]string{"www.intercepted.test": elsewhere, "cdn.test": elsewhere}, upstreamIP)
		o.Answers = answers
		for _, f := range opts {
			f(o)
		}
	})
	p := serveTransparent(t, ns, o, port, upstreamIP, elsewhere)
	return &transparentEnv{env: e, ns: ns, p: p, port: port, schools: &tls.Config{RootCAs: poolOf(schoolCA)}}
}

// serveTransparent starts a proxy with options o serving redirected
// HTTPS in network namespace ns: connections there to dests on port are
// redirected to it by nftables.
func serveTransparent(t *testing.T, ns string, o Options, port int, dests ...string) *Proxy {
	t.Helper()
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln := netnstest.Redirected(t, ns, port, dests...)
	served := make(chan error, 1)
	go func() { served <- p.ServeTransparentHTTPS(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx) //nolint:errcheck
		if err := <-served; err != nil {
			t.Errorf("ServeTransparentHTTPS: %v", err)
		}
	})
	return p
}

// client is a device at src whose every connection goes to dst (an
// address of the namespace's, port te.port), as curl --resolve: the URL
// gives the TLS server name and the requests.
func (te *transparentEnv) client(src, dst string, tlsCfg *tls.Config) *http.Client {
	dial := func(ctx context.Context, _, _ string) (c net.Conn, err error) {
		err = netnstest.Run(te.ns, func() error {
			d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			c, err = d.DialContext(ctx, "tcp", net.JoinHostPort(dst, strconv.Itoa(te.port)))
			return err
		})
		return c, err
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: dial, TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true, DisableKeepAlives: true,
	}}
}

func (te *transparentEnv) url(host, path string) string {
	return "https://" + host + ":" + strconv.Itoa(te.port) + path
}

// TestTransparentIntercept: a redirected HTTPS connection to a host the
// school intercepts is terminated with a certificate the school CA mints
// for its SNI, over HTTP/2; every request inside is decided on its full
// URL (a blocked path gets the block page), must name the SNI's host
// (421 otherwise), and goes to the original destination, not to where the
// name resolves. Its lines say mode transparent and the full URL.
func TestTransparentIntercept(t *testing.T) {
	answers := policy.NewAnswers(1000, 100)
	now := time.Now()
	answers.Saw(netip.MustParseAddr(deviceA), "www.intercepted.test", []netip.Addr{netip.MustParseAddr(upstreamIP)}, now, now.Add(time.Hour))
	te := newTransparentEnv(t, answers)
	c := te.client(deviceA, upstreamIP, te.schools)
	defer c.CloseIdleConnections()
	host := "www.intercepted.test:" + strconv.Itoa(te.port)

	get := func(path, hostHeader string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, te.url("www.intercepted.test", path), nil)
		if hostHeader != "" {
			req.Host = hostHeader
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s (Host %q): %v", path, hostHeader, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	resp, body := get("/ok", "")
	if resp.StatusCode != 200 || body != "host "+host+" proto 2" || resp.ProtoMajor != 2 {
		t.Fatalf("allowed path: %d HTTP/%d %q, want 200 over HTTP/2 from the upstream over HTTP/2", resp.StatusCode, resp.ProtoMajor, body)
	}
	if cn := resp.TLS.PeerCertificates[0].Subject.CommonName; cn != "www.intercepted.test" {
		t.Errorf("certificate for %q, want one minted for the SNI", cn)
	}
	resp, body = get("/forbidden", "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Test School") {
		t.Errorf("blocked path: %d %.80q, want the block page", resp.StatusCode, body)
	}
	resp, _ = get("/ok", "www.casino.test")
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("another host inside: %d, want 421", resp.StatusCode)
	}
	// A blocked host the school intercepts is intercepted too: each
	// request gets the block page and a line of its own.
	resp, err := c.Get(te.url("www.casino.test", "/bet"))
	if err != nil {
		t.Fatalf("blocked intercepted host: %v", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(page), "Test School") {
		t.Errorf("blocked intercepted host: %d %.80q, want the block page", resp.StatusCode, page)
	}

	lines := map[string]logLine{}
	for _, l := range te.logLines(t) {
		lines[l.Method+" "+l.URL] = l
	}
	for _, want := range []struct {
		key, verdict, rule string
	}{
		{"GET " + te.url("www.intercepted.test", "/ok"), "allow", ""},
		{"GET " + te.url("www.intercepted.test", "/forbidden"), "block", "student#2"},
		{"GET https://www.casino.test/ok", "block", ruleHostMismatch}, // the Host asked for
		{"GET " + te.url("www.casino.test", "/bet"), "block", "student#2"},
		{"CONNECT ", "allow", ruleIntercept},
	} {
		l, ok := lines[want.key]
		switch {
		case !ok:
			t.Errorf("no line %s in %v", want.key, lines)
		case l.Mode != modeTransparent || l.Verdict != want.verdict || want.rule != "" && l.Rule != want.rule || l.IP != deviceA:
			t.Errorf("%s: mode %q verdict %q rule %q ip %s, want transparent %s %s %s", want.key, l.Mode, l.Verdict, l.Rule, l.IP,
				want.verdict, want.rule, deviceA)
		}
	}
}

// A redirected connection takes its slot from the proxy's listener like
// an explicit one, so inside transparent interception over HTTP/1.1 the
// body watch cuts a stalled upload after about BodyIdleTimeout (logged as
// the client gone), as it does in an intercepted CONNECT tunnel.
func TestTransparentInterceptStalledUpload(t *testing.T) {
	answers := policy.NewAnswers(1000, 100)
	now := time.Now()
	answers.Saw(netip.MustParseAddr(deviceA), "www.intercepted.test", []netip.Addr{netip.MustParseAddr(upstreamIP)}, now, now.Add(time.Hour))
	te := newTransparentEnv(t, answers, func(o *Options) { o.BodyIdleTimeout = 300 * time.Millisecond })
	var c net.Conn
	if err := netnstest.Run(te.ns, func() (err error) {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(deviceA)}}
		c, err = d.Dial("tcp", net.JoinHostPort(upstreamIP, strconv.Itoa(te.port)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
	cfg := te.schools.Clone()
	cfg.ServerName, cfg.NextProtos = "www.intercepted.test", []string{"http/1.1"}
	tc := tls.Client(c, cfg)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	authority := "www.intercepted.test:" + strconv.Itoa(te.port)
	start := time.Now()
	fmt.Fprintf(tc, "POST /upload HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000\r\n\r\nA", authority)
	io.Copy(io.Discard, tc) //nolint:errcheck // until the proxy cuts the connection
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("stalled upload inside transparent interception cut after %v, want about BodyIdleTimeout", took)
	}
	post := te.waitLog(t, "the POST", func(l *logLine) bool { return l.Method == http.MethodPost })
	if statusNum(post.Status) != statusClientGone || post.Mode != modeTransparent ||
		post.URL != "https://"+authority+"/upload" {
		t.Fatalf("log line of the stalled POST: %+v", post)
	}
}

// TestTransparentAnswersPerClient: what the DNS filter answered one
// device counts for no other. Device A was told the upstream's address
// for both names; device B never asked, and the proxy's resolver gives
// another address, so B's connections with those SNIs to it are refused
// (host_mismatch), intercepted host and relayed one alike, while A's go
// through.
func TestTransparentAnswersPerClient(t *testing.T) {
	answers := policy.NewAnswers(1000, 100)
	now := time.Now()
	up := []netip.Addr{netip.MustParseAddr(upstreamIP)}
	answers.Saw(netip.MustParseAddr(deviceA), "www.intercepted.test", up, now, now.Add(time.Hour))
	answers.Saw(netip.MustParseAddr(deviceA), "cdn.test", up, now, now.Add(time.Hour))
	te := newTransparentEnv(t, answers)
	relayed := &tls.Config{RootCAs: te.p.o.RootCAs} // the upstream's own certificate

	for _, tc := range []struct {
		device, host string
		tls          *tls.Config
		ok           bool
	}{
		{deviceA, "www.intercepted.test", te.schools, true},
		{deviceA, "cdn.test", relayed, true},
		{deviceB, "www.intercepted.test", te.schools, false},
		{deviceB, "cdn.test", relayed, false},
	} {
		c := te.client(tc.device, upstreamIP, tc.tls)
		resp, err := c.Get(te.url(tc.host, "/ok"))
		if err == nil {
			resp.Body.Close()
		}
		if tc.ok != (err == nil && resp.StatusCode == 200) {
			t.Errorf("%s to %s: %v (want through: %v)", tc.device, tc.host, err, tc.ok)
		}
		c.CloseIdleConnections()
	}
	// No SNI: decided on the names A was given for the address, and
	// relayed, not intercepted (A asks for the address itself).
	err := netnstest.Run(te.ns, func() error {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(deviceA)}}
		c, err := d.Dial("tcp", net.JoinHostPort(upstreamIP, strconv.Itoa(te.port)))
		if err != nil {
			return err
		}
		defer c.Close()
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the certificate is looked at below
		if err := tc.Handshake(); err != nil {
			return err
		}
		if cert := tc.ConnectionState().PeerCertificates[0]; cert.Subject.CommonName != "" {
			return fmt.Errorf("no SNI: certificate for %q, want the upstream's own (relayed)", cert.Subject.CommonName)
		}
		return nil
	})
	if err != nil {
		t.Errorf("device A without SNI: %v", err)
	}
	var refused []string
	noSNI := false
	for _, l := range te.logLines(t) {
		noSNI = noSNI || l.Method == http.MethodConnect && l.IP == deviceA && l.Host == "cdn.test" && l.Rule != ruleIntercept && l.Verdict == "allow"
		if l.Rule == ruleHostMismatch && l.Method == http.MethodConnect && l.Mode == modeTransparent {
			refused = append(refused, l.IP+" "+l.Host)
		}
	}
	if !noSNI {
		t.Error("no line for device A's connection without SNI, decided on cdn.test (the latest name it was given)")
	}
	slices.Sort(refused)
	if strings.Join(refused, ",") != deviceB+" cdn.test,"+deviceB+" www.intercepted.test" {
		t.Errorf("host_mismatch lines %v, want device B's two", refused)
	}
}

// TestTransparentSafeSearchIntercepted: an intercepted SafeSearch engine
// reached transparently goes to its SafeSearch servers whatever address
// the device chose, each request with the engine's lock, the client's
// own setting replaced.
func TestTransparentSafeSearchIntercepted(t *testing.T) {
	ns := netnstest.New(t, "sgps", "nft")
	e := lockinEnv(t)
	ca, caKey := testCA(t, e.dir)
	port := samePortServers(t, whoHandler, &tls.Config{Certificates: []tls.Certificate{leafCert(t, ca, caKey, "www.google.com")}})
	serveTransparent(t, ns, interceptOptions(t, e, ca, "domains: [www.google.com]", nil), port, normalIP, safeIP)
	te := &transparentEnv{env: e, ns: ns, port: port}
	c := te.client(deviceA, normalIP, &tls.Config{RootCAs: poolOf(ca)})
	defer c.CloseIdleConnections()
	status, body := getBody(t, c, te.url("www.google.com", "/search?q=cats&safe=off"), nil)
	if want := "safe query=q=cats&safe=active restrict="; status != 200 || body != want {
		t.Fatalf("%d %q, want 200 %q", status, body, want)
	}
	waitLog(t, e, func(l logLine) bool {
		return l.Method == "GET" && l.Host == "www.google.com" && l.SafeSearch && l.Mode == modeTransparent
	})
}
