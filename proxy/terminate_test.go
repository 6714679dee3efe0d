package proxy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// namedTLS is a client TLS config for the test upstream reached by name:
// the ClientHello names sni, as a browser's names the CONNECT host, and
// the certificate (httptest's, for example.com) is verified as
// example.com's.
func (e *env) namedTLS(sni string) *tls.Config {
	return &tls.Config{
		ServerName:         sni,
		InsecureSkipVerify: true, //nolint:gosec // verified below, for the name the certificate has
		VerifyConnection: func(cs tls.ConnectionState) error {
			opts := x509.VerifyOptions{Roots: e.roots, DNSName: "example.com", Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		},
	}
}

// seenHosts records, per path, the Host and protocol each request reached
// an upstream with.
type seenHosts struct {
	mu   sync.Mutex
	reqs []seenReq
}

type seenReq struct {
	path, host string
	protoMajor int
}

func (s *seenHosts) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/ws", websocket.Handler(func(ws *websocket.Conn) {
		s.note(ws.Request())
		io.Copy(ws, ws) //nolint:errcheck // echo until the client closes
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.note(r)
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		fmt.Fprintf(w, "host %s proto %d", r.Host, r.ProtoMajor)
	})
	return mux
}

func (s *seenHosts) note(r *http.Request) {
	s.mu.Lock()
	s.reqs = append(s.reqs, seenReq{r.URL.Path, r.Host, r.ProtoMajor})
	s.mu.Unlock()
}

// get returns the requests seen for path.
func (s *seenHosts) get(path string) []seenReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []seenReq
	for _, r := range s.reqs {
		if r.path == path {
			out = append(out, r)
		}
	}
	return out
}

// connectTLS opens a tunnel to target through the proxy at addr the way
// Chromium does (CONNECT, then a TLS ClientHello naming the host, then
// requests) and returns the TLS connection, handshake done.
func connectTLS(t *testing.T, addr, target string, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	st, c := rawConnect(t, addr, target, "")
	if st != 200 {
		t.Fatalf("CONNECT %s: status %d", target, st)
	}
	tc := tls.Client(c, cfg)
	tc.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	t.Cleanup(func() { tc.Close() })
	return tc, tc.Handshake()
}

// exchange writes raw (one HTTP/1.1 request) on c and reads the answer.
func exchange(t *testing.T, c net.Conn, br *bufio.Reader, raw string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", raw, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// interceptSeen starts an interception proxy for allowed.test in front of
// a TLS upstream (certificate from the school CA, HTTP/2 when h2) that
// records what reaches it; it returns the proxy's address, the CA pool,
// the upstream's port and its record.
func interceptSeen(t *testing.T, e *env, h2 bool) (string, *x509.CertPool, int, *seenHosts) {
	t.Helper()
	ca, caKey := testCA(t, e.dir)
	seen := &seenHosts{}
	port := seenTLSUpstream(t, seen, h2, leafCert(t, ca, caKey, "allowed.test", "www.allowed.test"))
	return interceptProxyCA(t, e, ca, "domains: [allowed.test]", port), poolOf(ca), port, seen
}

// seenTLSUpstream serves seen's record over TLS with cert (HTTP/2 too
// when h2) on a test upstream address, until the test ends, and returns
// its port.
func seenTLSUpstream(t *testing.T, seen *seenHosts, h2 bool, cert tls.Certificate) int {
	t.Helper()
	up := httptest.NewUnstartedServer(seen.handler())
	up.EnableHTTP2 = h2
	up.Listener = listenUpstream(t)
	up.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	up.StartTLS()
	t.Cleanup(up.Close)
	return up.Listener.Addr().(*net.TCPAddr).Port
}

// Host, SNI and CONNECT authority agree inside an intercepted tunnel, or
// the request is refused with 421 (domain fronting): the upstream only
// ever gets the host that was decided on.
func TestInterceptHostMismatch(t *testing.T) {
	e := newEnv(t, envConfig{})
	addr, pool, port, seen := interceptSeen(t, e, false)
	authority := "www.allowed.test:" + strconv.Itoa(port)
	cfg := &tls.Config{RootCAs: pool, ServerName: "www.allowed.test"}

	for _, tc := range []struct {
		name, line, host string
		status           int
		logHost          string
	}{
		{"Host of another site", "GET /a HTTP/1.1", "www.casino.test", 421, "www.casino.test"},
		{"Host of another allowed site", "GET /b HTTP/1.1", "other.test", 421, "other.test"},
		{"Host with another port", "GET /c HTTP/1.1", "www.allowed.test:1", 421, "www.allowed.test"},
		{"Host without the tunnel's port", "GET /d HTTP/1.1", "www.allowed.test", 421, "www.allowed.test"},
		{"absolute-form naming another site", "GET https://www.casino.test/e HTTP/1.1", authority, 421, "www.casino.test"},
		{"absolute-form naming another port", "GET https://" + "www.allowed.test:1/f HTTP/1.1", authority, 421, "www.allowed.test"},
		{"same host, other case", "GET /g HTTP/1.1", "WWW.Allowed.TEST:" + strconv.Itoa(port), 200, "www.allowed.test"},
		// RFC 9112 §3.2.2: the Host of an absolute-form request is ignored
		// (and replaced): the upstream gets the authority decided on.
		{"absolute-form with another Host header", "GET https://" + authority + "/h HTTP/1.1", "www.casino.test", 200, "www.allowed.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := connectTLS(t, addr, authority, cfg)
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			path := tc.line[strings.LastIndexByte(tc.line[:len(tc.line)-9], '/'):]
			path = path[:strings.IndexByte(path, ' ')]
			resp, body := exchange(t, c, bufio.NewReader(c), tc.line+"\r\nHost: "+tc.host+"\r\n\r\n")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			got := seen.get(path)
			if tc.status != 200 {
				if len(got) != 0 {
					t.Fatalf("the upstream got the refused request: %+v", got)
				}
				if !strings.Contains(body, "host_mismatch") {
					t.Errorf("page %q", body)
				}
				l := e.logFor(t, tc.logHost, "GET")
				if l.Verdict != "block" || l.Rule != "host_mismatch" || statusNum(l.Status) != 421 || !strings.HasSuffix(l.URL, path) {
					t.Errorf("log line %+v", l)
				}
				return
			}
			if len(got) != 1 || got[0].host != authority {
				t.Fatalf("the upstream saw %+v, want Host %s", got, authority)
			}
		})
	}
	t.Run("the curl of the issue", func(t *testing.T) {
		curl, err := exec.LookPath("curl")
		if err != nil {
			t.Skip("curl is not installed")
		}
		// --cacert: the school CA interceptSeen made (testCA writes ca.pem).
		out, err := exec.Command(curl, "-sS", "--max-time", "10", "--cacert", e.dir+"/ca.pem", "-x", "http://"+addr,
			"-H", "Host: www.casino.test", "-o", "/dev/null", "-w", "%{http_code}", "https://"+authority+"/curl").CombinedOutput()
		if err != nil || string(out) != "421" {
			t.Fatalf("curl: %v, %q", err, out)
		}
		if got := seen.get("/curl"); len(got) != 0 {
			t.Fatalf("the upstream got the fronted request: %+v", got)
		}
		if l := e.logFor(t, "www.casino.test", "GET"); l.Rule != "host_mismatch" || statusNum(l.Status) != 421 || l.Verdict != "block" ||
			len(l.Categories) != 1 || l.Categories[0] != "gambling" {
			t.Errorf("log line %+v", l)
		}
	})
	t.Run("a bare address with the TLS server name of an intercepted host", func(t *testing.T) {
		// Relayed, it would carry the intercepted host's URLs unread.
		_, err := connectTLS(t, addr, upstreamIP+":"+strconv.Itoa(port), &tls.Config{RootCAs: pool, ServerName: "www.allowed.test"})
		if err == nil {
			t.Fatal("handshake succeeded: the tunnel was relayed")
		}
		if l := e.logFor(t, "www.allowed.test", "CONNECT"); l.Verdict != "block" || l.Rule != "host_mismatch" || statusNum(l.Status) != 403 {
			t.Errorf("log line %+v", l)
		}
	})
	t.Run("CONNECT inside the intercepted tunnel", func(t *testing.T) {
		// Answered, it would be a blind tunnel to the allowed host, in
		// which another TLS could name any host (fronting).
		c, err := connectTLS(t, addr, authority, cfg)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		resp, _ := exchange(t, c, bufio.NewReader(c), "CONNECT "+authority+" HTTP/1.1\r\nHost: "+authority+"\r\n\r\n")
		if resp.StatusCode != 400 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("TLS server name of another site", func(t *testing.T) {
		_, err := connectTLS(t, addr, authority, &tls.Config{RootCAs: pool, ServerName: "www.casino.test"})
		if err == nil {
			t.Fatal("handshake succeeded")
		}
		if l := e.logFor(t, "www.casino.test", "CONNECT"); l.Verdict != "block" || l.Rule != "host_mismatch" || statusNum(l.Status) != 403 {
			t.Errorf("log line %+v", l)
		}
	})
}

// Plain HTTP: the absolute-form URL is decided on, and the upstream gets
// its host whatever Host header came with it (RFC 9112 §3.2.2).
func TestPlainHostHeaderIgnored(t *testing.T) {
	e := newEnv(t, envConfig{})
	seen := &seenHosts{}
	up := httptest.NewUnstartedServer(seen.handler())
	up.Listener = listenUpstream(t)
	up.Start()
	t.Cleanup(up.Close)
	authority := "www.allowed.test:" + strconv.Itoa(up.Listener.Addr().(*net.TCPAddr).Port)
	st, body := rawGet(t, e.addr, "http://"+authority+"/plain", "www.casino.test")
	if st != 200 {
		t.Fatalf("status %d: %s", st, body)
	}
	if got := seen.get("/plain"); len(got) != 1 || got[0].host != authority {
		t.Fatalf("the upstream saw %+v, want Host %s", got, authority)
	}
	if l := e.logFor(t, "www.allowed.test", "GET"); l.Verdict != "allow" || statusNum(l.Status) != 200 {
		t.Errorf("log line %+v", l)
	}
}

// port80 serves h on a loopback address's port 80 (a free one of
// 127.80.0.0/16) and returns that address; it skips when port 80 cannot be
// bound (not root).
func port80(t *testing.T, h http.Handler) string {
	t.Helper()
	for range 20 {
		ip := fmt.Sprintf("127.80.%d.%d", rand.IntN(256), 1+rand.IntN(254))
		ln, err := net.Listen("tcp", ip+":80")
		if err != nil {
			if strings.Contains(err.Error(), "permission denied") {
				t.Skipf("cannot listen on port 80: %v", err)
			}
			continue
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln) //nolint:errcheck
		t.Cleanup(func() { srv.Close() })
		return ip
	}
	t.Skip("no free loopback address for port 80")
	return ""
}

// CONNECT to port 80 is read as HTTP, never relayed blind: accepted
// whatever connect_ports says (browsers tunnel ws:// so), each request
// decided on its own Host and path; a WebSocket to an allowed host works,
// nothing reaches a blocked one.
func TestConnectPort80(t *testing.T) {
	e := newEnv(t, envConfig{})
	seen := &seenHosts{}
	ip := port80(t, seen.handler())
	o := e.p.o
	o.Resolver = testDNSTo(t, ip)
	o.Registerer = nil
	addr := startProxy(t, o)

	dialWS := func(t *testing.T, host string) (*websocket.Conn, net.Conn, error) {
		t.Helper()
		st, c := rawConnect(t, addr, host+":80", "")
		if st != 200 {
			t.Fatalf("CONNECT %s:80: status %d", host, st)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
		cfg, err := websocket.NewConfig("ws://"+host+"/ws", "http://"+host+"/")
		if err != nil {
			t.Fatal(err)
		}
		ws, err := websocket.NewClient(cfg, c)
		return ws, c, err
	}
	t.Run("ws:// to an allowed host", func(t *testing.T) {
		ws, _, err := dialWS(t, "www.allowed.test")
		if err != nil {
			t.Fatalf("WebSocket handshake: %v", err)
		}
		for _, msg := range []string{"hello", "second message"} {
			if err := websocket.Message.Send(ws, msg); err != nil {
				t.Fatal(err)
			}
			var got string
			if err := websocket.Message.Receive(ws, &got); err != nil || got != msg {
				t.Fatalf("echo %q, %v", got, err)
			}
		}
		ws.Close()
		if l := e.logFor(t, "www.allowed.test", "CONNECT"); l.Verdict != "allow" || l.Rule != ruleIntercept || statusNum(l.Status) != 200 {
			t.Errorf("CONNECT log line %+v", l)
		}
		if got := seen.get("/ws"); len(got) != 1 || got[0].host != "www.allowed.test" {
			t.Fatalf("the upstream saw %+v", got)
		}
		l := e.logFor(t, "www.allowed.test", "GET")
		if l.URL != "http://www.allowed.test/ws" || l.Verdict != "allow" || statusNum(l.Status) != 101 {
			t.Errorf("log line %+v", l)
		}
	})
	t.Run("ws:// to a blocked host", func(t *testing.T) {
		_, c, err := dialWS(t, "www.casino.test")
		if err == nil {
			t.Fatal("WebSocket to a blocked host opened")
		}
		c.Close() // the tunnel ends: its CONNECT line is logged
		if got := seen.get("/ws"); len(got) > 1 {
			t.Fatalf("the upstream got the blocked WebSocket: %+v", got)
		}
		l := e.logFor(t, "www.casino.test", "GET")
		if l.URL != "http://www.casino.test/ws" || l.Verdict != "block" || l.Rule != "student#2" || statusNum(l.Status) != 403 {
			t.Errorf("log line %+v", l)
		}
		if l := e.logFor(t, "www.casino.test", "CONNECT"); l.Verdict != "allow" || l.Rule != ruleIntercept || statusNum(l.Status) != 200 {
			t.Errorf("CONNECT log line %+v", l)
		}
	})
	t.Run("each request in the tunnel decided on its own", func(t *testing.T) {
		st, c := rawConnect(t, addr, "www.allowed.test:80", "")
		if st != 200 {
			t.Fatalf("CONNECT: status %d", st)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
		br := bufio.NewReader(c)
		resp, body := exchange(t, c, br, "GET /first HTTP/1.1\r\nHost: www.allowed.test\r\n\r\n")
		if resp.StatusCode != 200 || body != "host www.allowed.test proto 1" {
			t.Fatalf("first request: %d %q", resp.StatusCode, body)
		}
		resp, body = exchange(t, c, br, "GET /second HTTP/1.1\r\nHost: www.casino.test\r\n\r\n")
		if resp.StatusCode != 421 || !strings.Contains(body, "host_mismatch") {
			t.Fatalf("second request, another Host: %d %q", resp.StatusCode, body)
		}
		resp, _ = exchange(t, c, br, "GET http://www.casino.test/third HTTP/1.1\r\nHost: www.allowed.test\r\n\r\n")
		if resp.StatusCode != 421 {
			t.Fatalf("absolute-form naming another host: %d", resp.StatusCode)
		}
		resp, body = exchange(t, c, br, "GET /forbidden/x HTTP/1.1\r\nHost: www.allowed.test:80\r\n\r\n")
		if resp.StatusCode != 403 || !strings.Contains(body, "adult") {
			t.Fatalf("blocked URL of the tunnel's host: %d %q", resp.StatusCode, body)
		}
		// A CONNECT inside would be a blind tunnel within the tunnel.
		resp, _ = exchange(t, c, br, "CONNECT www.allowed.test:80 HTTP/1.1\r\nHost: www.allowed.test:80\r\n\r\n")
		if resp.StatusCode != 400 {
			t.Fatalf("CONNECT inside the tunnel: %d", resp.StatusCode)
		}
		for _, p := range []string{"/second", "/third", "/forbidden/x"} {
			if got := seen.get(p); len(got) != 0 {
				t.Errorf("the upstream got %s: %+v", p, got)
			}
		}
		if l := e.logFor(t, "www.casino.test", "GET"); l.Rule != "host_mismatch" || statusNum(l.Status) != 421 {
			t.Errorf("log line %+v", l)
		}
	})
	t.Run("not HTTP: refused, not relayed", func(t *testing.T) {
		st, c := rawConnect(t, addr, "www.allowed.test:80", "")
		if st != 200 {
			t.Fatalf("CONNECT: status %d", st)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
		n := len(seen.get("/"))
		io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n\r\n") //nolint:errcheck
		b, _ := io.ReadAll(c)
		if !strings.HasPrefix(string(b), "HTTP/1.1 400") || len(seen.get("/")) != n {
			t.Fatalf("answer %q", b)
		}
	})
}

// With the school's CA configured, a blocked CONNECT (a host not listed
// under intercept) is accepted and terminated with a certificate from that
// CA, just to show the block page: the browser shows the page, not an
// error. Over HTTP/1.1 as Chromium's first connection does, and HTTP/2.
func TestBlockPageOverTLS(t *testing.T) {
	e := newEnv(t, envConfig{})
	addr, pool := interceptProxy(t, e, "domains: [allowed.test]")

	t.Run("Chromium-style: CONNECT, TLS with SNI, GET", func(t *testing.T) {
		c, err := connectTLS(t, addr, "www.casino.test:443", &tls.Config{RootCAs: pool, ServerName: "www.casino.test",
			NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatalf("handshake (verified against the school CA): %v", err)
		}
		resp, body := exchange(t, c, bufio.NewReader(c), "GET /page?x=1 HTTP/1.1\r\nHost: www.casino.test\r\n\r\n")
		if resp.StatusCode != 403 || !strings.Contains(body, "This page is blocked") || !strings.Contains(body, "gambling") ||
			!strings.Contains(body, "https://www.casino.test/page?x=1") {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		c.Close()
		l := e.logFor(t, "www.casino.test", "CONNECT")
		if l.Verdict != "block" || l.Rule != "student#2" || statusNum(l.Status) != 403 || l.URL != "https://www.casino.test/page?x=1" {
			t.Errorf("log line %+v", l)
		}
	})
	t.Run("HTTP/2 client", func(t *testing.T) {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			Proxy:             http.ProxyURL(&url.URL{Scheme: "http", Host: addr}),
			TLSClientConfig:   &tls.Config{RootCAs: pool},
			ForceAttemptHTTP2: true,
		}}
		defer c.CloseIdleConnections()
		resp, body := get(t, c, "https://casino.test/x")
		if resp.StatusCode != 403 || resp.ProtoMajor != 2 || !strings.Contains(body, "gambling") {
			t.Fatalf("%s %d %q", resp.Proto, resp.StatusCode, body)
		}
	})
	t.Run("a device without the CA: the handshake fails, the CONNECT is logged 403", func(t *testing.T) {
		_, err := connectTLS(t, addr, "www.casino.test:443", &tls.Config{ServerName: "www.casino.test"})
		if err == nil {
			t.Fatal("handshake succeeded without the school CA")
		}
		l := e.logFor(t, "www.casino.test", "CONNECT")
		if l.Verdict != "block" || l.Rule != "student#2" || statusNum(l.Status) != 403 || l.URL != "" {
			t.Errorf("log line %+v", l)
		}
	})
}

// HTTP/2 inside interception, to the browser and to the upstream; the
// :authority of each request must be the tunnel's host.
func TestInterceptHTTP2(t *testing.T) {
	e := newEnv(t, envConfig{})
	addr, pool, port, seen := interceptSeen(t, e, true)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy:             http.ProxyURL(&url.URL{Scheme: "http", Host: addr}),
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
	}}
	defer c.CloseIdleConnections()
	authority := "www.allowed.test:" + strconv.Itoa(port)

	for i := range 3 {
		resp, body := get(t, c, "https://"+authority+"/h2?n="+strconv.Itoa(i))
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
			t.Fatalf("to the browser: %s %d %q", resp.Proto, resp.StatusCode, body)
		}
		if body != "host "+authority+" proto 2" {
			t.Fatalf("the upstream answered %q, want HTTP/2 with Host %s", body, authority)
		}
	}
	if l := e.logFor(t, "www.allowed.test", "GET"); l.URL != "https://"+authority+"/h2?n=2" || statusNum(l.Status) != 200 {
		t.Errorf("log line %+v", l)
	}
	t.Run(":authority of another host", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "https://"+authority+"/fronted", nil)
		req.Host = "www.casino.test"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 421 || resp.ProtoMajor != 2 || !strings.Contains(string(b), "host_mismatch") {
			t.Fatalf("%s %d %q", resp.Proto, resp.StatusCode, b)
		}
		if got := seen.get("/fronted"); len(got) != 0 {
			t.Fatalf("the upstream got the fronted request: %+v", got)
		}
		if l := e.logFor(t, "www.casino.test", "GET"); l.Rule != "host_mismatch" || statusNum(l.Status) != 421 {
			t.Errorf("log line %+v", l)
		}
	})
}

// A tunnel to another port the school opened (connect_ports) that carries
// HTTP is read as HTTP, as on port 80, not relayed blind: each request is
// decided on its Host and path. Other protocols are still relayed.
func TestConnectOtherPortHTTP(t *testing.T) {
	e := newEnv(t, envConfig{})
	tcpAddr, tcpPort := tcpUpstream(t)
	upPort := e.up.Listener.Addr().(*net.TCPAddr).Port
	// Both ports opened by the school (a reload: the proxy reads
	// connect_ports from the snapshot).
	cfg := strings.Replace(readFile(t, e.cfgPath), "connect_ports: [", fmt.Sprintf("connect_ports: [%d, %d, ", upPort, tcpPort), 1)
	writeFile(t, e.cfgPath, cfg)
	e.engine.Swap(e.build())
	authority := "www.allowed.test:" + strconv.Itoa(upPort)

	st, c := rawConnect(t, e.addr, authority, "")
	if st != 200 {
		t.Fatalf("CONNECT: status %d", st)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	br := bufio.NewReader(c)
	resp, body := exchange(t, c, br, "GET /hello HTTP/1.1\r\nHost: "+authority+"\r\n\r\n")
	if resp.StatusCode != 200 || body != "hello from upstream" {
		t.Fatalf("allowed request: %d %q", resp.StatusCode, body)
	}
	resp, body = exchange(t, c, br, "GET /hello HTTP/1.1\r\nHost: www.casino.test\r\n\r\n")
	if resp.StatusCode != 421 || !strings.Contains(body, "host_mismatch") {
		t.Fatalf("another Host: %d %q", resp.StatusCode, body)
	}
	resp, body = exchange(t, c, br, "GET /forbidden/x HTTP/1.1\r\nHost: "+authority+"\r\n\r\n")
	if resp.StatusCode != 403 || !strings.Contains(body, "adult") {
		t.Fatalf("blocked URL: %d %q", resp.StatusCode, body)
	}
	if l := e.logFor(t, "www.casino.test", "GET"); l.Rule != "host_mismatch" || statusNum(l.Status) != 421 {
		t.Errorf("log line %+v", l)
	}

	t.Run("another protocol is relayed", func(t *testing.T) {
		st, c := rawConnect(t, e.addr, tcpAddr, "")
		if st != 200 {
			t.Fatalf("CONNECT: status %d", st)
		}
		defer c.Close()
		io.WriteString(c, "NICK pupil\r\nUSER a b c d\r\n") //nolint:errcheck
		c.(*net.TCPConn).CloseWrite()                       //nolint:errcheck
		c.SetReadDeadline(time.Now().Add(5 * time.Second))  //nolint:errcheck
		if b, _ := io.ReadAll(c); string(b) != "got 26 bytes" {
			t.Fatalf("the upstream answered %q", b)
		}
	})
}

// A stalled upload on one HTTP/2 stream of an intercepted tunnel is cut
// after BodyIdleTimeout (the stream's own read deadline), and logged as
// the client gone; the connection's other streams keep working.
func TestInterceptHTTP2StalledBody(t *testing.T) {
	e := newEnv(t, envConfig{opts: func(o *Options) { o.BodyIdleTimeout = 300 * time.Millisecond }})
	addr, pool, port, _ := interceptSeen(t, e, true)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy:             http.ProxyURL(&url.URL{Scheme: "http", Host: addr}),
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
	}}
	defer c.CloseIdleConnections()
	base := "https://www.allowed.test:" + strconv.Itoa(port)
	if resp, _ := get(t, c, base+"/first"); resp.ProtoMajor != 2 {
		t.Fatalf("not HTTP/2: %s", resp.Proto)
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("A")) //nolint:errcheck // then nothing more
	start := time.Now()
	resp, err := c.Post(base+"/upload", "text/plain", pr)
	if err == nil {
		resp.Body.Close()
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("stalled upload answered after %v (%v), want about BodyIdleTimeout", took, err)
	}
	if resp, body := get(t, c, base+"/after"); resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("the connection's next stream: %s %d %q", resp.Proto, resp.StatusCode, body)
	}
	e.findLog(t, "the stalled upload", func(l logLine) bool {
		return l.Method == "POST" && l.URL == base+"/upload" && statusNum(l.Status) == statusClientGone
	})
}
