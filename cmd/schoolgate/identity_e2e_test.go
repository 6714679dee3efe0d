package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/crypto/bcrypt"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
)

// identityGateway runs the schoolgate binary with a proxy, a DNS filter
// and the logon API, no proxy sign-in required.
type identityGateway struct {
	t                             *testing.T
	bin, dir, cfg                 string
	proxy, dnsAddr, admin, radius string
	secret                        []byte
	cmd                           *exec.Cmd
	stderr                        *e2eBuffer
}

func newIdentityGateway(t *testing.T) *identityGateway {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	g := &identityGateway{t: t, bin: e2eBinary(t), dir: t.TempDir(), proxy: e2eFreeAddr(t), dnsAddr: e2eFreeAddr(t),
		admin: e2eFreeAddr(t), radius: e2eFreeAddr(t), secret: []byte("e2e-logon-secret")}
	h, err := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"users.csv":           "user,profile,password_hash\nbob,staff," + string(h) + "\n",
		"identity-api.secret": string(g.secret) + "\n",
		"radius.secret":       "e2e-radius-secret\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(g.dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g.cfg = filepath.Join(g.dir, "schoolgate.yaml")
	cfg := fmt.Sprintf(`timezone: UTC
listen: {proxy: %q, dns: %q, admin: %q}
clients: [127.0.0.0/8]
users: {file: users.csv}
networks:
  127.0.0.0/8: student
default_profile: student
identity:
  api_secret_file: identity-api.secret
  radius: {listen: %q, secret_file: radius.secret, clients: [127.0.0.1/32]}
dns:
  upstreams: ["127.0.0.1:9"]
lists:
  - category: gambling
    domains: [casino.test]
profiles:
  student:
    rules:
      - {action: block, categories: [gambling]}
    default: allow
  staff:
    rules:
      - {action: block, categories: [gambling]}
    default: allow
log: {dir: logs, retention_days: 0}
`, g.proxy, g.dnsAddr, g.admin, g.radius)
	if err := os.WriteFile(g.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g.start()
	return g
}

func (g *identityGateway) start() {
	t := g.t
	t.Helper()
	g.stderr = new(e2eBuffer)
	g.cmd = exec.Command(g.bin, "serve", "-config", g.cfg)
	g.cmd.Stderr, g.cmd.Stdout = g.stderr, g.stderr
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd, stderr := g.cmd, g.stderr
	t.Cleanup(func() {
		cmd.Process.Kill() //nolint:errcheck
		cmd.Wait()         //nolint:errcheck
		if t.Failed() {
			t.Logf("schoolgate stderr:\n%s", stderr.String())
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		// The admin listener answers before RADIUS listens: wait for
		// the "serving" line too.
		if resp, err := http.Get("http://" + g.admin + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(g.stderr.String(), `"msg":"serving"`) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("schoolgate not healthy after 20s:\n%s", g.stderr.String())
		}
	}
}

// stop stops the gateway as systemd does and waits for it.
func (g *identityGateway) stop() {
	g.t.Helper()
	g.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck
	done := make(chan error, 1)
	go func() { done <- g.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			g.t.Fatalf("serve exited: %v\n%s", err, g.stderr.String())
		}
	case <-time.After(20 * time.Second):
		g.t.Fatal("serve did not stop in 20s")
	}
}

func (g *identityGateway) logon(user, action string) int {
	g.t.Helper()
	body := []byte(fmt.Sprintf(`{"user":%q,"ip":"127.0.0.1","action":%q,"ts":%d}`, user, action, time.Now().Unix()))
	m := hmac.New(sha256.New, g.secret)
	m.Write(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+g.admin+"/api/identity", bytes.NewReader(body))
	req.Header.Set("X-Schoolgate-Signature", "sha256="+hex.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// web and name ask for casino.test through the proxy and the DNS filter.
func (g *identityGateway) web() {
	g.t.Helper()
	s := &e2eServer{proxy: g.proxy}
	resp, err := s.client("", "").Get("http://casino.test/")
	if err != nil {
		g.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		g.t.Fatalf("proxy: %d, want 403", resp.StatusCode)
	}
}

func (g *identityGateway) name(qtype uint16) {
	g.t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("casino.test.", qtype)
	r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, g.dnsAddr)
	if err != nil {
		g.t.Fatal(err)
	}
	if r.Rcode != dns.RcodeNameError {
		g.t.Fatalf("dns: %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
}

// idLine is what the identity test reads of an access-log line (DNS
// lines have a text status, which e2eLogLine does not take).
type idLine struct {
	Src, User, IP, Profile, Method, Host string
}

// lines returns the casino.test lines of src (flushed every second).
func (g *identityGateway) lines(src, method string, n int) []idLine {
	g.t.Helper()
	var out []idLine
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out = out[:0]
		b, err := os.ReadFile(filepath.Join(g.dir, "logs", "access-"+time.Now().UTC().Format("2006-01-02")+".jsonl"))
		if err != nil && !os.IsNotExist(err) {
			g.t.Fatal(err)
		}
		for _, raw := range bytes.Split(b, []byte("\n")) {
			var l idLine
			if len(raw) == 0 || json.Unmarshal(raw, &l) != nil {
				continue
			}
			if l.Host == "casino.test" && l.Src == src && (method == "" || l.Method == method) {
				out = append(out, l)
			}
		}
		if len(out) >= n || time.Now().After(deadline) {
			return out
		}
	}
}

// TestServeIdentityEndToEnd: a logon through the API names the address;
// the proxy's and the DNS filter's lines carry the same user and profile
// (bob's: staff, on a student network); check -ip shows him; a restart
// keeps him signed in; a logoff ends it.
func TestServeIdentityEndToEnd(t *testing.T) {
	g := newIdentityGateway(t)
	g.web()
	g.name(dns.TypeA)
	if l := g.lines("proxy", "", 1); len(l) != 1 || l[0].User != "" || l[0].Profile != "student" {
		t.Fatalf("before logon, proxy lines %+v, want one with no user, profile student", l)
	}
	if code := g.logon("bob", "logon"); code != http.StatusNoContent {
		t.Fatalf("logon: %d", code)
	}
	g.web()
	g.name(dns.TypeAAAA)
	web, name := g.lines("proxy", "", 2), g.lines("dns", "AAAA", 1)
	if len(web) != 2 || len(name) != 1 {
		t.Fatalf("lines: proxy %d, dns %d", len(web), len(name))
	}
	for _, l := range []idLine{web[1], name[0]} {
		if l.User != "bob" || l.Profile != "staff" || l.IP != "127.0.0.1" {
			t.Errorf("%s line user/profile/ip = %q/%q/%q, want bob/staff/127.0.0.1", l.Src, l.User, l.Profile, l.IP)
		}
	}

	// check -ip reads what the gateway wrote to state_dir.
	var out string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		_, out, _ = runCheckT(t, "", "-config", g.cfg, "-ip", "127.0.0.1")
		if strings.Contains(out, "user bob") {
			break
		}
	}
	if !strings.Contains(out, "127.0.0.1: user bob (api,") || !strings.Contains(out, "profile staff") {
		t.Errorf("check -ip: %q", out)
	}

	// A restart keeps him.
	g.stop()
	g.start()
	g.name(dns.TypeMX)
	if l := g.lines("dns", "MX", 1); len(l) != 1 || l[0].User != "bob" || l[0].Profile != "staff" {
		t.Errorf("after restart, dns line %+v, want bob/staff", l)
	}
	if code := g.logon("bob", "logoff"); code != http.StatusNoContent {
		t.Fatalf("logoff: %d", code)
	}
	g.name(dns.TypeTXT)
	if l := g.lines("dns", "TXT", 1); len(l) != 1 || l[0].User != "" || l[0].Profile != "student" {
		t.Errorf("after logoff, dns line %+v, want no user, student", l)
	}
}

// TestServeRADIUS: accounting sent to identity.radius.listen names the
// address in the gateway's lines; a Stop ends it. Packets from an address
// outside identity.radius.clients, or with the wrong secret, are dropped
// unanswered and change nothing.
func TestServeRADIUS(t *testing.T) {
	g := newIdentityGateway(t)
	send := func(status rfc2866.AcctStatusType, user, from, secret string, wait time.Duration) error {
		t.Helper()
		p := radius.New(radius.CodeAccountingRequest, []byte(secret))
		rfc2866.AcctStatusType_Set(p, status)                    //nolint:errcheck
		rfc2865.UserName_SetString(p, user)                      //nolint:errcheck
		rfc2865.FramedIPAddress_Set(p, net.ParseIP("127.0.0.1")) //nolint:errcheck
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		c := &radius.Client{Retry: 300 * time.Millisecond, Dialer: net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}}
		r, err := c.Exchange(ctx, p, g.radius)
		if err == nil && r.Code != radius.CodeAccountingResponse {
			err = fmt.Errorf("answer %v", r.Code)
		}
		return err
	}
	const secret = "e2e-radius-secret"
	if err := send(rfc2866.AcctStatusType_Value_Start, "dora@school.example", "127.0.0.1", secret, 10*time.Second); err != nil {
		t.Fatalf("Start: %v", err)
	}
	g.name(dns.TypeA)
	if l := g.lines("dns", "A", 1); len(l) != 1 || l[0].User != "dora" || l[0].Profile != "student" {
		t.Errorf("after Start, dns line %+v, want dora (not in the users file: the network's student)", l)
	}
	if err := send(rfc2866.AcctStatusType_Value_Stop, "dora", "127.0.0.1", secret, 10*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	g.name(dns.TypeAAAA)
	if l := g.lines("dns", "AAAA", 1); len(l) != 1 || l[0].User != "" {
		t.Errorf("after Stop, dns line %+v, want no user", l)
	}
	if err := send(rfc2866.AcctStatusType_Value_Start, "mallory", "127.0.0.2", secret, 2*time.Second); err == nil {
		t.Error("a Start from outside identity.radius.clients was answered")
	}
	if err := send(rfc2866.AcctStatusType_Value_Start, "mallory", "127.0.0.1", "not-the-secret", 2*time.Second); err == nil {
		t.Error("a Start with the wrong secret was answered")
	}
	g.name(dns.TypeMX)
	if l := g.lines("dns", "MX", 1); len(l) != 1 || l[0].User != "" {
		t.Errorf("after the refused packets, dns line %+v, want no user", l)
	}
}
