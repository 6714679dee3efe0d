package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"github.com/schoolgate/schoolgate/internal/testenv"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// e2eCA writes a CA named name (name.pem, name.key) into dir.
func e2eCA(t *testing.T, dir, name string) *x509.Certificate {
	t.Helper()
	ca, _ := testenv.WriteCA(t, filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key"), name)
	return ca
}

// mildGambling is a sports page that scores as gambling with moderate
// certainty: blocked or not depending on the profile's content_threshold.
const mildGambling = `<!doctype html><html><head><title>Weekend fixtures and odds</title></head><body>
<h1>Saturday's football</h1>
<p>Our preview of the weekend's matches. United play City at home; the bookmakers have United at 2/1 and a draw at 12/5. Place a bet on the first goalscorer with our partner sportsbook and get a free bet when you sign up.</p>
<p>Team news: the captain is back from injury and the young striker keeps his place. Kick-off is at three o'clock.</p>
</body></html>`

// A HUP reloads everything a reload may change, on the next connection:
// the interception CA, proxy.max_connections and the classifier's
// threshold. A reload with a part that cannot be built (a CA file that is
// not a certificate) changes nothing, and settings that need a restart are
// named in the reload's log line.
func TestServeReloadSwapsEverything(t *testing.T) {
	const (
		before = "  max_connections: 40\n  intercept: {ca_cert: ca1.pem, ca_key: ca1.key}\n"
		after  = "  max_connections: 2\n  intercept: {ca_cert: ca2.pem, ca_key: ca2.key}\n"
		strict = "    content_threshold: 0.3\n"
		lax    = "    content_threshold: 0.95\n"
	)
	var ca1, ca2 *x509.Certificate
	s := startE2EWith(t, func(s *e2eServer) {
		ca1, ca2 = e2eCA(t, s.dir, "ca1"), e2eCA(t, s.dir, "ca2")
		if err := os.WriteFile(filepath.Join(s.dir, "bad.pem"), []byte("not a certificate\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		s.mux.HandleFunc("/fixtures", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, mildGambling) //nolint:errcheck
		})
		s.proxyExtra, s.studentExtra = before, lax
	})
	// The verdicts the classifier gives the page at each threshold, as
	// `schoolgate classify` reports them: the proxy must follow the one in force.
	page := filepath.Join(s.dir, "fixtures.html")
	if err := os.WriteFile(page, []byte(mildGambling), 0o600); err != nil {
		t.Fatal(err)
	}
	if v := classifyVerdict(t, s); v != "allow" {
		t.Fatalf("fixture: the page is %q at content_threshold 0.95; it must be allowed there", v)
	}

	hello := func() *x509.Certificate {
		t.Helper()
		c, err := net.DialTimeout("tcp", s.proxy, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
		target := s.tlsUp.Listener.Addr().String()
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic YWxpY2U6YWxpY2Vwdw==\r\n\r\n", target, target)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("CONNECT: %v %v", resp, err)
		}
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the chain is checked below
		if err := tc.Handshake(); err != nil {
			t.Fatalf("TLS inside the tunnel: %v", err)
		}
		return tc.ConnectionState().PeerCertificates[0]
	}
	issuedBy := func(leaf, ca *x509.Certificate) bool { return leaf.CheckSignatureFrom(ca) == nil }
	fixtures := func() int {
		t.Helper()
		c := s.client("alice", "alicepw")
		defer c.CloseIdleConnections() // each connection counts against max_connections
		resp, err := c.Get(s.up.URL + "/fixtures")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck
		resp.Body.Close()
		return resp.StatusCode
	}
	// held opens n idle client connections and says whether the last one
	// was refused (the 503 page comes at once).
	held := func(n int) (refused bool) {
		t.Helper()
		// The connections of the checks before (hello, fixtures) end at the
		// proxy a moment after the client closes them, holding their slots
		// till then: one of the first n-1 could be refused instead.
		testenv.WaitFor(t, "the earlier proxy connections to end", func() bool {
			return scrapeMetric(t, s.admin, "schoolgate_proxy_active_connections") == 0
		})
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range n {
			c, err := net.DialTimeout("tcp", s.proxy, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		time.Sleep(200 * time.Millisecond) // the first ones are accepted and counted
		// The last one asks for a page: a refused connection answers 503
		// (after reading what the client sent), an accepted one 407.
		last := conns[len(conns)-1]
		io.WriteString(last, "GET http://127.0.0.2/ HTTP/1.1\r\nHost: 127.0.0.2\r\n\r\n") //nolint:errcheck
		last.SetReadDeadline(time.Now().Add(10 * time.Second))                            //nolint:errcheck
		line, _ := bufio.NewReader(last).ReadString('\n')
		if !strings.Contains(line, "503") && !strings.Contains(line, "407") {
			t.Fatalf("the last connection answered %q, want 503 or 407", line)
		}
		return strings.Contains(line, "503")
	}
	reload := func(n int) {
		t.Helper()
		if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(s.stderr.String(), `"reload`) < n {
			if time.Now().After(deadline) {
				t.Fatalf("no reload line after HUP %d:\n%s", n, s.stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	if leaf := hello(); !issuedBy(leaf, ca1) {
		t.Fatalf("before the reload: certificate issued by %q, want ca1", leaf.Issuer.CommonName)
	}
	if code := fixtures(); code != 200 {
		t.Fatalf("before the reload: the page is %d at content_threshold 0.95, want 200", code)
	}
	if held(3) {
		t.Fatal("before the reload: a third connection was refused with max_connections 40")
	}

	// A reload whose CA is not a certificate is refused whole: the
	// threshold in the same file is not applied either.
	s.proxyExtra = "  max_connections: 2\n  intercept: {ca_cert: bad.pem, ca_key: ca2.key}\n"
	s.studentExtra = strict
	s.writeConfig("")
	reload(1)
	if !strings.Contains(s.stderr.String(), "reload refused") {
		t.Fatalf("a CA that is not a certificate was not refused:\n%s", s.stderr.String())
	}
	if leaf := hello(); !issuedBy(leaf, ca1) {
		t.Errorf("after a refused reload: certificate issued by %q, want ca1 still", leaf.Issuer.CommonName)
	}
	if code := fixtures(); code != 200 {
		t.Errorf("after a refused reload: the page is %d, want 200 (old threshold)", code)
	}
	if held(3) {
		t.Error("after a refused reload: max_connections changed")
	}

	// A good reload: everything on the next connection.
	s.proxyExtra, s.studentExtra = after, strict
	s.writeConfig("")
	if v := classifyVerdict(t, s); v != "block" {
		t.Fatalf("fixture: the page is %q at content_threshold 0.3; it must be blocked there", v)
	}
	reload(2)
	if !strings.Contains(s.stderr.String(), `"reloaded"`) {
		t.Fatalf("the good reload was not applied:\n%s", s.stderr.String())
	}
	if leaf := hello(); !issuedBy(leaf, ca2) {
		t.Errorf("after the reload: certificate issued by %q, want ca2", leaf.Issuer.CommonName)
	}
	if code := fixtures(); code != 403 {
		t.Errorf("after the reload: the page is %d at content_threshold 0.3, want 403", code)
	}
	if !held(3) {
		t.Error("after the reload: a third connection was not refused with max_connections 2")
	}

	// A listener change is named as needing a restart.
	s.proxy = e2eFreeAddr(t)
	s.writeConfig("")
	reload(3)
	var last struct {
		Msg          string   `json:"msg"`
		NeedsRestart []string `json:"needs_restart"`
	}
	lines := strings.Split(strings.TrimSpace(s.stderr.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Msg != "reloaded" ||
		len(last.NeedsRestart) != 1 || last.NeedsRestart[0] != "listen.proxy" {
		t.Errorf("reload line = %s, want needs_restart [listen.proxy]", lines[len(lines)-1])
	}
}

// classifyVerdict is what `schoolgate classify` says of fixtures.html in
// s.dir for the student profile under s's current config.
func classifyVerdict(t *testing.T, s *e2eServer) string {
	t.Helper()
	out, err := exec.Command(s.cmd.Path, "classify", "-config", s.cfgPath, "-profile", "student", "-json",
		filepath.Join(s.dir, "fixtures.html")).Output()
	if err != nil {
		t.Fatalf("schoolgate classify: %v", err)
	}
	var r struct{ Verdict string }
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("classify output %q: %v", out, err)
	}
	return r.Verdict
}
