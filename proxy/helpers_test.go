package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/identity"
	"github.com/schoolgate/schoolgate/internal/testenv"
	"github.com/schoolgate/schoolgate/logging"
	"github.com/schoolgate/schoolgate/policy"
)

// upstreamIP is where the test upstreams listen: a loopback address that
// is not in the test config's deny_destinations (127.0.0.1 is).
const upstreamIP = "127.0.0.2"

// testDNS answers A queries for *.test: loop.test → 127.0.0.1 (denied),
// meta.test → 169.254.169.254 (denied), nx.test → NXDOMAIN, every other
// name → upstreamIP.
func testDNS(t testing.TB) *net.Resolver {
	t.Helper()
	return testDNSTo(t, upstreamIP)
}

// testDNSTo is testDNS with every other name answered with upIP.
func testDNSTo(t testing.TB, upIP string) *net.Resolver {
	t.Helper()
	return testDNSWith(t, map[string]string{"loop.test": "127.0.0.1", "meta.test": "169.254.169.254"}, upIP)
}

// testDNSWith is a resolver that asks serveTestDNS(addrs, upIP).
func testDNSWith(t testing.TB, addrs map[string]string, upIP string) *net.Resolver {
	t.Helper()
	addr := serveTestDNS(t, addrs, upIP)
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

// serveTestDNS serves DNS on a loopback UDP port and returns its address:
// it answers A queries for the names of addrs (name → IPv4 address, no
// trailing dot) and for *.test (upIP); nx.test and every other name are
// NXDOMAIN.
func serveTestDNS(t testing.TB, addrs map[string]string, upIP string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		name := strings.ToLower(q.Question[0].Name)
		ip, ok := addrs[strings.TrimSuffix(name, ".")]
		switch {
		case !ok && (name == "nx.test." || !strings.HasSuffix(name, ".test.")):
			m.Rcode = dns.RcodeNameError
		case q.Question[0].Qtype == dns.TypeA:
			if !ok {
				ip = upIP
			}
			rr, _ := dns.NewRR(name + " 60 IN A " + ip)
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m) //nolint:errcheck
	})}
	go srv.ActivateAndServe()            //nolint:errcheck
	t.Cleanup(func() { srv.Shutdown() }) //nolint:errcheck
	return pc.LocalAddr().String()
}

type envConfig struct {
	requireAuth bool
	clients     string // YAML list items
	extraPorts  []int
	opts        func(*Options)
	edit        func(cfg string) string // changes the config's YAML before it is written
}

type env struct {
	t        testing.TB
	dir      string
	cfgPath  string
	p        *Proxy
	addr     string
	engine   *policy.Engine
	alog     *logging.Writer
	reg      *prometheus.Registry
	tlsUp    *httptest.Server
	tlsPort  int
	up       *httptest.Server
	upURL    string // http://127.0.0.2:port
	roots    *x509.CertPool
	lastSeen sync.Map // path → request headers seen by the upstream
	ids      *identity.Table
}

const testUsers = "user,profile,password_hash\n"

func hashPw(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func listenUpstream(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", upstreamIP+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", upstreamIP, err)
	}
	return ln
}

// upstreamHandler serves the test upstream's paths.
func (e *env) upstreamHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		e.lastSeen.Store("/hello", r.Header.Clone())
		io.WriteString(w, "hello from upstream") //nolint:errcheck
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
		io.WriteString(w, "slow") //nolint:errcheck
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		io.Copy(w, io.LimitReader(newPattern(), int64(n))) //nolint:errcheck
	})
	mux.HandleFunc("/sum", func(w http.ResponseWriter, r *http.Request) {
		e.lastSeen.Store("/sum", r.Header.Clone())
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d %s", n, hex.EncodeToString(h.Sum(nil)))
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want upgrade", 400)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: test\r\n\r\n") //nolint:errcheck
		brw.Flush()                                                                                                                            //nolint:errcheck
		// Echo raw bytes back, upper-cased, until the client closes.
		buf := make([]byte, 4096)
		for {
			n, err := brw.Read(buf)
			if n > 0 {
				c.Write([]byte(strings.ToUpper(string(buf[:n])))) //nolint:errcheck
			}
			if err != nil {
				return
			}
		}
	})
	return mux
}

// pattern is an endless deterministic byte stream.
type pattern struct{ i byte }

func newPattern() *pattern { return &pattern{} }
func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = p.i*7 + 3
		p.i++
	}
	return len(b), nil
}

func newEnv(t testing.TB, ec envConfig) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	e.up = httptest.NewUnstartedServer(e.upstreamHandler())
	e.up.Listener = listenUpstream(t)
	e.up.Start()
	t.Cleanup(e.up.Close)
	e.upURL = e.up.URL
	e.tlsUp = httptest.NewUnstartedServer(e.upstreamHandler())
	e.tlsUp.Listener = listenUpstream(t)
	e.tlsUp.StartTLS()
	t.Cleanup(e.tlsUp.Close)
	e.tlsPort = e.tlsUp.Listener.Addr().(*net.TCPAddr).Port
	e.roots = x509.NewCertPool()
	e.roots.AddCert(e.tlsUp.Certificate())

	users := testUsers + "alice,student," + hashPw(t, "alicepw") + "\nbob,staff," + hashPw(t, "bobpw") + "\n"
	if err := os.WriteFile(filepath.Join(e.dir, "users.csv"), []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	ports := []string{"443", strconv.Itoa(e.tlsPort)}
	for _, p := range ec.extraPorts {
		ports = append(ports, strconv.Itoa(p))
	}
	clients := ec.clients
	if clients == "" {
		clients = "  - 127.0.0.0/8\n"
	}
	cfg := fmt.Sprintf(`timezone: UTC
listen: {proxy: "", dns: "", admin: ""}
clients:
%sproxy:
  connect_ports: [%s]
  deny_destinations: [127.0.0.1/32, 169.254.0.0/16, "::1/128"]
  block_page: {organisation: "Test School", contact: "the IT office, room 12"}
users: {file: users.csv, require_auth: %v}
default_profile: student
lists:
  - category: gambling
    domains: [casino.test]
  - category: education
    domains: [school.test]
  - category: adult
    urls: [allowed.test/forbidden]
profiles:
  student:
    rules:
      - action: allow
        categories: [education]
      - action: block
        categories: [adult, gambling]
    default: allow
  staff:
    rules:
      - action: block
        categories: [adult]
    default: allow
log: {dir: logs, retention_days: 0}
cache: {verdicts: 1000, dns: 100}
`, clients, strings.Join(ports, ", "), ec.requireAuth)
	if ec.edit != nil {
		cfg = ec.edit(cfg)
	}
	e.cfgPath = filepath.Join(e.dir, "schoolgate.yaml")
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	snap := e.build()
	e.reg = prometheus.NewRegistry()
	e.engine = policy.NewEngine(snap, 1000, e.reg)
	var err error
	e.alog, err = logging.Open(logging.Options{Dir: filepath.Join(e.dir, "logs"), Location: time.UTC, Registerer: e.reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.alog.Close() }) //nolint:errcheck
	e.ids = mustIdentity(t)
	o := Options{
		Engine: e.engine, Log: e.alog, Identity: e.ids, Registerer: e.reg,
		RootCAs: e.roots, Resolver: testDNS(t), AdminAddr: "127.0.0.1:9",
		ResponseHeaderTimeout: 500 * time.Millisecond, DialTimeout: 2 * time.Second,
		HelloTimeout: 2 * time.Second, TunnelIdleTimeout: 5 * time.Second,
	}
	if ec.opts != nil {
		ec.opts(&o)
	}
	e.p, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- e.p.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.p.Shutdown(ctx) //nolint:errcheck
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return e
}

func (e *env) build() *policy.Snapshot {
	e.t.Helper()
	cfg, err := config.Load(e.cfgPath)
	if err != nil {
		e.t.Fatalf("config: %v", err)
	}
	snap, err := policy.Build(cfg)
	if err != nil {
		e.t.Fatalf("policy: %v", err)
	}
	return snap
}

// client returns an HTTP client using the proxy with the given
// credentials ("" for none).
func (e *env) client(user, pass string) *http.Client {
	u := &url.URL{Scheme: "http", Host: e.addr}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:             http.ProxyURL(u),
			TLSClientConfig:   &tls.Config{RootCAs: e.roots, ServerName: "example.com"},
			DisableKeepAlives: false,
		},
		Timeout: 20 * time.Second,
	}
}

// logLine is an access-log line as the tests read it: the fields `logs
// search` reads (logging.Line), and two that only these tests look at.
type logLine struct {
	logging.Line
	SafeSearch bool   `json:"safe_search"`
	Auth       string `json:"auth"`
	Mode       string `json:"mode"`
}

// logLines flushes the access log and returns today's lines.
func (e *env) logLines(t *testing.T) []logLine {
	t.Helper()
	// Lines are logged when a request ends, which can be just after the
	// client has read the answer.
	time.Sleep(50 * time.Millisecond)
	if err := e.alog.Flush(); err != nil {
		t.Fatal(err)
	}
	return testenv.ReadJSONLines[logLine](t, logging.PathFor(filepath.Join(e.dir, "logs"), time.Now().UTC()))
}

// lastLog returns the last access-log line for host.
func (e *env) lastLog(t *testing.T, host string) logLine {
	t.Helper()
	return e.waitLog(t, "host "+host, func(l *logLine) bool { return l.Host == host })
}

// waitLog returns the last access-log line that match takes, waiting for
// it a while (a line is written as its request ends); what names it in
// the failure.
func (e *env) waitLog(t *testing.T, what string, match func(*logLine) bool) logLine {
	t.Helper()
	for range 100 {
		ls := e.logLines(t)
		for j := len(ls) - 1; j >= 0; j-- {
			if match(&ls[j]) {
				return ls[j]
			}
		}
	}
	t.Fatalf("no access-log line for %s", what)
	return logLine{}
}

func statusNum(v any) int {
	switch x := v.(type) {
	case float64:
		return int(x)
	case string:
		n, _ := strconv.Atoi(x)
		return n
	}
	return -1
}

func writeFile(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func configBlockPage(org, contact string) config.BlockPage {
	return config.BlockPage{Organisation: org, Contact: contact}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type url2 struct{ host, user, pass string }

func (u *url2) url() *url.URL {
	return &url.URL{Scheme: "http", Host: u.host, User: url.UserPassword(u.user, u.pass)}
}

// startProxy serves a second proxy with options o (a test's own CA, say)
// on a free loopback port until the test ends, and returns its address.
func startProxy(t testing.TB, o Options) string {
	t.Helper()
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(ln) //nolint:errcheck
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx) //nolint:errcheck
	})
	return ln.Addr().String()
}

// mustIdentity returns an in-memory identity table, closed at cleanup.
func mustIdentity(t testing.TB) *identity.Table {
	t.Helper()
	ids, err := identity.New(identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ids.Close)
	return ids
}
