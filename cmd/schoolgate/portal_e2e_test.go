package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/identity"
)

// TestServePortal: serve with a portal. A browser (Go's client through
// the proxy) from an address in portal.networks is sent to the portal,
// signs in there, browses as that user; the sign-in is in state_dir and
// survives a restart (the page loads as the user at once, `check -ip`
// names them); the portal's own listener serves the page too.
func TestServePortal(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "the page itself") //nolint:errcheck
	}))
	t.Cleanup(origin.Close)
	g := &identityGateway{t: t, bin: e2eBinary(t), dir: t.TempDir(), proxy: e2eFreeAddr(t), admin: e2eFreeAddr(t)}
	portalAddr := e2eFreeAddr(t)
	h, err := bcrypt.GenerateFromPassword([]byte("pw-alice"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(g.dir, "users.csv"), []byte("user,profile,password_hash\nalice,staff,"+string(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g.cfg = filepath.Join(g.dir, "schoolgate.yaml")
	cfg := fmt.Sprintf(`timezone: UTC
listen: {proxy: %q, dns: "", admin: %q}
clients: [127.0.0.0/8]
users: {file: users.csv}
proxy: {deny_destinations: [169.254.0.0/16]}
portal:
  listen: %q
  hostname: signin.school.test
  networks: [127.0.0.1/32]
default_profile: student
profiles:
  student: {default: allow}
  staff: {default: allow}
log: {dir: logs, retention_days: 0}
`, g.proxy, g.admin, portalAddr)
	if err := os.WriteFile(g.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g.start()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: g.proxy})}}
	get := func(u string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	page := origin.URL + "/lesson"
	resp, _ := get(page)
	_, port, _ := strings.Cut(portalAddr, ":")
	want := "http://signin.school.test:" + port + "/?url=" + url.QueryEscape(page)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
		t.Fatalf("before sign-in: %d to %q, want 303 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	_, body := get(want)
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the sign-in page through the proxy:\n%s", body)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://signin.school.test:"+port+"/signin",
		strings.NewReader(url.Values{"user": {"alice"}, "password": {"pw-alice"}, "csrf": {m[1]}, "url": {page}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://signin.school.test:"+port)
	if resp, err = c.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != page {
		t.Fatalf("sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := get(page); resp.StatusCode != 200 || body != "the page itself" {
		t.Fatalf("after sign-in: %d %q", resp.StatusCode, body)
	}
	// The portal's own listener: the page, to a device that reaches it directly.
	if resp, err := http.Get("http://" + portalAddr + "/"); err != nil || resp.StatusCode != 200 ||
		resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("the portal's listener: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	g.stop()
	e, ok, err := identity.LookupFile(filepath.Join(g.dir, "state", identity.FileName), netip.MustParseAddr("127.0.0.1"), time.Now())
	if err != nil || !ok || e.User != "alice" || e.Source != identity.SourcePortal || e.End.IsZero() {
		t.Fatalf("state_dir after the stop: %+v %v %v", e, ok, err)
	}
	out, err := exec.Command(g.bin, "check", "-config", g.cfg, "-ip", "127.0.0.1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "user alice (portal") || !strings.Contains(string(out), "profile staff") {
		t.Fatalf("check -ip: %v\n%s", err, out)
	}
	g.start()
	if resp, body := get(page); resp.StatusCode != 200 || body != "the page itself" {
		t.Fatalf("after a restart: %d %q, want the page without signing in again", resp.StatusCode, body)
	}
	found := false
	for deadline := time.Now().Add(5 * time.Second); !found && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		b, _ := os.ReadFile(filepath.Join(g.dir, "logs", "access-"+time.Now().UTC().Format("2006-01-02")+".jsonl"))
		for _, l := range strings.Split(string(b), "\n") {
			found = found || strings.Contains(l, `"user":"alice"`) && strings.Contains(l, `"profile":"staff"`) &&
				strings.Contains(l, `"url":"`+page+`"`) && strings.Contains(l, `"status":200`)
		}
	}
	if !found {
		t.Error("no access-log line of the page as alice")
	}

	// Signed out, the page leads to the portal again; a reload that takes
	// 127.0.0.1 out of portal.networks lets it through at once, and says
	// that a new portal.listen waits for a restart.
	_, body = get("http://signin.school.test:" + port + "/")
	if m = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(body); m == nil {
		t.Fatalf("the signed-in page:\n%s", body)
	}
	req, _ = http.NewRequest(http.MethodPost, "http://signin.school.test:"+port+"/signout", strings.NewReader(url.Values{"csrf": {m[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://signin.school.test:"+port)
	if resp, err = c.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp, _ := get(page); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after sign-out: %d, want the redirect again", resp.StatusCode)
	}
	cfg = strings.Replace(cfg, "networks: [127.0.0.1/32]", "networks: [10.9.0.0/16]", 1)
	cfg = strings.Replace(cfg, portalAddr, e2eFreeAddr(t), 1)
	if err := os.WriteFile(g.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(g.stderr.String(), `"msg":"reloaded"`); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload:\n%s", g.stderr.String())
		}
	}
	if !strings.Contains(g.stderr.String(), `"needs_restart":["portal.listen"]`) {
		t.Errorf("the reload line does not say portal.listen needs a restart:\n%s", g.stderr.String())
	}
	if resp, body := get(page); resp.StatusCode != 200 || body != "the page itself" {
		t.Fatalf("after the reload took 127.0.0.1 out of portal.networks: %d %q", resp.StatusCode, body)
	}
}

// A changed portal.listen (or the portal's turn between TLS and plain
// HTTP) takes a restart and the reload says so; its networks, idle time
// and hostname do not.
func TestNeedsRestartPortal(t *testing.T) {
	parse := func(portal string) *config.Config {
		t.Helper()
		cfg, err := config.Parse([]byte("default_profile: p\nprofiles: {p: {}}\nportal:\n"+portal), "c.yaml", t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	base := parse("  listen: 127.0.0.1:8080\n  hostname: a.test\n  networks: [10.0.0.0/8]\n")
	cases := []struct {
		name, portal string
		restart      bool
	}{
		{"networks, idle and name", "  listen: 127.0.0.1:8080\n  hostname: b.test\n  networks: [10.1.0.0/16]\n  idle_minutes: 5\n", false},
		{"another port", "  listen: 127.0.0.1:8081\n  hostname: a.test\n", true},
		{"a certificate on loopback: TLS", "  listen: 127.0.0.1:8080\n  hostname: a.test\n  cert: c.pem\n  key: c.key\n", true},
	}
	for _, c := range cases {
		got := slices.Contains(needsRestart(base, parse(c.portal)), "portal.listen")
		if got != c.restart {
			t.Errorf("%s: needs_restart names portal.listen: %v, want %v", c.name, got, c.restart)
		}
	}
}

// config check refuses a portal off loopback with no way to TLS, naming
// the line and what to set.
func TestConfigCheckPortal(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "portal.yaml")
	text := "default_profile: p\nprofiles: {p: {}}\nportal:\n  listen: \":8443\"\n  hostname: signin.school.test\n  networks: [10.30.0.0/16]\n"
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd(t, "", "config", "check", p)
	want := p + ":4: portal.listen :8443 is not loopback: the portal needs TLS there; set portal.cert and portal.key, or proxy.intercept"
	if code == 0 || !strings.Contains(out+errs, want) {
		t.Fatalf("exit %d, stdout %q, stderr %q; want %q", code, out, errs, want)
	}
}
