package portal

import (
	"context"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/identity"
	"github.com/schoolgate/schoolgate/internal/testenv"
	"github.com/schoolgate/schoolgate/logging"
	"github.com/schoolgate/schoolgate/policy"
	"github.com/schoolgate/schoolgate/proxy"
)

// env is a portal wired to a real policy engine, identity table, proxy
// (whose Authenticate checks the users file) and access log.
type env struct {
	t         *testing.T
	dir       string
	engine    *policy.Engine
	ids       *identity.Table
	portal    *Server
	prox      *proxy.Proxy
	reg       *prometheus.Registry
	alog      *logging.Writer
	srv       *httptest.Server // the portal's handler on loopback, plain HTTP
	proxyAddr string           // the proxy, serving on loopback
	origin    *httptest.Server // an origin server the proxy may reach (/page)
	originTLS *httptest.Server // the same in TLS

	mu      sync.Mutex
	clock   time.Time // zero: the real time
	entries []logging.Entry
}

const (
	alicePass  = "correct horse"
	portalYAML = `
portal:
  listen: 127.0.0.1:0
  hostname: 127.0.0.1
  networks: [127.0.0.0/8]
  idle_minutes: 30
`
)

// newEnv starts the portal with extra appended to a base config (users
// alice (staff) and bob (no profile of his own); clients loopback).
func newEnv(t *testing.T, extra string) *env {
	t.Helper()
	return newEnvWith(t, extra, nil)
}

// newEnvWith is newEnv with prep run on the config's folder first (to
// write files the config names).
func newEnvWith(t *testing.T, extra string, prep func(dir string)) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), reg: prometheus.NewRegistry()}
	if prep != nil {
		prep(e.dir)
	}
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<!DOCTYPE html><title>The page</title><p id=page>the page itself</p>") //nolint:errcheck
	})
	e.origin = httptest.NewServer(page)
	t.Cleanup(e.origin.Close)
	e.originTLS = httptest.NewTLSServer(page)
	t.Cleanup(e.originTLS.Close)
	roots := x509.NewCertPool()
	roots.AddCert(e.originTLS.Certificate())
	h, err := bcrypt.GenerateFromPassword([]byte(alicePass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := "user,profile,password_hash\nalice,staff," + string(h) + "\nbob,student," + string(h) + "\n"
	if err := os.WriteFile(filepath.Join(e.dir, "users.csv"), []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	e.engine = policy.NewEngine(e.snapshotOf(t, extra), 1000, nil)
	if e.ids, err = identity.New(identity.Options{Path: filepath.Join(e.dir, "state", identity.FileName), Now: e.now}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.ids.Close)
	if e.alog, err = logging.Open(logging.Options{Dir: filepath.Join(e.dir, "logs"), Location: time.UTC,
		OnEntry: func(le *logging.Entry) { e.mu.Lock(); e.entries = append(e.entries, *le); e.mu.Unlock() }}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.alog.Close() })
	// The portal checks passwords with the proxy, which hands it the
	// requests for its host, as serve wires them.
	if e.portal, err = New(Options{Engine: e.engine, Identity: e.ids, Log: e.alog, Registerer: e.reg, Now: e.now,
		Authenticate: func(ctx context.Context, ip netip.Addr, user, pass string) (string, error) {
			return e.prox.Authenticate(ctx, ip, user, pass)
		}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.portal.Shutdown(context.Background()) }) //nolint:errcheck
	if e.prox, err = proxy.New(proxy.Options{Engine: e.engine, Identity: e.ids, Log: e.alog, Portal: e.portal, Now: e.now,
		RootCAs: roots}); err != nil {
		t.Fatal(err)
	}
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.proxyAddr = pln.Addr().String()
	go e.prox.Serve(pln)                                        //nolint:errcheck
	t.Cleanup(func() { e.prox.Shutdown(context.Background()) }) //nolint:errcheck
	e.srv = httptest.NewServer(e.portal)
	t.Cleanup(e.srv.Close)
	// The portal's links name the port it is reached on.
	_, port, _ := net.SplitHostPort(e.srv.Listener.Addr().String())
	n, _ := strconv.Atoi(port)
	e.portal.port.Store(int32(n))
	return e
}

// snapshotOf writes the base config with extra appended and builds its
// policy snapshot (clients loopback, unless extra names clients).
func (e *env) snapshotOf(t *testing.T, extra string) *policy.Snapshot {
	t.Helper()
	clients := "clients: [127.0.0.0/8]\n"
	if strings.Contains(extra, "\nclients:") {
		clients = "" // extra names its own
	}
	cfgText := `timezone: Europe/London
listen: {proxy: "127.0.0.1:0", dns: "", admin: ""}
` + clients + `networks:
  127.0.0.0/8: student
default_profile: student
profiles:
  student: {default: allow}
  staff: {default: allow}
` + extra
	if !strings.Contains(extra, "\nusers:") {
		cfgText += "users: {file: users.csv}\n"
	}
	path := filepath.Join(e.dir, "schoolgate.yaml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := policy.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func (e *env) now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.clock.IsZero() {
		return time.Now()
	}
	return e.clock
}

func (e *env) setClock(t time.Time) {
	e.mu.Lock()
	e.clock = t
	e.mu.Unlock()
}

// logged returns the access-log entries written so far.
func (e *env) logged() []logging.Entry {
	e.t.Helper()
	if err := e.alog.Flush(); err != nil {
		e.t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // OnEntry runs within about 50 ms
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]logging.Entry(nil), e.entries...)
}

// browser is an HTTP client with a cookie jar that does not follow redirects.
type browser struct {
	t      *testing.T
	c      *http.Client
	origin string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, origin: e.srv.URL, c: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var tokenRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// get loads path and returns the status, body and the form token on it.
func (b *browser) get(path string) (int, string, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.origin + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	tok := ""
	if m := tokenRE.FindStringSubmatch(string(body)); m != nil {
		tok = m[1]
	}
	return resp.StatusCode, string(body), tok
}

// post sends form to path with the given headers (Origin defaults to
// the portal's own; "-" sends none).
func (b *browser) post(path string, form url.Values, origin string) *http.Response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.origin+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	switch origin {
	case "":
		req.Header.Set("Origin", b.origin)
	case "-":
	default:
		req.Header.Set("Origin", origin)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func counter(t *testing.T, e *env, result string) float64 {
	t.Helper()
	return testenv.MetricValue(e.portal.m.signin.WithLabelValues(result))
}

// writeCA writes a school CA as dir/ca.pem and dir/ca.key.
func writeCA(t *testing.T, dir string) *x509.Certificate {
	t.Helper()
	ca, _ := testenv.WriteCA(t, filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key"), "Test School CA")
	return ca
}

func signouts(e *env) float64 { return testenv.MetricValue(e.portal.m.signouts) }

// readAll reads c into buf until EOF, an error or buf is full.
func readAll(c net.Conn, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
