package proxy

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// interceptProxy starts a second proxy on e's config with the given
// proxy.intercept settings (YAML flow mapping body, without the CA files),
// a school CA made for it, and extra connect ports, and returns its address
// and a pool trusting that CA.
func interceptProxy(t *testing.T, e *env, intercept string, ports ...int) (string, *x509.CertPool) {
	t.Helper()
	ca, _ := testCA(t, e.dir)
	return interceptProxyCA(t, e, ca, intercept, ports...), poolOf(ca)
}

// interceptProxyCA is interceptProxy with the CA already made (testCA), as
// when an upstream's certificate must come from it too.
func interceptProxyCA(t testing.TB, e *env, ca *x509.Certificate, intercept string, ports ...int) string {
	t.Helper()
	return interceptProxyWith(t, e, ca, intercept, nil, ports...)
}

// interceptProxyWith is interceptProxyCA with the proxy's options changed
// by opts (if not nil).
func interceptProxyWith(t testing.TB, e *env, ca *x509.Certificate, intercept string, opts func(*Options), ports ...int) string {
	t.Helper()
	return startProxy(t, interceptOptions(t, e, ca, intercept, opts, ports...))
}

// interceptOptions puts proxy.intercept (with ca, made by testCA in e.dir)
// and ports in e's config and returns the options of a second proxy on
// it, changed by opts (if not nil).
func interceptOptions(t testing.TB, e *env, ca *x509.Certificate, intercept string, opts func(*Options), ports ...int) Options {
	t.Helper()
	cfg := readFile(t, e.cfgPath)
	for _, port := range ports {
		cfg = strings.Replace(cfg, "connect_ports: [", "connect_ports: ["+strconv.Itoa(port)+", ", 1)
	}
	if intercept != "" {
		intercept = ", " + intercept
	}
	cfg = strings.Replace(cfg, "  block_page:", "  intercept: {ca_cert: ca.pem, ca_key: ca.key"+intercept+"}\n  block_page:", 1)
	writeFile(t, e.cfgPath, cfg)
	e.engine.Swap(e.build())
	o := e.p.o
	o.RootCAs = poolOf(ca) // upstreams with certificates from the school CA
	o.Registerer = nil     // the first proxy's metrics are registered already
	if opts != nil {
		opts(&o)
	}
	return o
}

func poolOf(ca *x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool
}

// tlsUpstream serves h over TLS on a loopback address with a certificate
// for names from the test CA, and returns its port.
func tlsUpstream(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, h http.Handler, names ...string) int {
	t.Helper()
	up := httptest.NewUnstartedServer(h)
	up.Listener = listenUpstream(t)
	up.TLS = &tls.Config{Certificates: []tls.Certificate{leafCert(t, ca, caKey, names...)}}
	up.StartTLS()
	t.Cleanup(up.Close)
	return up.Listener.Addr().(*net.TCPAddr).Port
}

// leafCert is a server certificate for names from the test CA.
func leafCert(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, names ...string) tls.Certificate {
	t.Helper()
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	lt := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	lder, err := x509.CreateCertificate(rand.Reader, lt, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{lder}, PrivateKey: leafKey}
}

// logFor returns the last access-log line for host and method.
func (e *env) logFor(t *testing.T, host, method string) logLine {
	t.Helper()
	return e.waitLog(t, method+" "+host, func(l *logLine) bool { return l.Host == host && l.Method == method })
}

// A blocked host the school intercepts gets the block page inside the
// tunnel (a browser shows no CONNECT answer); hosts it does not intercept
// are still refused at the CONNECT.
func TestInterceptBlockedHost(t *testing.T) {
	e := newEnv(t, envConfig{})
	addr, pool := interceptProxy(t, e, "domains: [www.casino.test]")
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: addr}),
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}
	defer c.CloseIdleConnections()

	t.Run("block page inside the tunnel", func(t *testing.T) {
		for _, path := range []string{"/path", "/another/page?q=1"} {
			resp, body := get(t, c, "https://www.casino.test"+path)
			if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("%s: status %d, type %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if resp.TLS == nil || resp.TLS.PeerCertificates[0].Issuer.CommonName != "Test School CA" {
				t.Fatal("not intercepted with the school CA")
			}
			want := "https://www.casino.test" + path
			if !strings.Contains(body, "gambling") || !strings.Contains(body, "student#2") ||
				!strings.Contains(body, want) || strings.Contains(body, ":443") {
				t.Fatalf("%s: block page %q", path, body)
			}
			l := e.logFor(t, "www.casino.test", "GET")
			if l.URL != want || l.Verdict != "block" || l.Rule != "student#2" || statusNum(l.Status) != 403 {
				t.Errorf("log line %+v", l)
			}
		}
		c.CloseIdleConnections() // ends the tunnel: its CONNECT line is logged
		l := e.logFor(t, "www.casino.test", "CONNECT")
		if l.Verdict != "allow" || l.Rule != ruleIntercept || statusNum(l.Status) != 200 || l.URL != "" ||
			len(l.Categories) != 1 || l.Categories[0] != "gambling" {
			t.Errorf("CONNECT log line %+v", l)
		}
	})
	t.Run("not intercepted: the block page over TLS (TestBlockPageOverTLS)", func(t *testing.T) {
		st, _ := rawConnect(t, addr, "casino.test:443", "")
		if st != 200 {
			t.Fatalf("status %d", st)
		}
	})
	t.Run("bad port still refused at the CONNECT", func(t *testing.T) {
		st, _ := rawConnect(t, addr, "www.casino.test:25", "")
		if st != 403 {
			t.Fatalf("status %d", st)
		}
		if l := e.logFor(t, "www.casino.test", "CONNECT"); l.Rule != "connect_ports" || statusNum(l.Status) != 403 {
			t.Errorf("log line %+v", l)
		}
	})
}

// The system refusals come before interception, even of every host.
func TestInterceptSystemRefusals(t *testing.T) {
	t.Run("deny_destinations", func(t *testing.T) {
		e := newEnv(t, envConfig{})
		addr, _ := interceptProxy(t, e, "")
		st, _ := rawConnect(t, addr, "127.0.0.1:443", "")
		if st != 403 {
			t.Fatalf("status %d", st)
		}
		if l := e.logFor(t, "127.0.0.1", "CONNECT"); l.Rule != "deny_destinations" || statusNum(l.Status) != 403 {
			t.Errorf("log line %+v", l)
		}
	})
	t.Run("not_a_client", func(t *testing.T) {
		e := newEnv(t, envConfig{clients: "  - 10.0.0.0/8\n"})
		addr, _ := interceptProxy(t, e, "")
		st, _ := rawConnect(t, addr, "www.casino.test:443", "")
		if st != 403 {
			t.Fatalf("status %d", st)
		}
		if l := e.logFor(t, "www.casino.test", "CONNECT"); l.Rule != "not_a_client" || statusNum(l.Status) != 403 {
			t.Errorf("log line %+v", l)
		}
	})
}

// rawGet sends one absolute-URI request line as written and returns the
// status and body.
func rawGet(t *testing.T, proxyAddr, target, host string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	if _, err := io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// Credentials in a URL are never logged, shown or forwarded, and a URL is
// written without its scheme's default port.
func TestLoggedURLs(t *testing.T) {
	e := newEnv(t, envConfig{})
	upHost := strings.TrimPrefix(e.upURL, "http://")
	t.Run("userinfo of a blocked URL", func(t *testing.T) {
		st, body := rawGet(t, e.addr, "http://user:secretpw@www.casino.test/x", "www.casino.test")
		if st != 403 || strings.Contains(body, "secretpw") || strings.Contains(body, "user:") ||
			!strings.Contains(body, "http://www.casino.test/x") {
			t.Fatalf("status %d, page %q", st, body)
		}
		if l := e.logFor(t, "www.casino.test", "GET"); l.URL != "http://www.casino.test/x" {
			t.Errorf("logged URL %q", l.URL)
		}
	})
	t.Run("userinfo of an allowed URL", func(t *testing.T) {
		st, body := rawGet(t, e.addr, "http://user:secretpw@"+upHost+"/hello", upHost)
		if st != 200 || body != "hello from upstream" {
			t.Fatalf("status %d, body %q", st, body)
		}
		if l := e.logFor(t, upstreamIP, "GET"); l.URL != e.upURL+"/hello" {
			t.Errorf("logged URL %q", l.URL)
		}
		h, _ := e.lastSeen.Load("/hello")
		if a := h.(http.Header).Get("Authorization"); a != "" {
			t.Errorf("credentials forwarded upstream: Authorization %q", a)
		}
	})
	t.Run("default port left out, others kept", func(t *testing.T) {
		st, _ := rawGet(t, e.addr, "http://www.casino.test:80/y", "www.casino.test")
		if st != 403 {
			t.Fatalf("status %d", st)
		}
		if l := e.logFor(t, "www.casino.test", "GET"); l.URL != "http://www.casino.test/y" {
			t.Errorf("logged URL %q", l.URL)
		}
		st, _ = rawGet(t, e.addr, "http://www.casino.test:8080/z", "www.casino.test")
		if st != 403 {
			t.Fatalf("status %d", st)
		}
		if l := e.logFor(t, "www.casino.test", "GET"); l.URL != "http://www.casino.test:8080/z" {
			t.Errorf("logged URL %q", l.URL)
		}
	})
}

func TestCleanURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://user:pw@www.bet365.com/":   "http://www.bet365.com/",
		"http://user@example.org:80/a?b=c": "http://example.org/a?b=c",
		"https://example.org:443/games":    "https://example.org/games",
		"https://example.org:8443/games":   "https://example.org:8443/games",
		"http://example.org:443/":          "http://example.org:443/",
		"https://[2001:db8::1]:443/x":      "https://[2001:db8::1]/x",
		"http://[2001:db8::1]:8080/x":      "http://[2001:db8::1]:8080/x",
		"http://a:b%40c@example.org/p%20q": "http://example.org/p%20q",
		"HTTPS://Example.org:443/CaseKept": "https://Example.org/CaseKept",
	} {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := cleanURL(u); got != want {
			t.Errorf("cleanURL(%q) = %q, want %q", in, got, want)
		}
	}
	for _, tc := range []struct {
		host string
		port int
		want string
	}{
		{"example.org", 443, "example.org"},
		{"example.org", 8443, "example.org:8443"},
		{"2001:db8::1", 443, "[2001:db8::1]"},
		{"2001:db8::1", 8443, "[2001:db8::1]:8443"},
	} {
		if got := hostPort(tc.host, tc.port, 443); got != tc.want {
			t.Errorf("hostPort(%q, %d) = %q, want %q", tc.host, tc.port, got, tc.want)
		}
	}
}

// TestInterceptedStalledBody: an upload inside an intercepted tunnel that
// stops is cut after BodyIdleTimeout, as a plain one is, and logged as
// the client gone; a slot is not held for minutes.
func TestInterceptedStalledBody(t *testing.T) {
	e := newEnv(t, envConfig{opts: func(o *Options) { o.BodyIdleTimeout = 300 * time.Millisecond }})
	ca, caKey := testCA(t, e.dir)
	port := tlsUpstream(t, ca, caKey, e.upstreamHandler(), "allowed.test", "www.allowed.test")
	addr := interceptProxyCA(t, e, ca, "domains: [allowed.test]", port)
	authority := "www.allowed.test:" + strconv.Itoa(port)

	c := dialFrom(t, addr, "127.0.0.1")
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	if _, err := io.WriteString(c, "CONNECT "+authority+" HTTP/1.1\r\nHost: "+authority+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	tc := tls.Client(&bufferedConn{Conn: c, r: br}, &tls.Config{RootCAs: poolOf(ca), ServerName: "www.allowed.test"})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	// A request that works first: the tunnel is intercepted.
	fmt.Fprintf(tc, "GET /hello HTTP/1.1\r\nHost: %s\r\n\r\n", authority)
	tr := bufio.NewReader(tc)
	resp, err = http.ReadResponse(tr, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET inside the tunnel: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body) //nolint:errcheck
	resp.Body.Close()

	start := time.Now()
	fmt.Fprintf(tc, "POST /sum HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000\r\n\r\nA", authority)
	io.Copy(io.Discard, tr) //nolint:errcheck // until the proxy cuts the connection
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("stalled upload inside the tunnel cut after %v, want about BodyIdleTimeout", took)
	}
	post := e.logFor(t, "www.allowed.test", "POST")
	if statusNum(post.Status) != statusClientGone || post.URL != "https://"+authority+"/sum" {
		t.Fatalf("log line of the stalled POST: %+v", post)
	}
}

// bufferedConn reads through r (which may hold bytes read past a
// response) and writes to the Conn.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }
