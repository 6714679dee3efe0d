package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// httpsCheckConfig is checkConfig with a URL entry for
// test-games.example/games (games: blocked for students) and, when
// intercept is not "", a proxy.intercept with those settings.
func httpsCheckConfig(t *testing.T, intercept string) string {
	t.Helper()
	path := checkConfig(t)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "lists:\n", "lists:\n  - category: games\n    urls: [test-games.example/games]\n", 1)
	if intercept != "" {
		dir := filepath.Dir(path)
		for _, f := range []string{"ca.pem", "ca.key"} {
			if err := os.WriteFile(filepath.Join(dir, f), []byte("not read by check\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		cfg = strings.Replace(cfg, "proxy:\n", "proxy:\n  intercept: {ca_cert: ca.pem, ca_key: ca.key, "+intercept+"}\n", 1)
	}
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// check decides an https:// target as the proxy does: on the host unless
// the proxy intercepts the host.
func TestCheckHTTPSPath(t *testing.T) {
	const note = "HTTPS: decided on the host; the path is not visible without interception"
	targets := []string{"https://test-games.example/games", "http://test-games.example/games",
		"test-games.example/games", "HTTPS://test-games.example/games/x?y=1", "https://test-games.example/", "wss://test-games.example/games"}
	for _, tc := range []struct {
		name, intercept string
		verdicts        []string
		noted           []bool
	}{
		{"no interception", "", []string{"allow", "block", "block", "allow", "allow", "allow"},
			[]bool{true, false, false, true, false, true}},
		{"another host intercepted", "domains: [other.example]", []string{"allow", "block", "block", "allow", "allow", "allow"},
			[]bool{true, false, false, true, false, true}},
		{"host intercepted", "domains: [test-games.example]", []string{"block", "block", "block", "block", "allow", "block"},
			[]bool{false, false, false, false, false, false}},
		{"unclassified hosts intercepted", "categories: [unclassified]", []string{"block", "block", "block", "block", "allow", "block"},
			[]bool{false, false, false, false, false, false}},
		{"every host intercepted", "domains: []", []string{"block", "block", "block", "block", "allow", "block"},
			[]bool{false, false, false, false, false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := httpsCheckConfig(t, tc.intercept)
			args := append([]string{"-json", "-config", cfg, "-ip", "10.10.1.1", "-at", "2026-11-24T10:00"}, targets...)
			code, out, stderr := runCheckT(t, "", args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			lines := decodeLines(t, out)
			if len(lines) != len(targets) {
				t.Fatalf("%d lines for %d targets: %s", len(lines), len(targets), out)
			}
			for i, l := range lines {
				if l.Verdict != tc.verdicts[i] {
					t.Errorf("%s: verdict %s (%s), want %s", targets[i], l.Verdict, l.Reason, tc.verdicts[i])
				}
			}

			args = append([]string{"-config", cfg, "-ip", "10.10.1.1", "-at", "2026-11-24T10:00"}, targets...)
			code, out, stderr = runCheckT(t, "", args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			human := strings.Split(strings.TrimSuffix(out, "\n"), "\n")[1:]
			if len(human) != len(targets) {
				t.Fatalf("%d lines for %d targets: %s", len(human), len(targets), out)
			}
			for i, l := range human {
				if got := strings.Contains(l, "; "+note+" (profile student)"); got != tc.noted[i] {
					t.Errorf("line %q: note shown %v, want %v", l, got, tc.noted[i])
				}
			}
		})
	}
}

func TestIsTLSTarget(t *testing.T) {
	for in, want := range map[string]bool{
		"https://a.example/x": true, " HTTPS://a.example": true, "wss://a.example/s": true,
		"http://a.example/x": false, "a.example/x": false, "https:/a.example": false, "": false, "ftp://a.example": false,
	} {
		if got := isTLSTarget(in); got != want {
			t.Errorf("isTLSTarget(%q) = %v, want %v", in, got, want)
		}
	}
}
