package portal

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/identity"
	"github.com/schoolgate/schoolgate/logging"
)

// throughProxy is portal.hostname portal.test (reached only through the
// proxy, which hands it over) and a proxy that may reach loopback origins.
const throughProxy = `
proxy:
  deny_destinations: [169.254.0.0/16]
portal:
  listen: 127.0.0.1:0
  hostname: portal.test
  networks: [127.0.0.1/32]
`

// proxyClient is a browser configured to use the proxy, from local (an
// address of 127.0.0.0/8), with a cookie jar, following no redirects.
func (e *env) proxyClient(local string) *http.Client {
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	return &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: e.proxyAddr}), DialContext: d.DialContext}}
}

func do(t *testing.T, c *http.Client, method, u string, form url.Values, origin string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readBody(t, resp)
}

// signInThroughProxy follows the proxy's redirect for page to the portal,
// signs in and returns the portal's origin.
func (e *env) signInThroughProxy(t *testing.T, c *http.Client, page, user, pass string) (*http.Response, string) {
	t.Helper()
	resp, _ := do(t, c, "GET", page, nil, "")
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "http://portal.test:") {
		t.Fatalf("GET %s through the proxy: %d to %q, want 303 to the portal", page, resp.StatusCode, loc)
	}
	u, _ := url.Parse(loc)
	if u.Query().Get("url") != page {
		t.Fatalf("the redirect comes back to %q, want %q", u.Query().Get("url"), page)
	}
	_, body := do(t, c, "GET", loc, nil, "")
	m := tokenRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the portal's page through the proxy has no form:\n%s", body)
	}
	origin := "http://" + u.Host
	return do(t, c, "POST", origin+"/signin", url.Values{"user": {user}, "password": {pass}, "csrf": {m[1]}, "url": {page}}, origin)
}

func (e *env) findLine(t *testing.T, what string, match func(logging.Entry) bool) logging.Entry {
	t.Helper()
	var ls []logging.Entry
	for range 20 {
		ls = e.logged()
		for _, l := range ls {
			if match(l) {
				return l
			}
		}
	}
	t.Fatalf("no access-log line for %s among %+v", what, ls)
	return logging.Entry{}
}

// TestProxySendsToPortal: plain HTTP from an address in portal.networks
// that nobody signed in at is redirected to the portal (logged
// portal_required), with the page asked for; the portal's pages load
// through the proxy; after the sign-in the page loads and its line names
// the user and profile; after the sign-out it is redirected again. An
// address outside portal.networks is not sent anywhere.
func TestProxySendsToPortal(t *testing.T) {
	e := newEnv(t, throughProxy)
	c := e.proxyClient("127.0.0.1")
	page := e.origin.URL + "/page?x=1"
	resp, _ := e.signInThroughProxy(t, c, page, "alice", alicePass)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != page {
		t.Fatalf("sign-in through the proxy: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	e.findLine(t, "the redirect", func(l logging.Entry) bool {
		return l.Rule == "portal_required" && l.HTTPStatus == 303 && l.URL == page && l.Verdict == "block" && l.User == ""
	})
	resp, body := do(t, c, "GET", page, nil, "")
	if resp.StatusCode != 200 || !strings.Contains(body, "the page itself") {
		t.Fatalf("after sign-in: %d\n%s", resp.StatusCode, body)
	}
	e.findLine(t, "the page as alice", func(l logging.Entry) bool {
		return l.URL == page && l.HTTPStatus == 200 && l.User == "alice" && l.Profile == "staff" && l.Verdict == "allow"
	})
	if en, ok := e.ids.Lookup(loop, time.Now()); !ok || en.Source != identity.SourcePortal {
		t.Fatalf("identity %+v %v", en, ok)
	}
	// The portal's own requests are never logged by the proxy: the
	// portal logs the sign-in.
	for _, l := range e.logged() {
		if l.Host == "portal.test" && l.Rule != RuleSignIn && l.Rule != RuleSignOut {
			t.Errorf("the proxy logged a portal request: %+v", l)
		}
	}

	_, body = do(t, c, "GET", e.portal.SignInURL(""), nil, "")
	m := tokenRE.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, "You are signed in") {
		t.Fatalf("signed-in page:\n%s", body)
	}
	origin := strings.TrimSuffix(e.portal.SignInURL(""), "/")
	if resp, _ := do(t, c, "POST", origin+"/signout", url.Values{"csrf": {m[1]}}, origin); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	if resp, _ := do(t, c, "GET", page, nil, ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after sign-out the page answered %d, want the redirect again", resp.StatusCode)
	}

	// 127.0.0.2 is a client outside portal.networks: it browses unnamed.
	if resp, _ := do(t, e.proxyClient("127.0.0.2"), "GET", page, nil, ""); resp.StatusCode != 200 {
		t.Fatalf("outside portal.networks: %d", resp.StatusCode)
	}
}

// TestProxyPortalRequireAuth: where require_auth is on, an address in
// portal.networks without credentials is sent to the portal, not asked
// for a password (407), and once signed in there needs no
// Proxy-Authorization; an address outside still gets 407.
func TestProxyPortalRequireAuth(t *testing.T) {
	e := newEnv(t, strings.Replace(throughProxy, "proxy:\n", "proxy:\n  max_connections: 100\n", 1)+"users: {file: users.csv, require_auth: true}\n")
	c := e.proxyClient("127.0.0.1")
	page := e.origin.URL + "/page"
	// A name from RADIUS does not stand in for credentials: the device
	// is sent to the portal, which offers the form (not "signed in").
	now := time.Now()
	e.ids.Set(loop, identity.Entry{User: "wifi-bob", Source: identity.SourceRADIUS, Since: now, Until: now.Add(time.Hour)})
	if resp, _ := do(t, c, "GET", page, nil, ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("named by RADIUS under require_auth: %d, want the redirect to the portal", resp.StatusCode)
	}
	if _, body := do(t, c, "GET", e.portal.SignInURL(page), nil, ""); !strings.Contains(body, `action="/signin"`) ||
		!strings.Contains(body, "known to the web filter as wifi-bob (radius)") {
		t.Fatalf("the portal for a device named by RADIUS:\n%s", body)
	}
	resp, _ := e.signInThroughProxy(t, c, page, "bob", alicePass)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	resp, body := do(t, c, "GET", page, nil, "")
	if resp.StatusCode != 200 || !strings.Contains(body, "the page itself") {
		t.Fatalf("signed in at the portal, without Proxy-Authorization: %d\n%s", resp.StatusCode, body)
	}
	e.findLine(t, "bob's page", func(l logging.Entry) bool {
		return l.URL == page && l.User == "bob" && l.Profile == "student" && l.HTTPStatus == 200
	})
	if resp, _ := do(t, e.proxyClient("127.0.0.2"), "GET", page, nil, ""); resp.StatusCode != http.StatusProxyAuthRequired {
		t.Fatalf("outside portal.networks under require_auth: %d, want 407", resp.StatusCode)
	}
}

// connect opens a CONNECT tunnel to authority through the proxy from
// 127.0.0.1 and returns it with the proxy's status.
func (e *env) connect(t *testing.T, authority string) (net.Conn, int) {
	t.Helper()
	return e.connectFrom(t, "127.0.0.1", authority)
}

// connectFrom is connect from the address local.
func (e *env) connectFrom(t *testing.T, local, authority string) (net.Conn, int) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", e.proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", authority, authority)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == 200 && br.Buffered() > 0 {
		t.Fatal("bytes after the CONNECT answer")
	}
	return c, resp.StatusCode
}

// TestProxyHTTPSSignInPage: HTTPS from an address that must sign in gets
// the block page with a link to the portal where the school CA is set,
// and is refused (403) without it; a CONNECT to the portal itself
// reaches the portal.
func TestProxyHTTPSSignInPage(t *testing.T) {
	t.Run("without the school CA", func(t *testing.T) {
		e := newEnv(t, throughProxy)
		if _, status := e.connect(t, e.originTLS.Listener.Addr().String()); status != http.StatusForbidden {
			t.Fatalf("CONNECT answered %d, want 403", status)
		}
		e.findLine(t, "the refused CONNECT", func(l logging.Entry) bool {
			return l.Method == "CONNECT" && l.Rule == "portal_required" && l.HTTPStatus == 403
		})
		// The portal's own host is handed over (plain HTTP on loopback).
		c, status := e.connect(t, "portal.test:80")
		if status != 200 {
			t.Fatalf("CONNECT to the portal: %d", status)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: portal.test\r\nConnection: close\r\n\r\n") //nolint:errcheck
		b, _ := io.ReadAll(c)
		if !strings.Contains(string(b), "Sign in to use the web") {
			t.Fatalf("the portal through a tunnel:\n%s", b)
		}
	})
	t.Run("with the school CA", func(t *testing.T) {
		var ca *x509.Certificate
		e := newEnvWith(t, strings.Replace(throughProxy, "proxy:\n", "proxy:\n  intercept: {ca_cert: ca.pem, ca_key: ca.key, domains: [nothing.test]}\n", 1),
			func(dir string) { ca = writeCA(t, dir) })
		c, status := e.connect(t, "www.example.test:443")
		if status != 200 {
			t.Fatalf("CONNECT answered %d, want the tunnel with the block page", status)
		}
		roots := x509.NewCertPool()
		roots.AddCert(ca)
		tc := tls.Client(c, &tls.Config{ServerName: "www.example.test", RootCAs: roots, NextProtos: []string{"http/1.1"}})
		if err := tc.HandshakeContext(context.Background()); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tc, "GET /lesson HTTP/1.1\r\nHost: www.example.test\r\nConnection: close\r\n\r\n") //nolint:errcheck
		b, _ := io.ReadAll(tc)
		page := string(b)
		want := `href="` + strings.ReplaceAll(e.portal.SignInURL("https://www.example.test/"), "&", "&amp;") + `"`
		if !strings.HasPrefix(page, "HTTP/1.1 403") || !strings.Contains(page, "Sign in to use the web") || !strings.Contains(page, want) {
			t.Fatalf("the page in the tunnel (want %s):\n%s", want, page)
		}
		e.findLine(t, "the CONNECT with the sign-in page", func(l logging.Entry) bool {
			return l.Method == "CONNECT" && l.Host == "www.example.test" && l.Rule == "portal_required" && l.HTTPStatus == 403
		})
	})
}

// TestReloadFollowsSnapshot: a reload (Prepare, then the engine's swap
// and the commit, as serve installs it) moves portal.networks and
// idle_minutes at once; one whose certificate cannot be loaded is refused
// and changes nothing.
func TestReloadFollowsSnapshot(t *testing.T) {
	e := newEnv(t, throughProxy)
	c := e.proxyClient("127.0.0.1")
	page := e.origin.URL + "/page"
	if resp, _ := do(t, c, "GET", page, nil, ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("before the reload: %d", resp.StatusCode)
	}
	reload := func(portal string) error {
		t.Helper()
		cfg := strings.Replace(throughProxy, "portal:\n  listen: 127.0.0.1:0\n  hostname: portal.test\n  networks: [127.0.0.1/32]\n", portal, 1)
		snap := e.snapshotOf(t, cfg)
		commit, err := e.portal.Prepare(snap)
		if err != nil {
			return err
		}
		e.engine.Swap(snap)
		commit()
		return nil
	}
	if err := reload("portal:\n  listen: 127.0.0.1:0\n  hostname: portal.test\n  networks: [10.0.0.0/8]\n  idle_minutes: 5\n"); err != nil {
		t.Fatal(err)
	}
	if resp, _ := do(t, c, "GET", page, nil, ""); resp.StatusCode != 200 {
		t.Fatalf("127.0.0.1 left portal.networks, still %d", resp.StatusCode)
	}
	now := time.Now()
	e.ids.Set(loop, identity.Entry{User: "bob", Source: identity.SourcePortal, Since: now, Until: now.Add(30 * time.Minute), End: now.Add(10 * time.Hour)})
	if en, _ := e.ids.Touch(loop, now); !en.Until.Equal(now.Add(5 * time.Minute)) {
		t.Errorf("after the reload traffic renews to %v, want idle_minutes 5", en.Until.Sub(now))
	}
	err := reload("portal:\n  listen: 127.0.0.1:0\n  hostname: portal.test\n  cert: none.pem\n  key: none.key\n  networks: [127.0.0.1/32]\n")
	if err == nil || !strings.Contains(err.Error(), "portal.cert") {
		t.Fatalf("a reload with a missing certificate: %v", err)
	}
	if e.portal.useTLS || e.portal.set.Load().own != nil {
		t.Error("a refused reload changed the portal")
	}
}

// TestProxyTrafficRenews: requests through the proxy are traffic: each
// renews the portal sign-in for idle_minutes from the request; without
// traffic it ends, and the next request is sent to the portal again.
func TestProxyTrafficRenews(t *testing.T) {
	e := newEnv(t, throughProxy)
	start := time.Date(2026, 12, 3, 9, 0, 0, 0, e.engine.Snapshot().Location())
	e.setClock(start)
	c := e.proxyClient("127.0.0.1")
	page := e.origin.URL + "/page"
	if resp, _ := e.signInThroughProxy(t, c, page, "alice", alicePass); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	at := start
	for range 4 { // two hours of requests 25 minutes apart
		at = at.Add(25 * time.Minute)
		e.setClock(at)
		if resp, _ := do(t, c, "GET", page, nil, ""); resp.StatusCode != 200 {
			t.Fatalf("at %v: %d, want the page (renewed by the requests before)", at.Format("15:04"), resp.StatusCode)
		}
		if en, _ := e.ids.Lookup(loop, at); !en.Until.Equal(at.Add(30 * time.Minute)) {
			t.Fatalf("at %v the sign-in lasts until %v, want 30 minutes on", at.Format("15:04"), en.Until.Format("15:04"))
		}
	}
	e.setClock(at.Add(31 * time.Minute))
	if resp, _ := do(t, c, "GET", page, nil, ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after 31 idle minutes: %d, want the redirect to the portal", resp.StatusCode)
	}
}

// TestProxyTLSPortal: a portal in TLS (its certificate minted from the
// school CA) is reached through the proxy by a CONNECT to its name, which
// the proxy hands over (the portal sees the device's own address); a
// plain http:// request for it is sent to https:// first, so a password
// never crosses the network in the clear.
func TestProxyTLSPortal(t *testing.T) {
	var ca *x509.Certificate
	e := newEnvWith(t, `
proxy:
  deny_destinations: [169.254.0.0/16]
  intercept: {ca_cert: ca.pem, ca_key: ca.key, domains: [nothing.test]}
portal:
  listen: 10.9.9.9:8443
  hostname: portal.test
  networks: [127.0.0.1/32]
`, func(dir string) { ca = writeCA(t, dir) })
	e.portal.port.Store(0) // the address is portal.listen's
	c := e.proxyClient("127.0.0.1")
	resp, _ := do(t, c, "GET", "http://portal.test:8443/?url=http%3A%2F%2Fa.test%2F", nil, "")
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://portal.test:8443/?url=http%3A%2F%2Fa.test%2F" {
		t.Fatalf("plain http to the TLS portal: %d to %q, want 308 to https", resp.StatusCode, resp.Header.Get("Location"))
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	// exchange sends one request over a fresh CONNECT tunnel in TLS.
	exchange := func(req string) string {
		t.Helper()
		conn, status := e.connectFrom(t, "127.0.0.5", "portal.test:8443")
		if status != 200 {
			t.Fatalf("CONNECT to the portal: %d", status)
		}
		tc := tls.Client(conn, &tls.Config{ServerName: "portal.test", RootCAs: roots})
		if err := tc.HandshakeContext(context.Background()); err != nil {
			t.Fatalf("TLS with the portal through the tunnel: %v", err)
		}
		io.WriteString(tc, req) //nolint:errcheck
		b, _ := io.ReadAll(tc)
		return string(b)
	}
	page := exchange("GET / HTTP/1.1\r\nHost: portal.test:8443\r\nConnection: close\r\n\r\n")
	cookie := regexp.MustCompile(`Set-Cookie: (schoolgate_portal=[^;]+); Path=/; HttpOnly; Secure; SameSite=Strict`).FindStringSubmatch(page)
	m := tokenRE.FindStringSubmatch(page)
	if !strings.HasPrefix(page, "HTTP/1.1 200") || cookie == nil || m == nil {
		t.Fatalf("the portal through the tunnel:\n%s", page)
	}
	form := url.Values{"user": {"alice"}, "password": {alicePass}, "csrf": {m[1]}}.Encode()
	answer := exchange(fmt.Sprintf("POST /signin HTTP/1.1\r\nHost: portal.test:8443\r\nOrigin: https://portal.test:8443\r\nCookie: %s\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", cookie[1], len(form), form))
	if !strings.HasPrefix(answer, "HTTP/1.1 303") {
		t.Fatalf("sign-in through the tunnel:\n%s", answer)
	}
	// Named at the device's own address (127.0.0.5), not the proxy's.
	if en, ok := e.ids.Lookup(netip.MustParseAddr("127.0.0.5"), time.Now()); !ok || en.User != "alice" {
		t.Fatalf("identity at 127.0.0.5 after the sign-in through the tunnel: %+v %v", en, ok)
	}
	if en, ok := e.ids.Lookup(loop, time.Now()); ok {
		t.Fatalf("the proxy's address was named: %+v", en)
	}
}
