package packaging

// The package on this machine: build it with `make deb`, install it,
// check what it put where, run the installed binary as the unit does,
// upgrade with a locally changed config, remove and purge. It installs a
// package and adds a user, so it runs only as root and when asked.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	pkgName = "schoolgate"
	// Its own loopback address, so :53 and :443 are free whatever else
	// this machine runs.
	testAddr = "127.0.0.77"
)

func debTestWanted(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the package test installs a package and adds a user: run it as root (with SCHOOLGATE_DEB_TEST=1)")
	}
	if os.Getenv("SCHOOLGATE_DEB_TEST") != "1" && os.Getenv("CI") != "true" {
		t.Skip("the package test changes this machine (a package, the user schoolgate): set SCHOOLGATE_DEB_TEST=1 (or CI=true) to run it")
	}
	for _, cmd := range []string{"dpkg", "dpkg-deb", "make", "git", "setpriv", "dig", "curl", "adduser"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Skipf("%s not installed", cmd)
		}
	}
	if exec.Command("dpkg-query", "-W", pkgName).Run() == nil {
		t.Skip("a schoolgate package is known to dpkg on this machine already; not touching it")
	}
	if _, err := user.Lookup(pkgName); err == nil {
		t.Skip("the user schoolgate exists already; not touching it")
	}
	for _, p := range []string{"/etc/schoolgate", "/var/lib/schoolgate", "/var/log/schoolgate"} {
		if _, err := os.Lstat(p); err == nil {
			t.Skipf("%s exists already; not touching it", p)
		}
	}
}

// run runs a command, failing the test with its output if it fails.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// buildDeb runs `make deb` for version with the given shipped config.
func buildDeb(t *testing.T, dist, version, shippedConfig string) string {
	t.Helper()
	run(t, nil, "make", "-C", "..", "deb", "DIST="+dist, "DEB_VERSION="+version, "DEB_CONFIG="+shippedConfig)
	deb := filepath.Join(dist, "schoolgate_"+version+"_amd64.deb")
	if _, err := os.Stat(deb); err != nil {
		t.Fatalf("make deb made no %s: %v", deb, err)
	}
	return deb
}

type fileWant struct {
	path       string
	mode       os.FileMode
	user, grp  string
	isDir      bool
	contentHas string
}

func checkFile(t *testing.T, w fileWant) {
	t.Helper()
	fi, err := os.Lstat(w.path)
	if err != nil {
		t.Errorf("%s: %v", w.path, err)
		return
	}
	if fi.IsDir() != w.isDir {
		t.Errorf("%s: directory %v, want %v", w.path, fi.IsDir(), w.isDir)
	}
	if fi.Mode().Perm() != w.mode {
		t.Errorf("%s: mode %#o, want %#o", w.path, fi.Mode().Perm(), w.mode)
	}
	st := fi.Sys().(*syscall.Stat_t)
	u, _ := user.LookupId(strconv.Itoa(int(st.Uid)))
	g, _ := user.LookupGroupId(strconv.Itoa(int(st.Gid)))
	if u == nil || g == nil || u.Username != w.user || g.Name != w.grp {
		t.Errorf("%s: owner %d:%d, want %s:%s", w.path, st.Uid, st.Gid, w.user, w.grp)
	}
	if w.contentHas != "" {
		b, err := os.ReadFile(w.path)
		if err != nil || !bytes.Contains(b, []byte(w.contentHas)) {
			t.Errorf("%s: does not contain %q (%v)", w.path, w.contentHas, err)
		}
	}
}

func gone(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there", p)
		}
	}
}

func present(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func dpkgStatus(t *testing.T) string {
	t.Helper()
	out, _ := exec.Command("dpkg-query", "-W", "-f", "${Status} ${Version}", pkgName).Output()
	return string(out)
}

func systemdRunning() bool {
	_, err := os.Stat("/run/systemd/system")
	return err == nil
}

func TestDebPackage(t *testing.T) {
	debTestWanted(t)
	t.Cleanup(func() {
		// Leave the machine as it was: the package, its user, its folders.
		if exec.Command("dpkg-query", "-W", pkgName).Run() == nil {
			cmd := exec.Command("dpkg", "--purge", pkgName)
			cmd.Env = append(os.Environ(), "SCHOOLGATE_PURGE_LOGS=yes")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("cleanup: dpkg --purge: %v\n%s", err, out)
			}
		}
		if _, err := user.Lookup(pkgName); err == nil {
			exec.Command("userdel", pkgName).Run() //nolint:errcheck // best effort
		}
		if _, err := user.LookupGroup(pkgName); err == nil {
			exec.Command("groupdel", pkgName).Run() //nolint:errcheck // best effort
		}
		for _, p := range []string{"/etc/schoolgate", "/var/lib/schoolgate", "/var/log/schoolgate"} {
			os.RemoveAll(p)
		}
	})

	// Two versions: the second ships a changed default config.
	dist := t.TempDir()
	shipped2 := filepath.Join(dist, "schoolgate-v2.yaml")
	orig, err := os.ReadFile("debian/schoolgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(shipped2, append(orig, "# the second version's default\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	const v1, v2 = "0.0~test1", "0.0~test2"
	start := time.Now()
	deb1 := buildDeb(t, dist, v1, "packaging/debian/schoolgate.yaml")
	t.Logf("make deb: %v", time.Since(start).Round(time.Second))
	deb2 := buildDeb(t, dist, v2, shipped2)

	// What is in it.
	contents := run(t, nil, "dpkg-deb", "-c", deb1)
	for _, p := range []string{"./usr/bin/schoolgate", "./etc/schoolgate/schoolgate.yaml",
		"./lib/systemd/system/schoolgate.service", "./lib/systemd/system/schoolgate-firewall.service",
		"./usr/share/lintian/overrides/schoolgate", "./usr/share/doc/schoolgate/copyright",
		"./usr/share/doc/schoolgate/changelog.gz", "./usr/share/man/man1/schoolgate.1.gz"} {
		if !strings.Contains(contents, " "+p+"\n") {
			t.Errorf("the package has no %s:\n%s", p, contents)
		}
	}
	if got := strings.TrimSpace(run(t, nil, "dpkg-deb", "-f", deb1, "Version")); got != v1 {
		t.Errorf("Version: %q, want %q", got, v1)
	}
	if got := run(t, nil, "dpkg-deb", "-I", deb1, "conffiles"); strings.TrimSpace(got) != "/etc/schoolgate/schoolgate.yaml" {
		t.Errorf("conffiles: %q, want /etc/schoolgate/schoolgate.yaml", got)
	}
	if _, err := exec.LookPath("lintian"); err == nil {
		out, err := exec.Command("lintian", "--fail-on", "error", deb1).CombinedOutput()
		t.Logf("lintian:\n%s", out)
		if err != nil {
			t.Errorf("lintian reports errors: %v\n%s", err, out)
		}
	} else {
		t.Log("lintian not installed: not run")
	}

	// Install.
	t.Log(run(t, nil, "dpkg", "-i", deb1))
	if st := dpkgStatus(t); st != "install ok installed "+v1 {
		t.Fatalf("dpkg status %q", st)
	}
	if systemdRunning() {
		// postinst started the service on the shipped config; report how
		// it went and stop it, so that it holds no port of this test's.
		out, _ := exec.Command("systemctl", "show", "-p", "ActiveState,SubState,StatusText", "schoolgate.service").CombinedOutput()
		t.Logf("under systemd after install: %s", out)
		exec.Command("systemctl", "stop", "schoolgate.service").Run() //nolint:errcheck
	}
	u, err := user.Lookup(pkgName)
	if err != nil {
		t.Fatalf("no user schoolgate after install: %v", err)
	}
	if uid, _ := strconv.Atoi(u.Uid); uid >= 1000 || uid == 0 {
		t.Errorf("schoolgate is uid %d, want a system user (1..999)", uid)
	}
	if pw := run(t, nil, "getent", "passwd", pkgName); !strings.HasSuffix(strings.TrimSpace(pw), ":/var/lib/schoolgate:/usr/sbin/nologin") {
		t.Errorf("passwd entry %q, want home /var/lib/schoolgate and no login shell", pw)
	}
	installed := []fileWant{
		{path: "/usr/bin/schoolgate", mode: 0o755, user: "root", grp: "root"},
		{path: "/etc/schoolgate/schoolgate.yaml", mode: 0o640, user: "root", grp: pkgName, contentHas: "run_as: schoolgate"},
		{path: "/lib/systemd/system/schoolgate.service", mode: 0o644, user: "root", grp: "root", contentHas: "Type=notify"},
		{path: "/lib/systemd/system/schoolgate-firewall.service", mode: 0o644, user: "root", grp: "root", contentHas: "Type=oneshot"},
		{path: "/var/lib/schoolgate", mode: 0o750, user: pkgName, grp: pkgName, isDir: true},
		{path: "/var/log/schoolgate", mode: 0o750, user: pkgName, grp: pkgName, isDir: true},
	}
	for _, w := range installed {
		checkFile(t, w)
	}
	present(t, "/etc/systemd/system/multi-user.target.wants/schoolgate.service")
	run(t, nil, "/usr/bin/schoolgate", "config", "check", "/etc/schoolgate/schoolgate.yaml")
	if exec.Command("/usr/lib/schoolgate/transparent-configured", "/etc/schoolgate/schoolgate.yaml").Run() == nil {
		t.Error("the firewall oneshot would run on the shipped config (no transparent listener)")
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		out, err := exec.Command("systemd-analyze", "verify",
			"/lib/systemd/system/schoolgate.service", "/lib/systemd/system/schoolgate-firewall.service").CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
		if e := exposure(t, "/lib/systemd/system/schoolgate.service"); e > 2.0 {
			t.Errorf("installed unit's exposure %.1f, want <= 2.0", e)
		}
	} else {
		t.Log("systemd-analyze not installed: verify and security not run")
	}

	// Run the installed binary as the unit does: as schoolgate, with only
	// CAP_NET_BIND_SERVICE, on privileged ports.
	runAsUnit(t)

	// Reinstalling the same version is harmless (idempotent postinst).
	run(t, nil, "dpkg", "-i", deb1)

	// Upgrade with a locally changed config: the local one is kept, the
	// new default lands beside it.
	const cfgPath = "/etc/schoolgate/schoolgate.yaml"
	local := bytes.Replace(orig, []byte("retention_days: 183"), []byte("retention_days: 365"), 1)
	local = append(local, "# changed here\n"...)
	if err := os.WriteFile(cfgPath, local, 0o640); err != nil {
		t.Fatal(err)
	}
	t.Log(run(t, nil, "dpkg", "--force-confdef", "--force-confold", "-i", deb2))
	if st := dpkgStatus(t); st != "install ok installed "+v2 {
		t.Fatalf("after the upgrade: dpkg status %q", st)
	}
	if systemdRunning() {
		exec.Command("systemctl", "stop", "schoolgate.service").Run() //nolint:errcheck
	}
	if b, _ := os.ReadFile(cfgPath); !bytes.Equal(b, local) {
		t.Errorf("the upgrade changed the local config:\n%s", b)
	}
	if b, err := os.ReadFile(cfgPath + ".dpkg-dist"); err != nil || !bytes.HasSuffix(b, []byte("# the second version's default\n")) {
		t.Errorf("no new default beside the local config: %v", err)
	} else if fi, _ := os.Stat(cfgPath + ".dpkg-dist"); fi.Mode().Perm()&0o007 != 0 {
		t.Errorf("the new default %s.dpkg-dist is world-readable (%#o)", cfgPath, fi.Mode().Perm())
	}
	for _, w := range installed {
		checkFile(t, w)
	}

	// Remove: program and units go; config, state, logs and user stay.
	run(t, nil, "dpkg", "-r", pkgName)
	if st := dpkgStatus(t); !strings.HasPrefix(st, "deinstall ok config-files") {
		t.Errorf("after dpkg -r: status %q", st)
	}
	// The enablement links stay until the purge, as for every Debian
	// service: a reinstall keeps the admin's choice.
	gone(t, "/usr/bin/schoolgate", "/lib/systemd/system/schoolgate.service", "/lib/systemd/system/schoolgate-firewall.service")
	present(t, cfgPath, "/var/lib/schoolgate", "/var/log/schoolgate")
	if _, err := user.Lookup(pkgName); err != nil {
		t.Errorf("dpkg -r removed the user: %v", err)
	}

	// Purge: config and state go; the access logs (evidence) stay, with
	// their owner.
	logFile := "/var/log/schoolgate/access-" + time.Now().UTC().Format("2006-01-02") + ".jsonl"
	present(t, logFile)
	out := run(t, nil, "dpkg", "-P", pkgName)
	if !strings.Contains(out, "/var/log/schoolgate are kept") {
		t.Errorf("the purge does not say that it kept the logs:\n%s", out)
	}
	if st := dpkgStatus(t); st != "" {
		t.Errorf("after dpkg -P: status %q", st)
	}
	gone(t, "/etc/schoolgate", "/var/lib/schoolgate",
		"/etc/systemd/system/multi-user.target.wants/schoolgate.service",
		"/etc/systemd/system/multi-user.target.wants/schoolgate-firewall.service")
	present(t, logFile)
	if _, err := user.Lookup(pkgName); err != nil {
		t.Errorf("the purge removed the user that owns the kept logs: %v", err)
	}

	// Installing again over the kept user and logs works; a purge that is
	// asked to deletes the logs and the user too.
	run(t, nil, "dpkg", "-i", deb2)
	if systemdRunning() {
		exec.Command("systemctl", "stop", "schoolgate.service").Run() //nolint:errcheck
	}
	present(t, logFile)
	run(t, []string{"SCHOOLGATE_PURGE_LOGS=yes"}, "dpkg", "-P", pkgName)
	gone(t, "/etc/schoolgate", "/var/lib/schoolgate", "/var/log/schoolgate")
	if _, err := user.Lookup(pkgName); err == nil {
		t.Error("SCHOOLGATE_PURGE_LOGS=yes purge left the user schoolgate")
	}
	if _, err := user.LookupGroup(pkgName); err == nil {
		t.Error("SCHOOLGATE_PURGE_LOGS=yes purge left the group schoolgate")
	}
}

// runAsUnit starts /usr/bin/schoolgate serve the way schoolgate.service
// does (setpriv for systemd's User=, AmbientCapabilities= and
// CapabilityBoundingSet=), with DNS on :53 and the proxy on :443 of
// testAddr, and checks that both serve and that it holds nothing more.
func runAsUnit(t *testing.T) {
	t.Helper()
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello from upstream") //nolint:errcheck
	}))
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	up.Listener = ln
	up.Start()
	defer up.Close()

	dir, err := os.MkdirTemp("", "sg-deb")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`run_as: schoolgate
state_dir: /var/lib/schoolgate
timezone: UTC
listen: {proxy: "%[1]s:443", dns: "%[1]s:53", admin: ""}
clients: [127.0.0.0/8]
proxy: {deny_destinations: [169.254.0.0/16]}
dns: {upstreams: ["127.0.0.1:9"]}
default_profile: p
lists:
  - category: gambling
    domains: [casino.test]
profiles:
  p: {rules: [{action: block, categories: [gambling]}], default: allow}
log: {dir: /var/log/schoolgate}
`, testAddr)
	cfgPath := filepath.Join(dir, "schoolgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("setpriv", "--reuid", pkgName, "--regid", pkgName, "--init-groups",
		"--bounding-set", "-all,+net_bind_service", "--inh-caps", "-all,+net_bind_service",
		"--ambient-caps", "+net_bind_service", "--no-new-privs",
		"/usr/bin/schoolgate", "serve", "-config", cfgPath)
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill() //nolint:errcheck
			<-exited
		}
		if t.Failed() {
			t.Logf("serve's log:\n%s", stderr.String())
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", testAddr+":443", time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("serve exited at start (%v):\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not listening on %s:443 after 30s:\n%s", testAddr, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// What the process holds: the user's ids, one capability.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := user.Lookup(pkgName)
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "Uid":
			if v != strings.Repeat(u.Uid+"\t", 3)+u.Uid {
				t.Errorf("Uid %q, want %s everywhere", v, u.Uid)
			}
		case "CapEff", "CapPrm", "CapBnd":
			if v != "0000000000000400" { // 1<<10: CAP_NET_BIND_SERVICE
				t.Errorf("%s %s, want only CAP_NET_BIND_SERVICE (0000000000000400)", k, v)
			}
		}
	}

	// DNS on :53 answers (a blocked name: no upstream needed).
	out, err := exec.Command("dig", "@"+testAddr, "-p", "53", "+tries=2", "+time=5", "casino.test").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "status: NXDOMAIN") {
		t.Errorf("dig @%s:53 casino.test: %v, want NXDOMAIN:\n%s", testAddr, err, out)
	}
	// The proxy on :443 serves an allowed page and blocks a listed one.
	proxy := "http://" + testAddr + ":443"
	out, err = exec.Command("curl", "-sS", "--max-time", "15", "-x", proxy, up.URL+"/").CombinedOutput()
	if err != nil || string(out) != "hello from upstream" {
		t.Errorf("curl through the proxy: %v %q", err, out)
	}
	out, _ = exec.Command("curl", "-s", "--max-time", "15", "-o", "/dev/null", "-w", "%{http_code}", "-x", proxy, "http://casino.test/").CombinedOutput()
	if string(out) != "403" {
		t.Errorf("curl http://casino.test/ through the proxy: %q, want 403", out)
	}
	// It logs to /var/log/schoolgate as the service user (flushed each second).
	logFile := "/var/log/schoolgate/access-" + time.Now().UTC().Format("2006-01-02") + ".jsonl"
	deadline = time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(logFile)
		if bytes.Contains(b, []byte("casino.test")) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("no casino.test line in %s", logFile)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	checkFile(t, fileWant{path: logFile, mode: 0o640, user: pkgName, grp: pkgName})
}
