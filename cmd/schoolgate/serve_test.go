package main

// End-to-end tests of `schoolgate serve`: the built binary, a temp config,
// real upstream servers on 127.0.0.2, real curl where installed.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/internal/testenv"
	"golang.org/x/crypto/bcrypt"
)

const e2eUpstreamIP = "127.0.0.2"

// e2eBinary builds schoolgate into the test's temp dir (the build cache
// makes the second and later builds a link step).
func e2eBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "schoolgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func e2eFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type e2eServer struct {
	t        *testing.T
	dir      string
	cfgPath  string
	proxy    string
	admin    string
	cmd      *exec.Cmd
	stderr   *e2eBuffer
	exited   chan error
	up       *httptest.Server
	tlsUp    *httptest.Server
	mux      *http.ServeMux // both upstreams' handlers
	roots    *x509.CertPool
	certFile string

	// Extra YAML lines under proxy: and under the student profile (each
	// line indented for its place), for tests that need more settings.
	proxyExtra, studentExtra string
	// listsExtra are more entries under lists:, topExtra more top-level keys.
	listsExtra, topExtra string
	// usersExtra are more keys of users: (flow style, from ", "),
	// profilesExtra more profiles.
	usersExtra, profilesExtra string
	// wrap runs serve under a command (prlimit ...) that execs it.
	wrap []string
}

// e2eConfig is the test config; extraGambling adds domains to the
// gambling list (to see a reload take effect).
func (s *e2eServer) writeConfig(extraGambling string) {
	s.t.Helper()
	tlsPort := s.tlsUp.Listener.Addr().(*net.TCPAddr).Port
	cfg := fmt.Sprintf(`timezone: UTC
listen: {proxy: %q, dns: "", admin: %q}
clients: [127.0.0.0/8]
proxy:
  connect_ports: [443, %d]
  deny_destinations: [127.0.0.1/32, 169.254.0.0/16, "::1/128"]
  block_page: {organisation: "E2E School", contact: "the IT office"}
%susers: {file: users.csv, require_auth: true%s}
default_profile: student
lists:
  - category: gambling
    domains: [casino.test%s]
%sprofiles:
  student:
    rules:
      - action: block
        categories: [gambling]
    default: allow
%s%slog: {dir: logs, retention_days: 0}
cache: {verdicts: 1000, dns: 100}
%s`, s.proxy, s.admin, tlsPort, s.proxyExtra, s.usersExtra, extraGambling, s.listsExtra, s.studentExtra, s.profilesExtra, s.topExtra)
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// e2eBuffer is a bytes.Buffer safe for the writer (exec's copying
// goroutine) and the test reading it.
type e2eBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *e2eBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *e2eBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func e2eUpstreamListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", e2eUpstreamIP+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", e2eUpstreamIP, err)
	}
	return ln
}

func startE2E(t *testing.T) *e2eServer {
	t.Helper()
	return startE2EWith(t, nil)
}

// startE2EWith is startE2E with setup called before the config is
// written (files in s.dir, s.proxyExtra, s.studentExtra).
func startE2EWith(t *testing.T, setup func(*e2eServer)) *e2eServer {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	bin := e2eBinary(t)
	s := &e2eServer{t: t, dir: t.TempDir(), proxy: e2eFreeAddr(t), admin: e2eFreeAddr(t), stderr: new(e2eBuffer)}
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") }) //nolint:errcheck
	mux.HandleFunc("/slow", func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(1500 * time.Millisecond)
		io.WriteString(w, "slow done") //nolint:errcheck
	})
	s.mux = mux
	s.up = httptest.NewUnstartedServer(mux)
	s.up.Listener = e2eUpstreamListener(t)
	s.up.Start()
	t.Cleanup(s.up.Close)
	s.tlsUp = httptest.NewUnstartedServer(mux)
	s.tlsUp.Listener = e2eUpstreamListener(t)
	s.tlsUp.StartTLS()
	t.Cleanup(s.tlsUp.Close)
	s.roots = x509.NewCertPool()
	s.roots.AddCert(s.tlsUp.Certificate())
	s.certFile = filepath.Join(s.dir, "upstream.pem")
	os.WriteFile(s.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.tlsUp.Certificate().Raw}), 0o600) //nolint:errcheck

	h, err := bcrypt.GenerateFromPassword([]byte("alicepw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "users.csv"), []byte("user,profile,password_hash\nalice,student,"+string(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cfgPath = filepath.Join(s.dir, "schoolgate.yaml")
	if setup != nil {
		setup(s)
	}
	s.writeConfig("")

	s.cmd = exec.Command(bin, "serve", "-config", s.cfgPath)
	if len(s.wrap) > 0 {
		s.cmd = exec.Command(s.wrap[0], append(s.wrap[1:], bin, "serve", "-config", s.cfgPath)...)
	}
	s.cmd.Stderr = s.stderr
	s.cmd.Stdout = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.exited = make(chan error, 1)
	go func() { s.exited <- s.cmd.Wait() }()
	t.Cleanup(func() {
		s.cmd.Process.Kill() //nolint:errcheck
		<-s.exitedOr(time.Second)
		if t.Failed() {
			t.Logf("schoolgate stderr:\n%s", s.stderr.String())
		}
	})
	waitServing(t, s.admin, s.exited, s.stderr)
	return s
}

func (s *e2eServer) exitedOr(d time.Duration) <-chan error {
	ch := make(chan error, 1)
	go func() {
		select {
		case err := <-s.exited:
			s.exited <- err
			ch <- err
		case <-time.After(d):
			ch <- fmt.Errorf("still running after %v", d)
		}
	}()
	return ch
}

func (s *e2eServer) client(user, pass string) *http.Client {
	u := &url.URL{Scheme: "http", Host: s.proxy}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		Proxy:               http.ProxyURL(u),
		TLSClientConfig:     &tls.Config{RootCAs: s.roots, ServerName: "example.com"},
		MaxIdleConnsPerHost: 16,
	}}
}

type e2eLogLine struct {
	Src, User, IP, Profile, Method, Host, URL, Verdict, Rule string
	Categories                                               []string
	Status                                                   json.Number
	Bytes                                                    int64
	Seq                                                      int64
	Hash                                                     string
}

// logLines reads today's access log (UTC: the config's timezone).
func (s *e2eServer) logLines(t *testing.T) []e2eLogLine {
	t.Helper()
	return testenv.ReadJSONLines[e2eLogLine](t, filepath.Join(s.dir, "logs", "access-"+time.Now().UTC().Format("2006-01-02")+".jsonl"))
}

// waitLog waits (the writer flushes every second) for a line matching ok.
func (s *e2eServer) waitLog(t *testing.T, what string, ok func(e2eLogLine) bool) e2eLogLine {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, l := range s.logLines(t) {
			if ok(l) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access-log line: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestServeEndToEnd(t *testing.T) {
	s := startE2E(t)
	up := s.up.URL
	tlsTarget := "https://" + s.tlsUp.Listener.Addr().String()

	t.Run("curl", func(t *testing.T) {
		curl, err := exec.LookPath("curl")
		if err != nil {
			t.Skip("curl not installed")
		}
		for _, c := range []struct {
			name   string
			args   []string
			want   string // the status curl reports, or its exit code as "exit N"
			inBody string
		}{
			{"allowed", []string{"-x", "http://alice:alicepw@" + s.proxy, up + "/hello"}, "200", "hello"},
			{"blocked", []string{"-x", "http://alice:alicepw@" + s.proxy, "http://www.casino.test/"}, "403", "gambling"},
			{"no credentials", []string{"-x", "http://" + s.proxy, up + "/hello"}, "407", "Sign-in"},
			{"wrong password", []string{"-x", "http://alice:nope@" + s.proxy, up + "/hello"}, "407", ""},
			{"CONNECT allowed", []string{"-x", "http://alice:alicepw@" + s.proxy, "--cacert", s.certFile,
				"--connect-to", "example.com:" + strconv.Itoa(s.tlsUp.Listener.Addr().(*net.TCPAddr).Port) + ":" + s.tlsUp.Listener.Addr().String(),
				"https://example.com:" + strconv.Itoa(s.tlsUp.Listener.Addr().(*net.TCPAddr).Port) + "/hello"}, "200", "hello"},
			{"CONNECT blocked", []string{"-x", "http://alice:alicepw@" + s.proxy, "https://casino.test/"}, "exit 56", ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				args := append([]string{"-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"}, c.args...)
				out, err := exec.Command(curl, args...).Output()
				got := string(out)
				if strings.HasPrefix(c.want, "exit ") {
					ee, ok := err.(*exec.ExitError)
					if !ok || "exit "+strconv.Itoa(ee.ExitCode()) != c.want {
						t.Fatalf("curl: %v, output %q", err, out)
					}
					return
				}
				if err != nil {
					t.Fatalf("curl: %v, output %q", err, out)
				}
				i := strings.LastIndexByte(got, '\n')
				if got[i+1:] != c.want || !strings.Contains(got[:i], c.inBody) {
					t.Fatalf("curl got %q", got)
				}
			})
		}
		s.waitLog(t, "curl's blocked request", func(l e2eLogLine) bool {
			return l.Host == "www.casino.test" && l.Verdict == "block" && l.Rule == "student#1" &&
				l.Status == "403" && l.User == "alice" && l.Method == "GET" && l.URL == "http://www.casino.test/"
		})
		s.waitLog(t, "curl's CONNECT via connect-to", func(l e2eLogLine) bool {
			// curl sends the CONNECT to the --connect-to address; the
			// ClientHello names example.com.
			return l.Host == e2eUpstreamIP && l.Method == "CONNECT" && l.Verdict == "allow" && l.Status == "200" && l.Bytes > 0
		})
		s.waitLog(t, "curl's blocked CONNECT", func(l e2eLogLine) bool {
			return l.Host == "casino.test" && l.Method == "CONNECT" && l.Status == "403" && l.URL == ""
		})
		s.waitLog(t, "the 407", func(l e2eLogLine) bool { return l.Status == "407" && l.Rule == "proxy_auth" })
	})

	t.Run("Go client through a tunnel", func(t *testing.T) {
		resp, err := s.client("alice", "alicepw").Get(tlsTarget + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "hello" {
			t.Fatalf("%d %q", resp.StatusCode, b)
		}
	})

	t.Run("deny_destinations by name", func(t *testing.T) {
		resp, err := s.client("alice", "alicepw").Get("http://localhost:" + strconv.Itoa(s.up.Listener.Addr().(*net.TCPAddr).Port) + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		s.waitLog(t, "deny_destinations", func(l e2eLogLine) bool { return l.Host == "localhost" && l.Rule == "deny_destinations" })
	})

	t.Run("admin", func(t *testing.T) {
		resp, err := http.Get("http://" + s.admin + "/proxy.pac")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), `"PROXY `+s.proxy+`"`) {
			t.Fatalf("PAC:\n%s", b)
		}
		resp, err = http.Get("http://" + s.admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{
			`schoolgate_proxy_requests_total{profile="student",verdict="block"}`,
			`schoolgate_proxy_blocked_by_category_total{category="gambling"}`,
			"schoolgate_proxy_auth_failures_total 2",
			"schoolgate_proxy_request_duration_seconds_bucket",
			`schoolgate_proxy_upstream_errors_total{kind="denied"} 1`,
		} {
			if !strings.Contains(string(metrics), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		for _, bad := range []string{"alice", "casino", "127.0.0.2"} {
			if strings.Contains(string(metrics), bad) {
				t.Errorf("metrics name %q", bad)
			}
		}
		// docs/contract.md §5: every series is prefixed schoolgate_, the Go
		// runtime's and the process's too.
		for _, line := range strings.Split(string(metrics), "\n") {
			if line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "schoolgate_") {
				t.Errorf("series without the schoolgate_ prefix: %.80s", line)
			}
		}
		if !strings.Contains(string(metrics), "schoolgate_go_goroutines ") {
			t.Error("metrics lack schoolgate_go_goroutines")
		}
		promtool, err := exec.LookPath("promtool")
		if err != nil {
			t.Skip("promtool not installed")
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(metrics)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool check metrics: %v\n%s", err, out)
		}
	})
}

func TestServeReloadUnderLoad(t *testing.T) {
	s := startE2E(t)
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := s.client("alice", "alicepw")
			for ctx.Err() == nil {
				resp, err := c.Get(s.up.URL + "/hello")
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body) //nolint:errcheck
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, resp.Status)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	for i := range 3 {
		s.writeConfig(fmt.Sprintf(", reload%d.test", i))
		if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(400 * time.Millisecond)
	}
	// A broken config is refused; the old one keeps serving.
	if err := os.WriteFile(s.cfgPath, []byte("timezone: [broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cmd.Process.Signal(syscall.SIGHUP) //nolint:errcheck
	time.Sleep(400 * time.Millisecond)
	cancel()
	wg.Wait()
	if failed.Load() != 0 || ok.Load() < 10 {
		t.Fatalf("%d requests failed (first: %v), %d succeeded", failed.Load(), firstErr.Load(), ok.Load())
	}
	t.Logf("%d requests during 4 reloads, none failed", ok.Load())
	// The last good reload is in force: reload2.test is blocked.
	resp, err := s.client("alice", "alicepw").Get("http://reload2.test/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("reload2.test: %d, want 403 after the reload", resp.StatusCode)
	}
	if !strings.Contains(s.stderr.String(), "reload refused") {
		t.Errorf("no refusal message for the broken config:\n%s", s.stderr.String())
	}
}

func TestServeGracefulStop(t *testing.T) {
	s := startE2E(t)
	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := s.client("alice", "alicepw").Get(s.up.URL + "/slow")
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, string(b), err}
	}()
	time.Sleep(400 * time.Millisecond)
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.status != 200 || r.body != "slow done" {
		t.Fatalf("in-flight request: %d %q %v", r.status, r.body, r.err)
	}
	if err := <-s.exitedOr(10 * time.Second); err != nil {
		t.Fatalf("exit: %v\n%s", err, s.stderr.String())
	}
	// The log was flushed on the way out: the slow request's line is there.
	found := false
	for _, l := range s.logLines(t) {
		if strings.HasSuffix(l.URL, "/slow") && l.Status == "200" && l.Bytes == int64(len("slow done")) {
			found = true
		}
	}
	if !found {
		t.Fatal("the in-flight request's access-log line is missing after the stop")
	}
	// New connections are refused after the stop.
	if c, err := net.DialTimeout("tcp", s.proxy, time.Second); err == nil {
		c.Close()
		t.Fatal("proxy still accepting after exit")
	}
}

// waitServing waits until the serve started as a test's subprocess answers
// /healthz on adminAddr and has said "serving" (its signals are handled
// then too), or fails the test when it exits or takes over 20 s.
func waitServing(t *testing.T, adminAddr string, exited chan error, stderr *e2eBuffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + adminAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(stderr.String(), `"msg":"serving"`) {
				return
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("schoolgate exited at start: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("schoolgate not serving after 20s:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// e2eEcho is a TCP echo server on the upstream address until the test
// ends (a tunnel's far end); it returns its port.
func e2eEcho(t *testing.T) int {
	t.Helper()
	ln := e2eUpstreamListener(t)
	testenv.ServeConns(t, ln, func(c net.Conn) { io.Copy(c, c) }) //nolint:errcheck
	return ln.Addr().(*net.TCPAddr).Port
}
