package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"github.com/schoolgate/schoolgate/internal/testenv"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", u, err)
	}
	return resp, string(b)
}

func TestPlainHTTP(t *testing.T) {
	e := newEnv(t, envConfig{requireAuth: true})
	alice := e.client("alice", "alicepw")
	upHost := strings.TrimPrefix(e.upURL, "http://")
	upIP := upstreamIP

	t.Run("allowed", func(t *testing.T) {
		resp, body := get(t, alice, e.upURL+"/hello?x=1")
		if resp.StatusCode != 200 || body != "hello from upstream" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		if via := resp.Header.Get("Via"); !strings.Contains(via, "schoolgate") {
			t.Errorf("response Via = %q", via)
		}
		v, _ := e.lastSeen.Load("/hello")
		h := v.(http.Header)
		if h.Get("Proxy-Authorization") != "" || h.Get("Proxy-Connection") != "" {
			t.Errorf("proxy headers forwarded: %v", h)
		}
		if !strings.Contains(h.Get("Via"), "schoolgate") {
			t.Errorf("upstream saw Via %q", h.Get("Via"))
		}
		l := e.lastLog(t, upIP)
		if l.Src != "proxy" || l.User != "alice" || l.Profile != "student" || l.Method != "GET" ||
			l.URL != e.upURL+"/hello?x=1" || l.Verdict != "allow" || statusNum(l.Status) != 200 ||
			l.Bytes != int64(len(body)) || l.IP != "127.0.0.1" || l.Rule != "student#default" {
			t.Errorf("log line %+v", l)
		}
		_ = upHost
	})

	t.Run("blocked", func(t *testing.T) {
		resp, body := get(t, alice, "http://www.casino.test/play?x=<b>")
		if resp.StatusCode != 403 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("content type %q", ct)
		}
		for _, want := range []string{"www.casino.test", "gambling", "student#2", "alice", "the IT office, room 12", "Test School", "<!DOCTYPE html>"} {
			if !strings.Contains(body, want) {
				t.Errorf("block page lacks %q", want)
			}
		}
		if strings.Contains(body, "<b>") || strings.Contains(body, "http://") && strings.Contains(body, "src=") {
			t.Errorf("block page has unescaped or external content")
		}
		l := e.lastLog(t, "www.casino.test")
		if l.Verdict != "block" || l.Rule != "student#2" || statusNum(l.Status) != 403 ||
			len(l.Categories) != 1 || l.Categories[0] != "gambling" || l.Bytes != int64(len(body)) {
			t.Errorf("log line %+v", l)
		}
	})

	t.Run("blocked URL entry", func(t *testing.T) {
		resp, _ := get(t, alice, "http://allowed.test:"+strconv.Itoa(e.up.Listener.Addr().(*net.TCPAddr).Port)+"/forbidden/page")
		if resp.StatusCode != 403 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		resp, body := get(t, alice, "http://allowed.test:"+strconv.Itoa(e.up.Listener.Addr().(*net.TCPAddr).Port)+"/hello")
		if resp.StatusCode != 200 || body != "hello from upstream" {
			t.Fatalf("allowed path by name: %d %q", resp.StatusCode, body)
		}
	})

	t.Run("staff profile", func(t *testing.T) {
		resp, _ := get(t, e.client("bob", "bobpw"), "http://casino.test:"+strconv.Itoa(e.up.Listener.Addr().(*net.TCPAddr).Port)+"/hello")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if l := e.lastLog(t, "casino.test"); l.User != "bob" || l.Profile != "staff" || l.Verdict != "allow" {
			t.Errorf("log line %+v", l)
		}
	})
}

func TestAuth(t *testing.T) {
	e := newEnv(t, envConfig{requireAuth: true})
	u := e.upURL + "/hello"
	cases := []struct {
		name, user, pass string
		want             int
	}{
		{"no credentials", "", "", 407},
		{"wrong password", "alice", "nope", 407},
		{"unknown user", "mallory", "x", 407},
		{"right password", "alice", "alicepw", 200},
		{"right password, cached", "alice", "alicepw", 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := get(t, e.client(c.user, c.pass), u)
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
			if c.want == 407 {
				if got := resp.Header.Get("Proxy-Authenticate"); got != `Basic realm="schoolgate"` {
					t.Errorf("Proxy-Authenticate %q", got)
				}
				if !strings.Contains(body, "Sign-in needed") {
					t.Errorf("407 page: %q", body)
				}
				l := e.lastLog(t, upstreamIP)
				// A failed sign-in is logged under the name tried (issue 17).
				if statusNum(l.Status) != 407 || l.Verdict != "block" || l.User != c.user {
					t.Errorf("log line %+v", l)
				}
				// A refused password is a failed sign-in; no credentials
				// at all is only the prompt.
				if want := map[bool]string{true: "failed", false: ""}[c.user != ""]; l.Auth != want {
					t.Errorf("auth = %q, want %q", l.Auth, want)
				}
			}
		})
	}
	if got := testenv.MetricValue(e.p.m.authFailures); got != 3 {
		t.Errorf("auth failures = %v, want 3", got)
	}
	// The wrong password, the unknown user (checked against a dummy hash,
	// so that an unknown name costs what a known one does), and alice once.
	if n := e.p.auth.bcrypts.Load(); n != 3 {
		t.Errorf("bcrypt ran %d times, want 3 (the second alice must hit the cache)", n)
	}

	t.Run("CONNECT without credentials", func(t *testing.T) {
		_, err := e.client("", "").Get("https://" + upstreamIP + ":" + strconv.Itoa(e.tlsPort) + "/hello")
		if err == nil || !strings.Contains(err.Error(), "Proxy Authentication Required") {
			t.Fatalf("err %v", err)
		}
	})
}

func TestAuthCacheFollowsPasswordChange(t *testing.T) {
	e := newEnv(t, envConfig{requireAuth: true})
	c := newAuthCache(16, 1)
	snap := e.engine.Snapshot()
	ctx, ip := context.Background(), netip.MustParseAddr("127.0.0.1")
	if err := c.verify(ctx, snap, ip, "alice", "alicepw"); err != nil {
		t.Fatal(err)
	}
	if err := c.verify(ctx, snap, ip, "alice", "alicepw"); err != nil || c.bcrypts.Load() != 1 {
		t.Fatalf("cached verify: %v, bcrypts %d", err, c.bcrypts.Load())
	}
	// A new users file with a new password for alice: the cached entry is
	// for the old hash and must not let the old password in.
	users := testUsers + "alice,student," + hashPw(t, "newpw") + "\n"
	writeFile(t, e.dir+"/users.csv", users)
	snap2 := e.build()
	if err := c.verify(ctx, snap2, ip, "alice", "alicepw"); err == nil {
		t.Fatal("old password accepted after the password changed")
	}
	if err := c.verify(ctx, snap2, ip, "alice", "newpw"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	if err := c.verify(ctx, snap2, ip, "bob", "bobpw"); err == nil {
		t.Fatal("removed user accepted")
	}

	// The same through whole header values (the raw-header cache).
	hdr := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:alicepw"))
	if u, err := c.verifyHeader(ctx, snap, ip, hdr); err != nil || u != "alice" {
		t.Fatalf("header: %q %v", u, err)
	}
	n := c.bcrypts.Load()
	if u, err := c.verifyHeader(ctx, snap, ip, hdr); err != nil || u != "alice" || c.bcrypts.Load() != n {
		t.Fatalf("cached header: %q %v, bcrypts %d→%d", u, err, n, c.bcrypts.Load())
	}
	if _, err := c.verifyHeader(ctx, snap2, ip, hdr); err == nil {
		t.Fatal("old password accepted through the header cache after the change")
	}
	if _, err := c.verifyHeader(ctx, snap2, ip, "Basic !!!"); err == nil {
		t.Fatal("malformed header accepted")
	}
}

func TestNotAClient(t *testing.T) {
	e := newEnv(t, envConfig{requireAuth: true, clients: "  - 10.0.0.0/8\n"})
	resp, body := get(t, e.client("", ""), e.upURL+"/hello")
	if resp.StatusCode != 403 || !strings.Contains(body, "not_a_client") {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if l := e.lastLog(t, upstreamIP); l.Rule != "not_a_client" || l.Verdict != "block" || statusNum(l.Status) != 403 {
		t.Errorf("log line %+v", l)
	}
}

func TestDenyDestinations(t *testing.T) {
	e := newEnv(t, envConfig{})
	c := e.client("", "")
	port := strconv.Itoa(e.up.Listener.Addr().(*net.TCPAddr).Port)
	for _, tc := range []struct{ name, url, host string }{
		{"by address", "http://127.0.0.1:" + port + "/hello", "127.0.0.1"},
		{"by name resolving to loopback", "http://loop.test:" + port + "/hello", "loop.test"},
		{"localhost", "http://localhost:" + port + "/hello", "localhost"},
		{"metadata address by name", "http://meta.test/latest/meta-data/", "meta.test"},
		{"admin listener", "http://127.0.0.1:9/", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, c, tc.url)
			if resp.StatusCode != 403 || !strings.Contains(body, "deny_destinations") {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
			if l := e.lastLog(t, tc.host); l.Rule != "deny_destinations" || l.Verdict != "block" || statusNum(l.Status) != 403 {
				t.Errorf("log line %+v", l)
			}
		})
	}
	t.Run("CONNECT by name", func(t *testing.T) {
		st, _ := rawConnect(t, e.addr, "loop.test:"+strconv.Itoa(e.tlsPort), "")
		if st != 403 {
			t.Fatalf("status %d", st)
		}
		if l := e.lastLog(t, "loop.test"); l.Rule != "deny_destinations" || l.Method != "CONNECT" || l.URL != "" {
			t.Errorf("log line %+v", l)
		}
	})
}

// rawConnect sends a CONNECT and returns the status and the connection.
func rawConnect(t *testing.T, proxyAddr, target, auth string) (int, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if auth != "" {
		req += "Proxy-Authorization: " + auth + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("reading CONNECT reply: %v", err)
	}
	if resp.StatusCode != 200 {
		io.Copy(io.Discard, resp.Body) //nolint:errcheck
		resp.Body.Close()
	}
	c.SetReadDeadline(time.Time{}) //nolint:errcheck
	if br.Buffered() > 0 {
		t.Fatalf("%d unexpected bytes after the CONNECT reply", br.Buffered())
	}
	return resp.StatusCode, c
}

func TestConnect(t *testing.T) {
	e := newEnv(t, envConfig{})
	tlsTarget := upstreamIP + ":" + strconv.Itoa(e.tlsPort)

	t.Run("allowed TLS through the tunnel", func(t *testing.T) {
		resp, body := get(t, e.client("", ""), "https://"+tlsTarget+"/big?n=3000000")
		if resp.StatusCode != 200 || len(body) != 3000000 {
			t.Fatalf("status %d, %d bytes", resp.StatusCode, len(body))
		}
		want, _ := io.ReadAll(io.LimitReader(newPattern(), 3000000))
		if body != string(want) {
			t.Fatal("body corrupted through the tunnel")
		}
		e.client("", "").Transport.(*http.Transport).CloseIdleConnections()
	})
	t.Run("allowed by name", func(t *testing.T) {
		st, c := rawConnect(t, e.addr, "www.allowed.test:"+strconv.Itoa(e.tlsPort), "")
		if st != 200 {
			t.Fatalf("status %d", st)
		}
		tc := tls.Client(c, e.namedTLS("www.allowed.test"))
		if err := tc.Handshake(); err != nil {
			t.Fatalf("handshake through the tunnel: %v", err)
		}
		io.WriteString(tc, "GET /hello HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n") //nolint:errcheck
		b, _ := io.ReadAll(tc)
		if !strings.Contains(string(b), "hello from upstream") {
			t.Fatalf("reply %q", b)
		}
		tc.Close()
		l := e.lastLog(t, "www.allowed.test")
		if l.Method != "CONNECT" || l.Verdict != "allow" || statusNum(l.Status) != 200 || l.URL != "" || l.Bytes < int64(len(b)) {
			t.Errorf("log line %+v", l)
		}
	})
	t.Run("blocked", func(t *testing.T) {
		st, _ := rawConnect(t, e.addr, "casino.test:443", "")
		if st != 403 {
			t.Fatalf("status %d", st)
		}
		if l := e.lastLog(t, "casino.test"); l.Method != "CONNECT" || l.Verdict != "block" || l.Rule != "student#2" || statusNum(l.Status) != 403 {
			t.Errorf("log line %+v", l)
		}
	})
	t.Run("bad port", func(t *testing.T) {
		st, _ := rawConnect(t, e.addr, "ports.test:25", "")
		if st != 403 {
			t.Fatalf("status %d", st)
		}
		if l := e.lastLog(t, "ports.test"); l.Rule != "connect_ports" || l.Verdict != "block" {
			t.Errorf("log line %+v", l)
		}
	})
	for _, target := range []string{"no-port.test", upstreamIP + ":0443", "-:443", "a.--.test:443", "[::1]:99999"} {
		t.Run("malformed target "+target, func(t *testing.T) {
			st, _ := rawConnect(t, e.addr, target, "")
			if st != 400 {
				t.Fatalf("status %d", st)
			}
		})
	}
	alert := []byte{21, 3, 1, 0, 2, 1, 100} // a TLS warning alert record
	for _, tc := range []struct {
		name, target, sni, logHost, rule string
		first                            func([]byte) []byte // rewrites the ClientHello's write
	}{
		{"SNI fronting a blocked host", "www.allowed.test:" + strconv.Itoa(e.tlsPort), "casino.test", "casino.test", "host_mismatch", nil},
		{"SNI fronting an allowed host", "www.allowed.test:" + strconv.Itoa(e.tlsPort), "other.test", "other.test", "host_mismatch", nil},
		{"IP literal with blocked SNI", tlsTarget, "www.casino.test", "www.casino.test", "student#2", nil},
		{"alert record before a blocked SNI", tlsTarget, "casino.test", upstreamIP, "tls_malformed",
			func(b []byte) []byte { return append(bytes.Clone(alert), b...) }},
		{"blocked SNI in a fragmented ClientHello", tlsTarget, "casino.test", "casino.test", "student#2",
			func(b []byte) []byte { return fragmentHello(b, 64) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, c := rawConnect(t, e.addr, tc.target, "")
			if st != 200 {
				t.Fatalf("status %d", st)
			}
			if tc.first != nil {
				c = &firstWriteConn{Conn: c, rewrite: tc.first}
			}
			tlc := tls.Client(c, &tls.Config{ServerName: tc.sni, InsecureSkipVerify: true}) //nolint:gosec // the test checks the cut, not the server
			tlc.SetDeadline(time.Now().Add(5 * time.Second))                                //nolint:errcheck
			if err := tlc.Handshake(); err == nil {
				t.Fatal("handshake succeeded: the tunnel was not cut")
			}
			// A cut is a refusal: the log says 403 (not the 200 the CONNECT
			// got before the ClientHello), with the rule that cut it.
			l := e.lastLog(t, tc.logHost)
			if l.Method != "CONNECT" || l.Verdict != "block" || l.Rule != tc.rule || statusNum(l.Status) != 403 {
				t.Errorf("log line %+v", l)
			}
		})
	}
	t.Run("fragmented ClientHello is relayed", func(t *testing.T) {
		st, c := rawConnect(t, e.addr, "www.allowed.test:"+strconv.Itoa(e.tlsPort), "")
		if st != 200 {
			t.Fatalf("status %d", st)
		}
		fc := &firstWriteConn{Conn: c, rewrite: func(b []byte) []byte { return fragmentHello(b, 200) }}
		tlc := tls.Client(fc, e.namedTLS("www.allowed.test"))
		tlc.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		if err := tlc.Handshake(); err != nil {
			t.Fatalf("handshake through the tunnel: %v", err)
		}
		io.WriteString(tlc, "GET /hello HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n") //nolint:errcheck
		if b, _ := io.ReadAll(tlc); !strings.Contains(string(b), "hello from upstream") {
			t.Fatalf("reply %q", b)
		}
		tlc.Close()
	})
	t.Run("silent client is closed", func(t *testing.T) {
		st, c := rawConnect(t, e.addr, tlsTarget, "")
		if st != 200 {
			t.Fatalf("status %d", st)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
		start := time.Now()
		_, err := c.Read(make([]byte, 1))
		if err == nil || time.Since(start) > 6*time.Second {
			t.Fatalf("read after %v: %v", time.Since(start), err)
		}
	})
}

// firstWriteConn rewrites the first Write on a connection (crypto/tls
// writes its ClientHello record in one).
type firstWriteConn struct {
	net.Conn
	rewrite func([]byte) []byte
	done    bool
}

func (c *firstWriteConn) Write(b []byte) (int, error) {
	if c.done {
		return c.Conn.Write(b)
	}
	c.done = true
	if _, err := c.Conn.Write(c.rewrite(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}

func TestUpstreamFailures(t *testing.T) {
	e := newEnv(t, envConfig{})
	c := e.client("", "")
	ln := listenUpstream(t)
	closed := ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		name, url string
		want      int
		text      string
		kind      string
	}{
		{"connection refused", "http://" + closed + "/", 502, "could not be reached", kindRefused},
		{"no such host", "http://nx.test/", 502, "name could not be found", kindDNS},
		{"slow upstream", e.upURL + "/slow", 504, "took too long", kindTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := testenv.MetricValue(e.p.m.upstreamByKind[tc.kind])
			resp, body := get(t, c, tc.url)
			if resp.StatusCode != tc.want || !strings.Contains(body, tc.text) {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
			for _, raw := range []string{"dial tcp", "connect:", "net/http", "no such host"} {
				if strings.Contains(body, raw) {
					t.Errorf("page shows raw error text %q", raw)
				}
			}
			u, _ := url.Parse(tc.url)
			if l := e.lastLog(t, u.Hostname()); statusNum(l.Status) != tc.want || l.Verdict != "allow" {
				t.Errorf("log line %+v", l)
			}
			if got := testenv.MetricValue(e.p.m.upstreamByKind[tc.kind]); got != before+1 {
				t.Errorf("upstream_errors_total{kind=%q} = %v, want %v", tc.kind, got, before+1)
			}
		})
	}
}

func TestLargeBodies(t *testing.T) {
	if testing.Short() {
		t.Skip("large bodies")
	}
	e := newEnv(t, envConfig{})
	c := e.client("", "")
	const n = 20 << 20
	t.Run("download", func(t *testing.T) {
		resp, err := c.Get(e.upURL + "/big?n=" + strconv.Itoa(n))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		h, want := sha256.New(), sha256.New()
		got, err := io.Copy(h, resp.Body)
		if err != nil || got != n {
			t.Fatalf("read %d bytes: %v", got, err)
		}
		io.Copy(want, io.LimitReader(newPattern(), n)) //nolint:errcheck
		if !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
			t.Fatal("download corrupted")
		}
		if l := e.lastLog(t, upstreamIP); l.Bytes != n {
			t.Errorf("logged %d bytes, want %d", l.Bytes, n)
		}
	})
	t.Run("upload", func(t *testing.T) {
		want := sha256.New()
		io.Copy(want, io.LimitReader(newPattern(), n)) //nolint:errcheck
		resp, err := c.Post(e.upURL+"/sum", "application/octet-stream", io.LimitReader(newPattern(), n))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != fmt.Sprintf("%d %s", n, hex.EncodeToString(want.Sum(nil))) {
			t.Fatalf("upstream got %q", b)
		}
	})
}

func TestWebSocketAndExpectContinue(t *testing.T) {
	e := newEnv(t, envConfig{})
	t.Run("websocket", func(t *testing.T) {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		fmt.Fprintf(c, "GET %s/ws HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
			e.upURL, strings.TrimPrefix(e.upURL, "http://"))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 101 || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
			t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
		}
		io.WriteString(c, "ping over websocket") //nolint:errcheck
		buf := make([]byte, len("ping over websocket"))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "PING OVER WEBSOCKET" {
			t.Fatalf("echo %q: %v", buf, err)
		}
		c.Close()
		if l := e.lastLog(t, upstreamIP); statusNum(l.Status) != 101 || l.Verdict != "allow" {
			t.Errorf("log line %+v", l)
		}
	})
	t.Run("100-continue", func(t *testing.T) {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		body := "a body sent after 100 Continue"
		fmt.Fprintf(c, "POST %s/sum HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", e.upURL, len(body))
		br := bufio.NewReader(c)
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
			t.Fatalf("first line %q: %v", line, err)
		}
		if l2, _ := br.ReadString('\n'); l2 != "\r\n" {
			t.Fatalf("after 100: %q", l2)
		}
		io.WriteString(c, body) //nolint:errcheck
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		sum := sha256.Sum256([]byte(body))
		if resp.StatusCode != 200 || string(b) != fmt.Sprintf("%d %s", len(body), hex.EncodeToString(sum[:])) {
			t.Fatalf("status %d body %q", resp.StatusCode, b)
		}
		v, _ := e.lastSeen.Load("/sum")
		if h := v.(http.Header); h.Get("Expect") != "100-continue" {
			t.Errorf("upstream did not see Expect: %v", h)
		}
	})
}

func TestGuards(t *testing.T) {
	t.Run("connection cap", func(t *testing.T) {
		e := newEnv(t, envConfig{opts: func(o *Options) { o.MaxConnections = 2 }})
		var held []net.Conn
		for range 2 {
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			held = append(held, c)
		}
		time.Sleep(100 * time.Millisecond)
		if got := testenv.MetricValue(e.p.m.activeConns); got != 2 {
			t.Fatalf("active connections %v", got)
		}
		// Past the cap a client is told so at once, not left waiting.
		start := time.Now()
		resp, _ := get(t, e.client("", ""), e.upURL+"/hello")
		if resp.StatusCode != 503 || time.Since(start) > 2*time.Second {
			t.Fatalf("third connection while two were held: %d after %v, want 503 at once", resp.StatusCode, time.Since(start))
		}
		held[0].Close()
		for i := 0; testenv.MetricValue(e.p.m.activeConns) != 1 && i < 100; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if resp, _ := get(t, e.client("", ""), e.upURL+"/hello"); resp.StatusCode != 200 {
			t.Fatalf("after a slot freed: %d", resp.StatusCode)
		}
	})
	t.Run("header size limit", func(t *testing.T) {
		e := newEnv(t, envConfig{})
		req, _ := http.NewRequest("GET", e.upURL+"/hello", nil)
		req.Header.Set("X-Big", strings.Repeat("a", 200<<10))
		resp, err := e.client("", "").Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("no goroutine leak on slow or vanished clients", func(t *testing.T) {
		e := newEnv(t, envConfig{opts: func(o *Options) { o.ReadHeaderTimeout = 300 * time.Millisecond }})
		// Warm up: one full request, so lazily started goroutines exist.
		get(t, e.client("", ""), e.upURL+"/hello")
		e.client("", "").Transport.(*http.Transport).CloseIdleConnections()
		time.Sleep(100 * time.Millisecond)
		base := runtime.NumGoroutine()
		var conns []net.Conn
		for i := range 20 {
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			switch i % 3 {
			case 0: // half a request line, then silence
				io.WriteString(c, "GET http://") //nolint:errcheck
			case 1: // a CONNECT tunnel opened, then silence
				io.WriteString(c, "CONNECT "+upstreamIP+":"+strconv.Itoa(e.tlsPort)+" HTTP/1.1\r\n\r\n") //nolint:errcheck
			}
		}
		time.Sleep(200 * time.Millisecond)
		for i, c := range conns {
			if i%2 == 0 {
				c.Close() // vanished
			}
		}
		// The rest are left open: timeouts must reap them.
		deadline := time.Now().Add(8 * time.Second)
		for runtime.NumGoroutine() > base+2 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > base+2 {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
		}
		for _, c := range conns {
			c.Close()
		}
	})
}

func TestBlockPageEscapes(t *testing.T) {
	st := &request{host: `evil.test"><script>alert(1)</script>`, url: "http://evil.test/<img src=x onerror=alert(1)>",
		user: "<b>bob</b>", start: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	page := string(renderPage(pageFor(st, &BlockedError{Rule: "student#2", Reason: "category <gambling> is blocked"}, configBlockPage("", ""), time.UTC)))
	for _, bad := range []string{"<script>", "<img", "<b>bob"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q unescaped", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;", "your teacher or the school", "Monday 23 November 2026", "student#2"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "http-equiv") || strings.Contains(page, "<link") || strings.Contains(page, "<script") {
		t.Error("page loads something from outside")
	}
}

// A review request must say who and which machine, even when nobody signed in.
func TestBlockPageNamesUserAndDevice(t *testing.T) {
	st := &request{host: "www.bet365.com", ip: netip.MustParseAddr("::ffff:10.10.4.7"),
		start: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	page := string(renderPage(pageFor(st, &BlockedError{Rule: "student#2"}, configBlockPage("", ""), time.UTC)))
	for _, want := range []string{"<dt>User</dt><dd>not signed in</dd>", "<dt>Device</dt><dd>10.10.4.7</dd>"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	st.user = "alice"
	page = string(renderPage(pageFor(st, &BlockedError{Rule: "student#2"}, configBlockPage("", ""), time.UTC)))
	if !strings.Contains(page, "<dt>User</dt><dd>alice</dd>") {
		t.Error("page does not name the signed-in user")
	}
}

// tcpUpstream is a plain TCP server: it reads until the client half-closes,
// then answers with the byte count and closes. It checks a tunnel's
// half-close, and lets a tunnel stay idle.
func tcpUpstream(t *testing.T) (string, int) {
	t.Helper()
	ln := listenUpstream(t)
	testenv.ServeConns(t, ln, func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		fmt.Fprintf(c, "got %d bytes", n)
	})
	return ln.Addr().String(), ln.Addr().(*net.TCPAddr).Port
}

func TestTunnelLifecycle(t *testing.T) {
	var port int
	var addr string
	e := newEnv(t, envConfig{opts: func(o *Options) {
		o.TunnelIdleTimeout = 600 * time.Millisecond
		o.MaxTunnels = 2
	}, extraPorts: nil})
	addr, port = tcpUpstream(t)
	// The TCP upstream's port must be a connect port: rebuild the config.
	cfg := strings.Replace(readFile(t, e.cfgPath), "connect_ports: [", "connect_ports: ["+strconv.Itoa(port)+", ", 1)
	writeFile(t, e.cfgPath, cfg)
	e.engine.Swap(e.build())

	t.Run("half-close", func(t *testing.T) {
		st, c := rawConnect(t, e.addr, addr, "")
		if st != 200 {
			t.Fatalf("status %d", st)
		}
		payload := strings.Repeat("not TLS ", 100000)
		if _, err := io.WriteString(c, payload); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite()                      //nolint:errcheck
		c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		b, err := io.ReadAll(c)
		if err != nil || string(b) != fmt.Sprintf("got %d bytes", len(payload)) {
			t.Fatalf("reply %q: %v", b, err)
		}
		l := e.lastLog(t, upstreamIP)
		if l.Method != "CONNECT" || l.Bytes != int64(len(b)) || statusNum(l.Status) != 200 {
			t.Errorf("log line %+v", l)
		}
	})
	t.Run("idle timeout", func(t *testing.T) {
		st, c := rawConnect(t, e.addr, addr, "")
		if st != 200 {
			t.Fatalf("status %d", st)
		}
		io.WriteString(c, "hello")                         //nolint:errcheck
		c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		start := time.Now()
		_, err := c.Read(make([]byte, 10))
		if took := time.Since(start); err == nil || took < 400*time.Millisecond || took > 3*time.Second {
			t.Fatalf("idle tunnel closed after %v: %v", took, err)
		}
	})
	t.Run("tunnel cap", func(t *testing.T) {
		for i := 0; testenv.MetricValue(e.p.m.activeTunnels) != 0 && i < 100; i++ {
			time.Sleep(20 * time.Millisecond) // the earlier tunnels' slots
		}
		for range 2 {
			st, c := rawConnect(t, e.addr, addr, "")
			if st != 200 {
				t.Fatalf("status %d", st)
			}
			io.WriteString(c, "x") //nolint:errcheck
		}
		if st, _ := rawConnect(t, e.addr, addr, ""); st != 503 {
			t.Fatalf("third tunnel: %d, want 503", st)
		}
		if got := testenv.MetricValue(e.p.m.refusedOverload); got != 1 {
			t.Errorf("overload refusals %v", got)
		}
	})
}

func TestClientStopsReading(t *testing.T) {
	e := newEnv(t, envConfig{opts: func(o *Options) { o.WriteIdleTimeout = 300 * time.Millisecond }})
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4096) //nolint:errcheck
	fmt.Fprintf(c, "GET %s/big?n=%d HTTP/1.1\r\nHost: x\r\n\r\n", e.upURL, 200<<20)
	// Read nothing: the proxy must give up on this response and log it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		found := false
		for _, l := range e.logLines(t) {
			if strings.Contains(l.URL, "/big?n=") {
				found = true
				if l.Bytes >= 200<<20 {
					t.Fatalf("logged %d bytes: the client read nothing", l.Bytes)
				}
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the response to a client that stopped reading never ended")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestTunnelNotTLSOnHTTPSPort(t *testing.T) {
	addr, port := tcpUpstream(t)
	e := newEnv(t, envConfig{extraPorts: []int{port}, opts: func(o *Options) { o.TLSPorts = []int{port} }})
	st, c := rawConnect(t, e.addr, addr, "")
	if st != 200 {
		t.Fatalf("status %d", st)
	}
	io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n")       //nolint:errcheck
	c.(*net.TCPConn).CloseWrite()                      //nolint:errcheck
	c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Fatalf("the upstream answered %q: SSH went through an HTTPS port", b)
	}
	if l := e.lastLog(t, upstreamIP); l.Verdict != "block" || l.Rule != "tls_required" || statusNum(l.Status) != 403 {
		t.Errorf("log line %+v", l)
	}
}

// A request that names no server that could exist is a bad request (400),
// not a failure to reach one (502).
func TestBadTargets(t *testing.T) {
	e := newEnv(t, envConfig{})
	for _, target := range []string{
		"http://" + upstreamIP + ":99999/", "http://" + upstreamIP + ":0/", "http://" + upstreamIP + ":080/",
		"http://-/", "http://a.--.test/",
	} {
		t.Run(target, func(t *testing.T) {
			if st, body := rawGet(t, e.addr, target, "x"); st != 400 {
				t.Fatalf("status %d: %.200s", st, body)
			}
		})
	}
	// A good port still works.
	if st, _ := rawGet(t, e.addr, e.upURL+"/hello", "x"); st != 200 {
		t.Fatalf("good URL: status %d", st)
	}
}
