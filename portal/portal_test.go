package portal

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/identity"
)

var loop = netip.MustParseAddr("127.0.0.1")

// TestSignInAndOut: the page, a sign-in that names the address in the
// identity table (source portal, the user's profile, until the earlier
// of the idle time and the end of the day) and goes back to the page
// first wanted, the signed-in page, and a sign-out that ends it — each
// logged.
func TestSignInAndOut(t *testing.T) {
	e := newEnv(t, portalYAML)
	b := e.browser()
	status, body, tok := b.get("/?url=" + url.QueryEscape("http://www.allowed.test/page?a=1"))
	if status != 200 || tok == "" || !strings.Contains(body, "Sign in to use the web") ||
		!strings.Contains(body, "You will go on to http://www.allowed.test/page?a=1") {
		t.Fatalf("sign-in page %d:\n%s", status, body)
	}
	resp := b.post("/signin", url.Values{"user": {"alice"}, "password": {alicePass}, "csrf": {tok}, "url": {"http://www.allowed.test/page?a=1"}}, "")
	readBody(t, resp)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "http://www.allowed.test/page?a=1" {
		t.Fatalf("sign-in answered %d to %q, want 303 to the page first wanted", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "Cache-Control"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("the sign-in answer has no %s", h)
		}
	}
	now := time.Now()
	got, ok := e.ids.Lookup(loop, now)
	if !ok || got.User != "alice" || got.Source != identity.SourcePortal || got.Profile != "" {
		t.Fatalf("identity entry %+v %v, want alice from the portal", got, ok)
	}
	wantUntil := now.Add(30 * time.Minute)
	if end := endOfDay(now, e.engine.Snapshot().Location()); end.Before(wantUntil) {
		wantUntil = end
	}
	if d := got.Until.Sub(wantUntil); d > 5*time.Second || d < -5*time.Second || !got.End.Equal(endOfDay(now, e.engine.Snapshot().Location())) {
		t.Errorf("until %v end %v, want about %v and the end of the day", got.Until, got.End, wantUntil)
	}
	status, body, tok = b.get("/")
	if status != 200 || !strings.Contains(body, "You are signed in") || !strings.Contains(body, `<dd id="user">alice</dd>`) ||
		!strings.Contains(body, "<dd>staff</dd>") {
		t.Fatalf("signed-in page %d:\n%s", status, body)
	}
	resp = b.post("/signout", url.Values{"csrf": {tok}}, "")
	readBody(t, resp)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out answered %d", resp.StatusCode)
	}
	if e, ok := e.ids.Lookup(loop, time.Now()); ok {
		t.Fatalf("still signed in after sign-out: %+v", e)
	}
	_, body, _ = b.get(resp.Header.Get("Location"))
	if !strings.Contains(body, "You are signed out.") || !strings.Contains(body, `action="/signin"`) {
		t.Errorf("after sign-out:\n%s", body)
	}
	var in, out bool
	for _, l := range e.logged() {
		switch {
		case l.Rule == RuleSignIn && l.User == "alice" && l.Verdict == "allow" && l.Profile == "staff" && !l.AuthFailed &&
			l.Src == "proxy" && l.Method == "POST" && l.IP == "127.0.0.1" && l.HTTPStatus == 303:
			in = true
		case l.Rule == RuleSignOut && l.User == "alice" && l.Verdict == "allow":
			out = true
		}
	}
	if !in || !out {
		t.Errorf("sign-in logged %v, sign-out logged %v: %+v", in, out, e.logged())
	}
	if counter(t, e, resultOK) != 1 || signouts(e) != 1 {
		t.Errorf("signins ok %v, signouts %v", counter(t, e, resultOK), signouts(e))
	}
}

// TestWrongPassword: the form again with the error (401), nobody signed
// in, and the attempt logged with the name tried and "auth":"failed".
func TestWrongPassword(t *testing.T) {
	e := newEnv(t, portalYAML)
	b := e.browser()
	_, _, tok := b.get("/")
	resp := b.post("/signin", url.Values{"user": {"alice"}, "password": {"wrong"}, "csrf": {tok}}, "")
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "The user name or password was not right") ||
		!strings.Contains(body, `value="alice"`) {
		t.Fatalf("wrong password answered %d:\n%s", resp.StatusCode, body)
	}
	if _, ok := e.ids.Lookup(loop, time.Now()); ok {
		t.Fatal("a wrong password signed someone in")
	}
	// The form shown again works with its own token.
	m := tokenRE.FindStringSubmatch(body)
	if m == nil || m[1] != tok {
		t.Fatalf("the form after a failure has token %v, want the cookie's", m)
	}
	found := false
	for _, l := range e.logged() {
		found = found || l.Rule == RuleSignIn && l.User == "alice" && l.AuthFailed && l.Verdict == "block" && l.HTTPStatus == 401
	}
	if !found {
		t.Errorf("no failed sign-in line: %+v", e.logged())
	}
	if counter(t, e, resultFailed) != 1 {
		t.Errorf("failed = %v", counter(t, e, resultFailed))
	}
}

// TestFormsRefusedWithoutToken: a form without the cookie, with another
// token, or from another origin is refused (403) and changes nothing,
// even with the right password; so is a sign-out.
func TestFormsRefusedWithoutToken(t *testing.T) {
	e := newEnv(t, portalYAML)
	b := e.browser()
	_, _, tok := b.get("/")
	stranger := e.browser() // no cookie
	_, _, otherTok := e.browser().get("/")
	good := url.Values{"user": {"alice"}, "password": {alicePass}}
	with := func(token string) url.Values {
		v := url.Values{}
		for k, vs := range good {
			v[k] = vs
		}
		v.Set("csrf", token)
		return v
	}
	cases := []struct {
		name   string
		b      *browser
		form   url.Values
		origin string
	}{
		{"no token", b, good, ""},
		{"another cookie's token", b, with(otherTok), ""},
		{"no cookie", stranger, with(tok), ""},
		{"foreign origin", b, with(tok), "http://evil.example"},
		{"origin on another port", b, with(tok), "http://127.0.0.1:1"},
		{"null origin", b, with(tok), "null"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := c.b.post("/signin", c.form, c.origin)
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "nothing was done") {
				t.Fatalf("answered %d:\n%s", resp.StatusCode, body)
			}
			if _, ok := e.ids.Lookup(loop, time.Now()); ok {
				t.Fatal("a refused form signed someone in")
			}
		})
	}
	// A foreign Referer without Origin, too.
	req, _ := http.NewRequest(http.MethodPost, b.origin+"/signin", strings.NewReader(with(tok).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Referer", "http://evil.example/page")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign Referer answered %d", resp.StatusCode)
	}
	if counter(t, e, resultRefused) != float64(len(cases)+1) || counter(t, e, resultFailed) != 0 {
		t.Errorf("refused %v failed %v: the password must not even be checked", counter(t, e, resultRefused), counter(t, e, resultFailed))
	}
	// The same form with the token and no Origin or Referer at all (an
	// old browser) goes through; then a forged sign-out changes nothing.
	resp = b.post("/signin", with(tok), "-")
	readBody(t, resp)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the good form answered %d", resp.StatusCode)
	}
	resp = b.post("/signout", url.Values{"csrf": {tok}}, "http://evil.example")
	readBody(t, resp)
	if _, ok := e.ids.Lookup(loop, time.Now()); resp.StatusCode != http.StatusForbidden || !ok {
		t.Fatalf("a forged sign-out answered %d, signed in %v", resp.StatusCode, ok)
	}
}

// TestRateLimited: the limits of proxy sign-in apply (they are the same
// limiter): after ten failures from one address, checks are one a second,
// and a burst past that is answered 429 at once.
func TestRateLimited(t *testing.T) {
	e := newEnv(t, portalYAML)
	b := e.browser()
	_, _, tok := b.get("/")
	// Distinct wrong passwords: a repeated one is answered from memory
	// and does not count.
	for i := range 10 {
		resp := b.post("/signin", url.Values{"user": {"alice"}, "password": {"guess" + string(rune('a'+i))}, "csrf": {tok}}, "")
		readBody(t, resp)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d answered %d", i, resp.StatusCode)
		}
	}
	var wg sync.WaitGroup
	codes := make(chan int, 4)
	for i := range 4 {
		wg.Go(func() {
			resp := b.post("/signin", url.Values{"user": {"alice"}, "password": {"burst" + string(rune('a'+i))}, "csrf": {tok}}, "")
			body := readBody(t, resp)
			if resp.StatusCode == http.StatusTooManyRequests && !strings.Contains(body, "Too many sign-ins failed") {
				t.Errorf("429 page:\n%s", body)
			}
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	limited := 0
	for c := range codes {
		if c == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 || counter(t, e, resultLimited) != float64(limited) {
		t.Fatalf("%d of the burst limited (counter %v), want at least one", limited, counter(t, e, resultLimited))
	}
	n := 0
	for _, l := range e.logged() {
		if l.Rule == RuleSignIn && l.AuthFailed && l.User == "alice" {
			n++
		}
	}
	if n != 14 {
		t.Errorf("%d failed sign-in lines, want 14", n)
	}
}

// TestIdleAndEndOfDay: with the clock set, a sign-in lasts idle_minutes,
// traffic (Touch, as the proxy and the DNS filter do) renews it, never
// past midnight in the school's timezone; without traffic it ends.
func TestIdleAndEndOfDay(t *testing.T) {
	e := newEnv(t, portalYAML)
	loc := e.engine.Snapshot().Location()
	signIn := func(at time.Time) identity.Entry {
		t.Helper()
		e.setClock(at)
		b := e.browser()
		_, _, tok := b.get("/")
		readBody(t, b.post("/signin", url.Values{"user": {"bob"}, "password": {alicePass}, "csrf": {tok}}, ""))
		got, ok := e.ids.Lookup(loop, at)
		if !ok {
			t.Fatalf("not signed in at %v", at)
		}
		return got
	}
	morning := time.Date(2026, 12, 3, 10, 0, 0, 0, loc)
	got := signIn(morning)
	if !got.Until.Equal(morning.Add(30*time.Minute)) || !got.End.Equal(time.Date(2026, 12, 4, 0, 0, 0, 0, loc)) {
		t.Fatalf("morning sign-in: %+v", got)
	}
	if r, ok := e.ids.Touch(loop, morning.Add(20*time.Minute)); !ok || !r.Until.Equal(morning.Add(50*time.Minute)) {
		t.Fatalf("traffic at 10:20 renewed to %v, want 10:50", r.Until)
	}
	if _, ok := e.ids.Touch(loop, morning.Add(50*time.Minute)); ok {
		t.Fatal("still signed in after 30 idle minutes")
	}
	e.setClock(morning.Add(51 * time.Minute))
	if _, body, _ := e.browser().get("/"); !strings.Contains(body, "Sign in to use the web") {
		t.Errorf("the page after the idle time:\n%s", body)
	}

	late := time.Date(2026, 12, 3, 23, 50, 0, 0, loc)
	got = signIn(late)
	midnight := time.Date(2026, 12, 4, 0, 0, 0, 0, loc)
	if !got.Until.Equal(midnight) {
		t.Fatalf("a sign-in at 23:50 lasts until %v, want midnight", got.Until)
	}
	if r, ok := e.ids.Touch(loop, late.Add(9*time.Minute)); !ok || !r.Until.Equal(midnight) {
		t.Fatalf("traffic at 23:59 renewed past midnight: %v", r.Until)
	}
	if _, ok := e.ids.Touch(loop, midnight); ok {
		t.Fatal("signed in past the end of the day")
	}
	// British summer time ends: the day's end is local midnight still.
	if end := endOfDay(time.Date(2026, 10, 25, 12, 0, 0, 0, loc), loc); !end.Equal(time.Date(2026, 10, 26, 0, 0, 0, 0, loc)) {
		t.Errorf("end of 25 October = %v", end)
	}
}

// TestNoOpenRedirect: only an absolute http or https address is ever
// gone back to; anything else goes to the portal's own page.
func TestNoOpenRedirect(t *testing.T) {
	cases := []struct{ in, want string }{
		{"http://www.allowed.test/page?a=1#f", "http://www.allowed.test/page?a=1#f"},
		{"https://www.allowed.test/", "https://www.allowed.test/"},
		{"javascript:alert(1)", ""},
		{"JavaScript:alert(1)", ""},
		{"data:text/html,<script>alert(1)</script>", ""},
		{"//evil.example/", ""},
		{"/local/path", ""},
		{"http://user:pw@evil.example/", ""},
		{"ftp://files.example/", ""},
		{"http:evil.example", ""},
		{"https://127.0.0.1/", ""}, // the portal itself: a loop
		{"http://evil.example/\r\nSet-Cookie: x=1", ""},
		{"http://" + strings.Repeat("a", 2100) + ".test/", ""},
	}
	for _, c := range cases {
		if got := safeReturn(c.in, "127.0.0.1"); got != c.want {
			t.Errorf("safeReturn(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	e := newEnv(t, portalYAML)
	b := e.browser()
	_, body, tok := b.get("/?url=" + url.QueryEscape("javascript:alert(1)"))
	if strings.Contains(body, "javascript") {
		t.Errorf("the page offers a javascript: address:\n%s", body)
	}
	resp := b.post("/signin", url.Values{"user": {"alice"}, "password": {alicePass}, "csrf": {tok}, "url": {"javascript:alert(1)"}}, "")
	readBody(t, resp)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("sign-in with a javascript: return went %d to %q, want / on the portal", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := e.portal.SignInURL("javascript:alert(1)"); strings.Contains(got, "javascript") {
		t.Errorf("SignInURL = %q", got)
	}
}

// TestMintedCertificate: a portal that is not on loopback, without a
// certificate of its own, serves TLS with one minted from the school CA
// for portal.hostname — here on a connection handed over as the proxy
// does for a CONNECT to the portal.
func TestMintedCertificate(t *testing.T) {
	var ca *x509.Certificate
	e := newEnvWith(t, `
proxy:
  intercept: {ca_cert: ca.pem, ca_key: ca.key}
portal:
  listen: 10.9.9.9:8443
  hostname: signin.school.test
  networks: [127.0.0.0/8]
`, func(dir string) { ca = writeCA(t, dir) })
	e.portal.port.Store(0) // not served on a listener: the address is portal.listen's
	if got := e.portal.SignInURL("http://a.test/"); got != "https://signin.school.test:8443/?url=http%3A%2F%2Fa.test%2F" {
		t.Errorf("SignInURL = %q", got)
	}
	client, server := net.Pipe()
	go e.portal.ServeConn(server)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	tc := tls.Client(client, &tls.Config{ServerName: "signin.school.test", RootCAs: roots})
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS with the minted certificate: %v", err)
	}
	if _, err := tc.Write([]byte("GET / HTTP/1.1\r\nHost: signin.school.test:8443\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	n, _ := readAll(tc, buf)
	if got := string(buf[:n]); !strings.HasPrefix(got, "HTTP/1.1 200") || !strings.Contains(got, "Secure; SameSite=Strict") ||
		!strings.Contains(got, "Sign in to use the web") {
		t.Fatalf("answer over the handed-over connection:\n%s", got)
	}
}

// TestNonClientRefused: a device the filter does not serve (outside
// clients) may load the page, but a sign-in it posts, with a good token,
// origin and password, is refused (403) with a page that says why,
// counted refused, and signs nobody in: the password is not even checked.
func TestNonClientRefused(t *testing.T) {
	e := newEnv(t, "\nclients: [127.0.0.1/32]\n"+portalYAML)
	const stranger = "127.0.0.9"
	b := e.browser()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(stranger)}, Timeout: 10 * time.Second}
	b.c.Transport = &http.Transport{DialContext: d.DialContext}
	status, _, tok := b.get("/")
	if status != http.StatusOK || tok == "" {
		t.Fatalf("the page for a non-client: %d, token %q", status, tok)
	}
	resp := b.post("/signin", url.Values{"user": {"alice"}, "password": {alicePass}, "csrf": {tok}}, "")
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "not one the school&#39;s web filter serves") {
		t.Fatalf("a non-client's sign-in answered %d:\n%s", resp.StatusCode, body)
	}
	if en, ok := e.ids.Lookup(netip.MustParseAddr(stranger), time.Now()); ok {
		t.Fatalf("a non-client was signed in: %+v", en)
	}
	if n := counter(t, e, resultRefused); n != 1 {
		t.Errorf("refused = %v, want 1", n)
	}
	if n := counter(t, e, resultOK) + counter(t, e, resultFailed); n != 0 {
		t.Errorf("ok + failed = %v, want 0: the password must not be checked", n)
	}
	// A client's sign-in on the same portal goes through.
	c := e.browser()
	_, _, tok = c.get("/")
	if resp := c.post("/signin", url.Values{"user": {"alice"}, "password": {alicePass}, "csrf": {tok}}, ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a client's sign-in answered %d", resp.StatusCode)
	}
}
