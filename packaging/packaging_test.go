// Package packaging holds the Debian package of schoolgate: nfpm's
// description (nfpm.yaml), the systemd units, the shipped config and the
// maintainer scripts (debian/), and the version scheme (version.sh). Its
// tests keep them valid; deb_test.go builds, installs, upgrades, runs,
// removes and purges the package on the machine (root, opt-in).
package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/schoolgate/schoolgate/config"
)

// The shipped config is valid as it stands.
func TestShippedConfig(t *testing.T) {
	cfg, err := config.Load("debian/schoolgate.yaml")
	if err != nil {
		t.Fatalf("debian/schoolgate.yaml: %v", err)
	}
	if cfg.RunAs != "schoolgate" {
		t.Errorf("run_as = %q, want schoolgate", cfg.RunAs)
	}
	// ProtectSystem=strict: the unit may write only in its
	// StateDirectory= and LogsDirectory=.
	if cfg.Log.Dir != "/var/log/schoolgate" {
		t.Errorf("log.dir = %q, want /var/log/schoolgate", cfg.Log.Dir)
	}
	if cfg.StateDir != "/var/lib/schoolgate" {
		t.Errorf("state_dir = %q, want /var/lib/schoolgate", cfg.StateDir)
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// exposure runs systemd-analyze security on a unit file (offline: no
// running systemd needed) and returns its overall exposure score.
func exposure(t *testing.T, unit string) float64 {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed")
	}
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", unit).CombinedOutput()
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		if strings.Contains(string(out), "offline") {
			t.Skipf("this systemd-analyze cannot check a unit file offline: %v\n%s", err, out)
		}
		t.Fatalf("systemd-analyze security %s: %v\n%s", unit, err, out)
	}
	f, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// The service unit's exposure (systemd-analyze security) is at most 2.0.
func TestUnitExposure(t *testing.T) {
	got := exposure(t, "debian/schoolgate.service")
	t.Logf("systemd-analyze security --offline=true debian/schoolgate.service: %.1f", got)
	if got > 2.0 {
		out, _ := exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", "debian/schoolgate.service").CombinedOutput()
		t.Errorf("exposure %.1f, want <= 2.0:\n%s", got, out)
	}
}

// The firewall oneshot runs only for a config naming a transparent listener.
func TestTransparentConfigured(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       bool
	}{
		{"shipped config", "", false},
		{"block style", "listen:\n  transparent_http: \":3129\"\n", true},
		{"flow style, https", "listen: {proxy: \":3128\", transparent_https: \"[::]:3130\"}\n", true},
		{"commented out", "listen:\n  # transparent_http: \":3129\"\n", false},
		{"turned off", "listen:\n  transparent_https: \"\"\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "debian/schoolgate.yaml"
			if tt.yaml != "" {
				path = filepath.Join(t.TempDir(), "c.yaml")
				if err := os.WriteFile(path, []byte(tt.yaml), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := exec.Command("debian/transparent-configured", path).Run()
			if got := err == nil; got != tt.want {
				t.Errorf("transparent-configured = %v (%v), want %v", got, err, tt.want)
			}
		})
	}
}

// version.sh turns git tags into Debian versions that sort as releases do.
func TestVersionScheme(t *testing.T) {
	for _, cmd := range []string{"git", "dpkg"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Skipf("%s not installed", cmd)
		}
	}
	repo := t.TempDir()
	if err := os.Mkdir(filepath.Join(repo, "packaging"), 0o755); err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("version.sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "packaging", "version.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
			"GIT_AUTHOR_DATE=2026-03-04T10:00:00Z", "GIT_COMMITTER_DATE=2026-03-04T10:00:00Z")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	version := func() string {
		t.Helper()
		out, err := exec.Command(filepath.Join(repo, "packaging", "version.sh")).Output()
		if err != nil {
			t.Fatalf("version.sh: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("commit", "-q", "--allow-empty", "-m", "one")
	untagged := version()
	if !regexp.MustCompile(`^0\.0~git20260304\.[0-9a-f]{7}$`).MatchString(untagged) {
		t.Errorf("untagged: %q, want 0.0~git20260304.HASH", untagged)
	}
	git("tag", "v1.3.0-rc1")
	rc := version()
	git("commit", "-q", "--allow-empty", "-m", "two")
	git("tag", "v1.3.0")
	release := version()
	git("commit", "-q", "--allow-empty", "-m", "three")
	after := version()
	if rc != "1.3.0~rc1" || release != "1.3.0" || !strings.HasPrefix(after, "1.3.0+git20260304.") {
		t.Errorf("versions %q, %q, %q; want 1.3.0~rc1, 1.3.0, 1.3.0+git20260304.HASH", rc, release, after)
	}
	order := []string{untagged, rc, release, after, "1.3.1"}
	for i := 1; i < len(order); i++ {
		if err := exec.Command("dpkg", "--compare-versions", order[i-1], "lt", order[i]).Run(); err != nil {
			t.Errorf("dpkg does not sort %s before %s", order[i-1], order[i])
		}
	}
}
