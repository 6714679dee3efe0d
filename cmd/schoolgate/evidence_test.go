package main

// End-to-end tests of the access log as evidence (issue 19): a real
// `schoolgate serve` process, stopped gracefully, on a full disk, or killed.

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/internal/testenv"
	"golang.org/x/crypto/bcrypt"
)

// evidenceServer is one run of the binary on a config in dir.
type evidenceServer struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *e2eBuffer
	exited chan error
}

// evidenceConfig writes a config without sign-in (every request is the
// client's address) and returns its path; extra is appended as is.
func evidenceConfig(t *testing.T, dir, proxyAddr, adminAddr, extra string, connectPorts ...int) string {
	t.Helper()
	cfg := fmt.Sprintf(`timezone: UTC
listen: {proxy: %q, dns: "", admin: %q}
clients: [127.0.0.0/8]
proxy:
  connect_ports: %s
  deny_destinations: [169.254.0.0/16]
default_profile: student
lists:
  - category: gambling
    domains: [casino.test]
profiles:
  student:
    rules:
      - action: block
        categories: [gambling]
    default: allow
log: {dir: logs, retention_days: 0}
%s`, proxyAddr, adminAddr, portList(connectPorts), extra)
	path := filepath.Join(dir, "schoolgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func portList(ports []int) string {
	s := "[443"
	for _, p := range ports {
		s += ", " + strconv.Itoa(p)
	}
	return s + "]"
}

func startEvidence(t *testing.T, bin, cfgPath, adminAddr string) *evidenceServer {
	t.Helper()
	s := &evidenceServer{t: t, stderr: new(e2eBuffer), exited: make(chan error, 1)}
	s.cmd = exec.Command(bin, "serve", "-config", cfgPath)
	s.cmd.Stderr = s.stderr
	s.cmd.Stdout = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	t.Cleanup(func() {
		s.cmd.Process.Kill() //nolint:errcheck
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
		}
		if t.Failed() {
			t.Logf("schoolgate stderr:\n%s", s.stderr.String())
		}
	})
	waitServing(t, adminAddr, s.exited, s.stderr)
	return s
}

// stop sends SIGTERM and returns the exit code.
func (s *evidenceServer) stop() int {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		s.exited <- err
		if err == nil {
			return 0
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		s.t.Fatalf("waiting for schoolgate: %v", err)
	case <-time.After(30 * time.Second):
		s.t.Fatal("schoolgate did not stop within 30s of SIGTERM")
	}
	return -1
}

// runBin runs the binary with args and returns its exit code and output.
func runBin(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err == nil {
		return 0, string(out)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("running %s %v: %v", bin, args, err)
	return -1, ""
}

// countLines counts the lines of a file that are not the writer's own
// records.
func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.Contains(l, `"src":"log"`) {
			n++
		}
	}
	return n
}

func get(t *testing.T, c *http.Client, url string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body) //nolint:errcheck
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
}

// A graceful stop on a full disk: the lines it could not write leave a
// gap record at the next start, `logs verify` reports the gap (exit 1),
// and the stop's own exit status is not 0.
func TestDiskFullStopLeavesAGap(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a 2 MiB tmpfs as the log folder")
	}
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", logs).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", logs).Run() }) //nolint:errcheck

	bin := e2eBinary(t)
	up := e2eUpstream(t)
	proxyAddr, adminAddr := e2eFreeAddr(t), e2eFreeAddr(t)
	cfg := evidenceConfig(t, dir, proxyAddr, adminAddr, "")
	s := startEvidence(t, bin, cfg, adminAddr)
	c := proxyClient(proxyAddr)
	const before, during = 5, 60
	for i := 0; i < before; i++ {
		get(t, c, fmt.Sprintf("%s/hello?before=%d", up, i))
	}
	day := filepath.Join(logs, "access-"+time.Now().UTC().Format("2006-01-02")+".jsonl")
	testenv.WaitFor(t, "the first lines on disk", func() bool { return fileHas(day, before) })

	// Fill the disk: a file takes every block left.
	filler, err := os.Create(filepath.Join(logs, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := filler.Write(chunk); err != nil {
			break
		}
	}
	for {
		if _, err := filler.Write(chunk[:512]); err != nil {
			break
		}
	}
	filler.Close()
	for i := 0; i < during; i++ {
		get(t, c, fmt.Sprintf("%s/hello?during=%d&pad=%s", up, i, strings.Repeat("x", 200)))
	}
	time.Sleep(1500 * time.Millisecond) // the writer tries, and fails
	if code := s.stop(); code == 0 {
		t.Fatalf("the stop exited 0 with lines unwritten:\n%s", s.stderr.String())
	}
	if !strings.Contains(s.stderr.String(), "lines not written") {
		t.Fatalf("the stop did not say that lines were not written:\n%s", s.stderr.String())
	}

	// Room again; the next start records the gap.
	if err := os.Remove(filepath.Join(logs, "filler")); err != nil {
		t.Fatal(err)
	}
	s2 := startEvidence(t, bin, cfg, adminAddr)
	if code := s2.stop(); code != 0 {
		t.Fatalf("clean stop exited %d:\n%s", code, s2.stderr.String())
	}
	code, out := runBin(t, bin, "logs", "verify", "-config", cfg)
	if code != 1 {
		t.Fatalf("logs verify exited %d, want 1:\n%s", code, out)
	}
	m := regexp.MustCompile(`gap: (\d+) lines lost at (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("logs verify does not report the gap:\n%s", out)
	}
	lost, _ := strconv.Atoi(m[1])
	if on := countLines(t, day); on+lost != before+during {
		t.Fatalf("%d lines on disk + %d reported lost = %d, want the %d requests answered:\n%s",
			on, lost, on+lost, before+during, out)
	}
	if lost == 0 {
		t.Fatal("the gap names no lines")
	}
}

func fileHas(path string, lines int) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Count(string(b), "\n") >= lines
}

// e2eUpstream serves /hello, and /drip (a download that sends a chunk
// every 100 ms until the client goes) on 127.0.0.2; it returns its URL.
func e2eUpstream(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") }) //nolint:errcheck
	mux.HandleFunc("/drip", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		for {
			if _, err := w.Write(make([]byte, 1000)); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	up := httptest.NewUnstartedServer(mux)
	up.Listener = e2eUpstreamListener(t)
	up.Start()
	t.Cleanup(up.Close)
	return up.URL
}

func proxyClient(proxyAddr string) *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: proxyAddr}),
	}}
}

// kill -9 with a CONNECT tunnel and a slow download open: after the
// restart both have their line (marked "ended":"crash") and the day verifies.
func TestKilledWithOpenSessionsLeavesTheirLines(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	bin := e2eBinary(t)
	up := e2eUpstream(t)
	echoPort := e2eEcho(t)
	echoAddr := net.JoinHostPort(e2eUpstreamIP, strconv.Itoa(echoPort))
	dir := t.TempDir()
	proxyAddr, adminAddr := e2eFreeAddr(t), e2eFreeAddr(t)
	cfg := evidenceConfig(t, dir, proxyAddr, adminAddr, "", echoPort)
	s := startEvidence(t, bin, cfg, adminAddr)

	// The tunnel: CONNECT, its 200, bytes both ways, left open.
	tun, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	fmt.Fprintf(tun, "CONNECT %s HTTP/1.1\r\nHost: %[1]s\r\n\r\n", echoAddr)
	br := bufio.NewReader(tun)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		t.Fatalf("CONNECT answered %q, %v", status, err)
	}
	for l := ""; l != "\r\n"; {
		if l, err = br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Fprintf(tun, "ping\n")
	if l, err := br.ReadString('\n'); err != nil || l != "ping\n" {
		t.Fatalf("through the tunnel: %q %v", l, err)
	}

	// The slow download, read as it comes.
	resp, err := proxyClient(proxyAddr).Get(up + "/drip")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	go io.Copy(io.Discard, resp.Body) //nolint:errcheck

	time.Sleep(3 * time.Second) // open for more than a second, and a journal written since
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.exited
	tun.Close()
	resp.Body.Close()

	s2 := startEvidence(t, bin, cfg, adminAddr)
	if code := s2.stop(); code != 0 {
		t.Fatalf("stop exited %d", code)
	}
	day := filepath.Join(dir, "logs", "access-"+time.Now().UTC().Format("2006-01-02")+".jsonl")
	b, err := os.ReadFile(day)
	if err != nil {
		t.Fatal(err)
	}
	var tunnelLine, dripLine string
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.Contains(l, `"method":"CONNECT"`) && strings.Contains(l, strconv.Itoa(echoPort)) || strings.Contains(l, `"method":"CONNECT"`):
			tunnelLine = l
		case strings.Contains(l, "/drip"):
			dripLine = l
		}
	}
	if !strings.Contains(tunnelLine, `"ended":"crash"`) || !strings.Contains(tunnelLine, `"status":200`) ||
		!strings.Contains(tunnelLine, `"host":"127.0.0.2"`) {
		t.Fatalf("the open tunnel's line after the crash = %q\nlog:\n%s", tunnelLine, b)
	}
	if !strings.Contains(dripLine, `"ended":"crash"`) || !strings.Contains(dripLine, `"status":200`) ||
		strings.Contains(dripLine, `"bytes":0,`) {
		t.Fatalf("the open download's line after the crash = %q\nlog:\n%s", dripLine, b)
	}
	if code, out := runBin(t, bin, "logs", "verify", "-config", cfg); code != 0 {
		t.Fatalf("logs verify exited %d after the crash:\n%s", code, out)
	}
}

// forgeLines appends n lines with a valid chain to the log at path, as
// someone who knows the scheme would.
func forgeLines(t *testing.T, path string, n int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	last := lines[len(lines)-1]
	var l struct {
		Seq  int64
		Hash string
	}
	if err := json.Unmarshal([]byte(last), &l); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	prev := l.Hash
	for i := 1; i <= n; i++ {
		p := fmt.Sprintf(`{"ts":"%s","src":"proxy","user":"","ip":"127.0.0.1","profile":"student","method":"GET","host":"forged.example","url":"http://forged.example/","categories":[],"verdict":"allow","rule":"student#default","status":200,"bytes":1,"ms":1,"seq":%d`,
			time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), l.Seq+int64(i))
		sum := sha256.Sum256([]byte(prev + "\n" + p))
		prev = hex.EncodeToString(sum[:])
		fmt.Fprintf(f, "%s,\"hash\":\"%s\"}\n", p, prev)
	}
}

// The day's head goes to the alerts file at start and stop; tampering that
// the chain alone cannot see (the .tip deleted and lines cut, forged lines
// appended with valid hashes) fails `logs verify -checkpoints`, and a
// restart says `checkpoint mismatch` and writes a mismatch record.
func TestCheckpointsCatchTampering(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	bin := e2eBinary(t)
	up := e2eUpstream(t)
	dir := t.TempDir()
	proxyAddr, adminAddr := e2eFreeAddr(t), e2eFreeAddr(t)
	cfg := evidenceConfig(t, dir, proxyAddr, adminAddr, "alerts: {file: alerts.jsonl}\n")
	alertsFile := filepath.Join(dir, "alerts.jsonl")
	day := filepath.Join(dir, "logs", "access-"+time.Now().UTC().Format("2006-01-02")+".jsonl")

	s := startEvidence(t, bin, cfg, adminAddr)
	c := proxyClient(proxyAddr)
	for i := 0; i < 10; i++ {
		get(t, c, fmt.Sprintf("%s/hello?i=%d", up, i))
	}
	if code := s.stop(); code != 0 {
		t.Fatalf("stop exited %d", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "checkpoint.json")); err != nil {
		t.Fatalf("the state folder (default ./state beside the config) has no checkpoint: %v", err)
	}
	code, out := runBin(t, bin, "logs", "verify", "-config", cfg, "-checkpoints", alertsFile)
	if code != 0 || !strings.Contains(out, "proved against the checkpoints") {
		t.Fatalf("untouched day against its checkpoints: exit %d\n%s", code, out)
	}
	orig, _ := os.ReadFile(day)
	origTip, _ := os.ReadFile(day + ".tip")
	restore := func() {
		os.WriteFile(day, orig, 0o640)           //nolint:errcheck
		os.WriteFile(day+".tip", origTip, 0o640) //nolint:errcheck
	}

	// The .tip deleted and the last lines cut: the chain alone verifies.
	os.Remove(day + ".tip")
	lines := strings.SplitAfter(string(orig), "\n")
	os.WriteFile(day, []byte(strings.Join(lines[:6], "")), 0o640) //nolint:errcheck
	if code, out := runBin(t, bin, "logs", "verify", "-config", cfg); code != 0 {
		t.Fatalf("the cut file should pass the chain alone (that is the weakness): %d\n%s", code, out)
	}
	code, out = runBin(t, bin, "logs", "verify", "-config", cfg, "-checkpoints", alertsFile)
	if code != 1 || !strings.Contains(out, "lines were cut") {
		t.Fatalf("cut lines against the checkpoints: exit %d\n%s", code, out)
	}
	restore()

	// Forged lines appended with valid hashes.
	os.Remove(day + ".tip")
	forgeLines(t, day, 2)
	if code, out := runBin(t, bin, "logs", "verify", "-config", cfg); code != 0 {
		t.Fatalf("the forged lines should pass the chain alone: %d\n%s", code, out)
	}
	code, out = runBin(t, bin, "logs", "verify", "-config", cfg, "-checkpoints", alertsFile)
	if code != 1 || !strings.Contains(out, "2 lines after line") {
		t.Fatalf("forged lines against the checkpoints: exit %d\n%s", code, out)
	}

	// A restart does not accept the forged end silently.
	s2 := startEvidence(t, bin, cfg, adminAddr)
	if code := s2.stop(); code != 0 {
		t.Fatalf("stop exited %d", code)
	}
	if !strings.Contains(s2.stderr.String(), "checkpoint mismatch") {
		t.Fatalf("the restart did not log `checkpoint mismatch`:\n%s", s2.stderr.String())
	}
	code, out = runBin(t, bin, "logs", "verify", "-config", cfg)
	if code != 1 || !strings.Contains(out, "checkpoint mismatch") {
		t.Fatalf("logs verify after the restart: exit %d\n%s", code, out)
	}
}

// `logs search`: everything a user did, failed sign-ins under the name
// tried, sorted by time, with a last line saying whether each day verifies.
func TestLogsSearch(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	bin := e2eBinary(t)
	up := e2eUpstream(t)
	dir := t.TempDir()
	h, err := bcrypt.GenerateFromPassword([]byte("alicepw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.csv"), []byte("user,profile,password_hash\nalice,student,"+string(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	proxyAddr, adminAddr := e2eFreeAddr(t), e2eFreeAddr(t)
	cfg := evidenceConfig(t, dir, proxyAddr, adminAddr, "users: {file: users.csv, require_auth: true}\n")
	s := startEvidence(t, bin, cfg, adminAddr)
	as := func(user, pass string) *http.Client {
		return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
			Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: proxyAddr, User: url.UserPassword(user, pass)}),
		}}
	}
	for _, c := range []struct {
		user, pass string
		path       string
		want       int
	}{
		{"alice", "alicepw", "/hello?first", 200},
		{"mallory", "guess", "/hello?guess", 407},
		{"alice", "wrong", "/hello?wrong", 407},
		{"alice", "alicepw", "/hello?last", 200},
	} {
		resp, err := as(c.user, c.pass).Get(up + c.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Fatalf("%s %s: %s", c.user, c.path, resp.Status)
		}
		time.Sleep(20 * time.Millisecond) // distinct timestamps
	}
	if code := s.stop(); code != 0 {
		t.Fatalf("stop exited %d", code)
	}
	today := time.Now().UTC().Format("2006-01-02")

	code, out := runBin(t, bin, "logs", "search", "-config", cfg, "-user", "mallory")
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, "mallory") || !strings.Contains(out, " 407 proxy_auth") ||
		!strings.Contains(out, "verified: 1 matching lines; "+today+" intact") {
		t.Fatalf("search for the name tried: exit %d\n%s", code, out)
	}

	code, out = runBin(t, bin, "logs", "search", "-config", cfg, "-user", "alice", "-from", today, "-to", today, "-json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 4 {
		t.Fatalf("alice -json: exit %d\n%s", code, out)
	}
	for i, want := range []string{"first", "wrong", "last"} {
		var l struct {
			User, URL string
			Seq       int64
			Hash      string
		}
		if err := json.Unmarshal([]byte(lines[i]), &l); err != nil || l.User != "alice" || !strings.HasSuffix(l.URL, want) || l.Hash == "" {
			t.Fatalf("line %d = %s (%v), want alice's %s request as logged", i, lines[i], err, want)
		}
	}
	if !strings.Contains(lines[3], `"verified":[{"date":"`+today+`"`) || !strings.Contains(lines[3], `"ok":true`) {
		t.Fatalf("last line = %s", lines[3])
	}

	code, out = runBin(t, bin, "logs", "search", "-config", cfg, "-user", "alice", "-verdict", "block", "-csv")
	if code != 0 || !strings.HasPrefix(out, "ts,user,ip,") || strings.Count(out, "\n") != 3 || !strings.Contains(out, "# verified: 1 matching lines") {
		t.Fatalf("alice -verdict block -csv: exit %d\n%s", code, out)
	}

	// An edited day: the lines still come, and the last line says so (exit 1).
	day := filepath.Join(dir, "logs", "access-"+today+".jsonl")
	b, _ := os.ReadFile(day)
	os.WriteFile(day, []byte(strings.Replace(string(b), "mallory", "mallorz", 1)), 0o640) //nolint:errcheck
	code, out = runBin(t, bin, "logs", "search", "-config", cfg, "-user", "alice")
	if code != 1 || !strings.Contains(out, "NOT INTACT") {
		t.Fatalf("search over an edited day: exit %d\n%s", code, out)
	}
	if code, out := runBin(t, bin, "logs", "search", "-config", cfg, "-verdict", "maybe"); code != 2 {
		t.Fatalf("bad -verdict: exit %d\n%s", code, out)
	}
}
