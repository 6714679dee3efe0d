package main

// Tests of serve as a service: the systemd notify protocol (a fake
// NOTIFY_SOCKET) and run_as (root only), against the built binary.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/config"
)

// openTempDir is a temporary folder any user may enter: what a test
// serve reads or writes stays reachable after a run_as switch.
func openTempDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runAsSetup skips unless the test can switch users (root, a user
// nobody), and builds serve into an open folder.
func runAsSetup(t *testing.T) (nobody *user.User, dir, bin string) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	if os.Geteuid() != 0 {
		t.Skip("run_as needs root to switch users; run the tests as root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	dir = openTempDir(t, "sg-runas")
	bin = filepath.Join(dir, "schoolgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return nobody, dir, bin
}

// notifySocket is a fake systemd: a unixgram socket that collects the
// messages serve sends.
type notifySocket struct {
	path string
	conn *net.UnixConn
	msgs chan string
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	// Unix socket paths are short (108 bytes): not under t.TempDir().
	dir := openTempDir(t, "sg-notify")
	ns := &notifySocket{path: filepath.Join(dir, "notify"), msgs: make(chan string, 256)}
	var err error
	ns.conn, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: ns.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ns.path, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ns.conn.Read(buf)
			if err != nil {
				close(ns.msgs)
				return
			}
			ns.msgs <- string(buf[:n])
		}
	}()
	return ns
}

// next returns the next message that is not a watchdog ping, counting
// those in *pings.
func (ns *notifySocket) next(t *testing.T, pings *int, stderr *e2eBuffer) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m, ok := <-ns.msgs:
			if !ok {
				t.Fatal("notify socket closed")
			}
			if m == "WATCHDOG=1" {
				*pings++
				continue
			}
			return m
		case <-timeout:
			t.Fatalf("no notify message after 20s; serve's log:\n%s", stderr.String())
		}
	}
}

// startServeCmd starts the built binary on cfg (written to dir) with env
// added; it is killed at the end of the test.
func startServeCmd(t *testing.T, bin, dir, cfg string, env ...string) (*exec.Cmd, *e2eBuffer, <-chan error) {
	t.Helper()
	cfgPath := filepath.Join(dir, "schoolgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr := new(e2eBuffer)
	cmd := exec.Command(bin, "serve", "-config", cfgPath)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill() //nolint:errcheck
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
		if t.Failed() {
			t.Logf("serve's log:\n%s", stderr.String())
		}
	})
	return cmd, stderr, exited
}

func serviceTestConfig(proxyAddr, dnsAddr, extra string) string {
	return fmt.Sprintf(`timezone: UTC
listen: {proxy: %q, dns: %q, admin: ""}
clients: [127.0.0.0/8]
proxy: {deny_destinations: [169.254.0.0/16]}
dns: {upstreams: ["127.0.0.1:9"]}
default_profile: p
lists:
  - category: gambling
    domains: [casino.test]
profiles:
  p: {rules: [{action: block, categories: [gambling]}], default: allow}
log: {dir: logs, retention_days: 0}
%s`, proxyAddr, dnsAddr, extra)
}

func TestServeNotifiesSystemd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	ns := newNotifySocket(t)
	dir := t.TempDir()
	proxyAddr, dnsAddr := e2eFreeAddr(t), e2eFreeAddr(t)
	cfg := serviceTestConfig(proxyAddr, dnsAddr, "")
	cmd, stderr, exited := startServeCmd(t, e2eBinary(t), dir, cfg,
		"NOTIFY_SOCKET="+ns.path, "WATCHDOG_USEC=300000")
	pings := 0

	m := ns.next(t, &pings, stderr)
	if !strings.HasPrefix(m, "READY=1\n") {
		t.Fatalf("first message %q, want READY=1", m)
	}
	// READY means every listener is bound: both answer at once.
	for _, a := range []string{proxyAddr, dnsAddr} {
		c, err := net.DialTimeout("tcp", a, 5*time.Second)
		if err != nil {
			t.Fatalf("READY sent but %s does not answer: %v", a, err)
		}
		c.Close()
	}

	// A reload: RELOADING=1 with the monotonic time, then READY=1.
	before, _ := monotonicUsec()
	reload := func(want string) {
		t.Helper()
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		m := ns.next(t, &pings, stderr)
		fields := strings.Split(m, "\n")
		if fields[0] != "RELOADING=1" {
			t.Fatalf("after SIGHUP got %q, want RELOADING=1", m)
		}
		var usec int64
		for _, f := range fields {
			if v, ok := strings.CutPrefix(f, "MONOTONIC_USEC="); ok {
				usec, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		if usec < before {
			t.Errorf("RELOADING=1 carries MONOTONIC_USEC %d, want a CLOCK_MONOTONIC time after %d (%q)", usec, before, m)
		}
		if m := ns.next(t, &pings, stderr); !strings.HasPrefix(m, "READY=1\n") || !strings.Contains(m, want) {
			t.Fatalf("after RELOADING got %q, want READY=1 with status %q", m, want)
		}
	}
	reload("reloaded")
	if err := os.WriteFile(filepath.Join(dir, "schoolgate.yaml"), []byte(cfg+"bogus_key: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reload("refused") // READY again: the old config serves on

	// The watchdog is fed (every 150 ms here) while serving.
	deadline := time.Now().Add(10 * time.Second)
	for pings < 2 && time.Now().Before(deadline) {
		select {
		case m := <-ns.msgs:
			if m != "WATCHDOG=1" {
				t.Fatalf("unexpected message %q while idle", m)
			}
			pings++
		case <-time.After(time.Second):
		}
	}
	if pings < 2 {
		t.Errorf("%d watchdog pings, want some at WATCHDOG_USEC/2", pings)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if m := ns.next(t, &pings, stderr); !strings.HasPrefix(m, "STOPPING=1") {
		t.Fatalf("after SIGTERM got %q, want STOPPING=1", m)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve exited with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop after SIGTERM")
	}
}

// A start that fails (port in use) never says READY.
func TestServeNotReadyWhenBindFails(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ns := newNotifySocket(t)
	_, stderr, exited := startServeCmd(t, e2eBinary(t), t.TempDir(),
		serviceTestConfig(busy.Addr().String(), "", ""), "NOTIFY_SOCKET="+ns.path)
	select {
	case err := <-exited:
		if err == nil {
			t.Fatal("serve started on a port in use")
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("serve still running on a port in use:\n%s", stderr.String())
	}
	select {
	case m := <-ns.msgs:
		t.Fatalf("a failed start sent %q", m)
	case <-time.After(200 * time.Millisecond):
	}
}

// Started as root with run_as, serve binds a privileged port, then runs
// as that user with no capabilities left, and still serves and logs.
func TestServeRunAsDropsRoot(t *testing.T) {
	nobody, dir, bin := runAsSetup(t)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello") //nolint:errcheck
	}))
	up.Listener = e2eUpstreamListener(t)
	up.Start()
	defer up.Close()

	// An address of its own on loopback, so port 80 is free there.
	proxyAddr := "127.0.93.16:80"
	ns := newNotifySocket(t)
	cmd, stderr, _ := startServeCmd(t, bin, dir, serviceTestConfig(proxyAddr, "", "run_as: nobody\n"),
		"NOTIFY_SOCKET="+ns.path)
	pings := 0
	if m := ns.next(t, &pings, stderr); !strings.HasPrefix(m, "READY=1") {
		t.Fatalf("first message %q, want READY=1", m)
	}

	status := procStatus(t, cmd.Process.Pid)
	for _, k := range []string{"Uid", "Gid"} {
		for _, id := range strings.Fields(status[k]) {
			want := nobody.Uid
			if k == "Gid" {
				want = nobody.Gid
			}
			if id != want {
				t.Errorf("%s: %q after the switch, want all of real, effective, saved, fs = %s", k, status[k], want)
				break
			}
		}
	}
	for _, k := range []string{"CapPrm", "CapEff", "CapAmb"} {
		if status[k] != "0000000000000000" {
			t.Errorf("%s = %s after the switch, want none", k, status[k])
		}
	}
	if strings.Contains(" "+status["Groups"]+" ", " 0 ") {
		t.Errorf("still in group root: Groups %q", status["Groups"])
	}

	// It serves on the privileged port and writes its log as nobody.
	proxyURL := &url.URL{Scheme: "http", Host: proxyAddr}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	resp, err := client.Get(up.URL + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello" {
		t.Fatalf("through the proxy: %d %q", resp.StatusCode, body)
	}
	// The folders it writes to after the switch are the user's.
	for _, sub := range []string{"logs", "state"} {
		fi, err := os.Stat(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; strconv.Itoa(int(uid)) != nobody.Uid {
			t.Errorf("%s folder owned by uid %d, want nobody (%s)", sub, uid, nobody.Uid)
		}
	}
	if !strings.Contains(stderr.String(), `"switched user"`) {
		t.Errorf("no \"switched user\" line in the log")
	}
	if strings.Contains(stderr.String(), "running with root privileges") {
		t.Errorf("warned about root although run_as is set")
	}
}

// As root without run_as, serve says so and names the key.
func TestServeWarnsAsRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	if os.Geteuid() != 0 {
		t.Skip("the warning is for a start as root")
	}
	ns := newNotifySocket(t)
	_, stderr, _ := startServeCmd(t, e2eBinary(t), t.TempDir(),
		serviceTestConfig(e2eFreeAddr(t), "", ""), "NOTIFY_SOCKET="+ns.path)
	pings := 0
	ns.next(t, &pings, stderr)
	var warn string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, "running with root privileges") {
			warn = l
		}
	}
	if !strings.Contains(warn, `"level":"warn"`) || !strings.Contains(warn, "run_as") {
		t.Errorf("want a warning naming run_as; log:\n%s", stderr.String())
	}
}

func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func TestCgroupMemoryLimit(t *testing.T) {
	tests := []struct {
		name   string
		self   string
		files  map[string]string // path under the cgroup root -> content
		want   int64
		wantIn string
	}{
		{"high under max", "0::/system.slice/schoolgate.service\n",
			map[string]string{"system.slice/schoolgate.service/memory.high": "1073741824\n",
				"system.slice/schoolgate.service/memory.max": "2147483648\n"},
			1 << 30, "schoolgate.service/memory.high"},
		{"only max", "0::/system.slice/schoolgate.service\n",
			map[string]string{"system.slice/schoolgate.service/memory.high": "max\n",
				"system.slice/schoolgate.service/memory.max": "536870912\n"},
			512 << 20, "memory.max"},
		{"the slice is lower", "0::/system.slice/schoolgate.service\n",
			map[string]string{"system.slice/schoolgate.service/memory.high": "1073741824\n",
				"system.slice/memory.max": "268435456\n"},
			256 << 20, "system.slice/memory.max"},
		{"no limits", "0::/system.slice/schoolgate.service\n",
			map[string]string{"system.slice/schoolgate.service/memory.high": "max\n",
				"system.slice/schoolgate.service/memory.max": "max\n"}, 0, ""},
		{"root cgroup is not a limit", "0::/\n", map[string]string{"memory.max": "1024\n"}, 0, ""},
		{"cgroup v1", "4:memory:/system.slice/schoolgate.service\n1:name=systemd:/system.slice/schoolgate.service\n0::/\n",
			map[string]string{"memory/system.slice/schoolgate.service/memory.limit_in_bytes": "2147483648\n",
				"memory/system.slice/memory.limit_in_bytes": "9223372036854771712\n",
				"memory/memory.limit_in_bytes":              "9223372036854771712\n"},
			2 << 30, "memory/system.slice/schoolgate.service/memory.limit_in_bytes"},
		{"cgroup v1 unlimited", "4:memory:/x\n", map[string]string{"memory/x/memory.limit_in_bytes": "9223372036854771712\n"}, 0, ""},
		{"v1 controllers together", "5:cpu,memory:/x\n", map[string]string{"memory/x/memory.limit_in_bytes": "1073741824\n"}, 1 << 30, "memory.limit_in_bytes"},
		{"garbage", "0::/a\n", map[string]string{"a/memory.high": "lots\n"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			self := filepath.Join(root, "self-cgroup")
			if err := os.WriteFile(self, []byte(tt.self), 0o644); err != nil {
				t.Fatal(err)
			}
			fs := filepath.Join(root, "cgroup")
			for p, c := range tt.files {
				full := filepath.Join(fs, p)
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, from := cgroupMemoryLimit(fs, self)
			if got != tt.want || !strings.HasSuffix(from, tt.wantIn) {
				t.Errorf("got %d from %q, want %d from ...%s", got, from, tt.want, tt.wantIn)
			}
		})
	}
}

// run_as that cannot be honoured stops the start with the reason.
func TestServeRunAsRefused(t *testing.T) {
	if _, err := user.Lookup("daemon"); err != nil {
		t.Skipf("no user daemon: %v", err)
	}
	nobody, dir, bin := runAsSetup(t)
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	tests := []struct {
		name, runAs string
		asNobody    bool
		want        string
	}{
		{"another user, not root", "daemon", true, "only root can switch users, and this is uid " + nobody.Uid},
		{"root", "root", false, "that is root; name an unprivileged user"},
		{"unknown user", "no-such-user-here", false, "unknown user no-such-user-here"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := filepath.Join(dir, strconv.Itoa(i))
			if err := os.Mkdir(sub, 0o777); err != nil {
				t.Fatal(err)
			}
			cfgPath := filepath.Join(sub, "schoolgate.yaml")
			cfg := serviceTestConfig(e2eFreeAddr(t), "", "run_as: "+tt.runAs+"\n")
			if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "serve", "-config", cfgPath)
			if tt.asNobody {
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
			}
			done := make(chan struct{})
			var (
				out    []byte
				runErr error
			)
			go func() { out, runErr = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill() //nolint:errcheck
				<-done
				t.Fatalf("serve started with run_as %q:\n%s", tt.runAs, out)
			}
			if runErr == nil || !strings.Contains(string(out), tt.want) {
				t.Errorf("exit %v, want a failure saying %q:\n%s", runErr, tt.want, out)
			}
		})
	}
}

// memoryCgroup makes a memory cgroup with limit (bytes) below the test's
// own, v1 or v2, and returns the file a process joins it by writing its
// pid; it skips where it cannot (not root, no writable memory controller).
func memoryCgroup(t *testing.T, limit int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("making a cgroup needs root")
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skipf("no /proc/self/cgroup: %v", err)
	}
	var dir, limitFile string
	for _, line := range strings.Split(string(self), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		name := fmt.Sprintf("sg-test-%d", os.Getpid())
		if slices.Contains(strings.Split(parts[1], ","), "memory") {
			dir, limitFile = filepath.Join("/sys/fs/cgroup/memory", parts[2], name), "memory.limit_in_bytes"
			break
		}
		if parts[0] == "0" && parts[1] == "" {
			dir, limitFile = filepath.Join("/sys/fs/cgroup", parts[2], name), "memory.max"
		}
	}
	if dir == "" {
		t.Skip("no memory cgroup found")
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a cgroup: %v", err)
	}
	t.Cleanup(func() {
		// The process has exited by now; an empty cgroup can go.
		for i := 0; i < 50 && os.Remove(dir) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, limitFile), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		t.Skipf("cannot set %s (no memory controller here?): %v", limitFile, err)
	}
	return filepath.Join(dir, "cgroup.procs")
}

// In a cgroup with a memory limit, serve sets its Go memory limit to 90%
// of it, unless GOMEMLIMIT is set.
func TestServeMemoryLimitFromCgroup(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	var limit int64 = 512 << 20
	procs := memoryCgroup(t, limit)
	bin := e2eBinary(t)
	for _, tt := range []struct {
		name, env string
		want      string
	}{
		{"from the cgroup", "", fmt.Sprintf(`"go_memory_limit_bytes":%d`, int64(float64(limit)*memLimitShare))},
		{"GOMEMLIMIT wins", "GOMEMLIMIT=300MiB", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfgPath := filepath.Join(dir, "schoolgate.yaml")
			if err := os.WriteFile(cfgPath, []byte(serviceTestConfig(e2eFreeAddr(t), "", "")), 0o644); err != nil {
				t.Fatal(err)
			}
			ns := newNotifySocket(t)
			// The shell joins the cgroup, then becomes serve.
			cmd := exec.Command("sh", "-c", `echo $$ > "$1" && exec "$2" serve -config "$3"`, "sh", procs, bin, cfgPath)
			cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+ns.path, tt.env)
			stderr := new(e2eBuffer)
			cmd.Stdout, cmd.Stderr = stderr, stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck
				cmd.Wait()                          //nolint:errcheck
			}()
			pings := 0
			ns.next(t, &pings, stderr) // READY: the start is logged by now
			line := ""
			for _, l := range strings.Split(stderr.String(), "\n") {
				if strings.Contains(l, "memory limit from the cgroup") {
					line = l
				}
			}
			switch {
			case tt.want == "" && line != "":
				t.Errorf("with %s serve still set its limit from the cgroup: %s", tt.env, line)
			case tt.want != "" && !strings.Contains(line, tt.want):
				t.Errorf("want a \"memory limit from the cgroup\" line with %s; log:\n%s", tt.want, stderr.String())
			}
		})
	}
}

func TestWarnOpenCAKey(t *testing.T) {
	for _, tt := range []struct {
		mode os.FileMode
		warn bool
	}{{0o644, true}, {0o604, true}, {0o640, false}, {0o600, false}} {
		t.Run(tt.mode.String(), func(t *testing.T) {
			key := filepath.Join(t.TempDir(), "ca.key")
			if err := os.WriteFile(key, []byte("not read"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(key, tt.mode); err != nil {
				t.Fatal(err)
			}
			cfg := config.Default()
			cfg.Proxy.Intercept = &config.Intercept{CACert: "ca.pem", CAKey: key}
			var buf bytes.Buffer
			warnOpenCAKey(cfg, newProgramLogger(&buf))
			if got := strings.Contains(buf.String(), "readable by every local user"); got != tt.warn {
				t.Errorf("mode %v: warned %v, want %v: %s", tt.mode, got, tt.warn, buf.String())
			}
		})
	}
}
