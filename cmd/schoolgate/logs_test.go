package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/internal/testenv"
	"github.com/schoolgate/schoolgate/logging"
)

// writeTestLog writes n lines for date's day into dir through the real writer.
func writeTestLog(t *testing.T, dir string, date time.Time, n int) string {
	t.Helper()
	w, err := logging.Open(logging.Options{Dir: dir, Location: date.Location(), Now: func() time.Time { return date }})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		w.Log(&logging.Entry{Time: date.Add(time.Duration(i) * time.Second), Src: "proxy", User: "alice",
			IP: "10.10.1.7", Profile: "student", Method: "GET", Host: "www.example.com", Verdict: "allow",
			Rule: "student#default", HTTPStatus: 200})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return logging.PathFor(dir, date)
}

func TestLogsVerify(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	cfgFile := filepath.Join(base, "schoolgate.yaml")
	if err := os.WriteFile(cfgFile, config.EmbeddedYAML(), 0o640); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	logDir := cfg.Log.Dir
	if !strings.HasPrefix(logDir, base) {
		t.Fatalf("log dir %s is not under the config's folder %s", logDir, base)
	}
	day := time.Date(2026, 11, 20, 10, 0, 0, 0, london)
	good := writeTestLog(t, logDir, day, 12)
	bad := writeTestLog(t, logDir, day.AddDate(0, 0, 1), 12)
	b, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	lines = append(lines[:4], lines[5:]...) // line 5 removed
	if err := os.WriteFile(bad, bytes.Join(lines, nil), 0o640); err != nil {
		t.Fatal(err)
	}
	cut := writeTestLog(t, logDir, day.AddDate(0, 0, 2), 3)
	c := testenv.ReadFile(t, cut)
	if err := os.WriteFile(cut, c[:len(c)-10], 0o640); err != nil {
		t.Fatal(err)
	}
	copyDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(copyDir, filepath.Base(good)), testenv.ReadFile(t, good), 0o640); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		args       []string
		wantStatus int
		wantOut    string
		wantErr    string
	}{
		{"intact via config and date", []string{"verify", "-config", cfgFile, "-date", "2026-11-20"}, 0,
			good + ": 12 lines, chain intact", ""},
		{"tampered", []string{"verify", "-config", cfgFile, "-date", "2026-11-21"}, 1,
			"", bad + ": line 5: seq 6, expected 5 (a line was removed or inserted)"},
		{"last line cut (looked at twice: just modified)", []string{"verify", cut}, 1,
			"", cut + ": line 3: incomplete last line"},
		{"named files", []string{"verify", good, bad}, 1, good + ": 12 lines, chain intact", bad + ": line 5:"},
		{"a copy in another dir, no sidecar", []string{"verify", "-config", cfgFile, "-date", "2026-11-20", "-dir", copyDir}, 0,
			"no .tip sidecar", ""},
		{"every day", []string{"verify", "-config", cfgFile, "-all"}, 1,
			good + ": 12 lines, chain intact", bad + ": line 5:"},
		{"every day of an empty folder", []string{"verify", "-config", cfgFile, "-all", "-dir", t.TempDir()}, 2,
			"", "no access logs in"},
		{"-all and -date", []string{"verify", "-all", "-date", "2026-11-20"}, 2, "", "not both"},
		{"no log that day", []string{"verify", "-config", cfgFile, "-date", "2026-11-01"}, 2, "", "access-2026-11-01.jsonl"},
		{"bad date", []string{"verify", "-config", cfgFile, "-date", "20-11-2026"}, 2, "", `-date "20-11-2026": want YYYY-MM-DD`},
		{"no subcommand", nil, 2, "", "usage: schoolgate logs verify"},
		{"unknown subcommand", []string{"rotate"}, 2, "", "usage: schoolgate logs verify"},
		{"unknown flag", []string{"verify", "-force"}, 2, "", "flag provided but not defined"},
		{"files and flags", []string{"verify", "-date", "2026-11-20", good}, 2, "", "not both"},
		{"missing config", []string{"verify", "-config", filepath.Join(base, "nope.yaml")}, 2, "", "loading config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			got := run(append([]string{"logs"}, tt.args...), strings.NewReader(""), &stdout, &stderr)
			if got != tt.wantStatus {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", got, tt.wantStatus, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantOut) {
				t.Errorf("stdout %q does not contain %q", stdout.String(), tt.wantOut)
			}
			if !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.wantErr)
			}
		})
	}
}

// A day for which the writer set damaged parts aside at a restart is not
// one intact chain: verify says so and fails.
func TestLogsVerifySetAside(t *testing.T) {
	dir := t.TempDir()
	day := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	path := writeTestLog(t, dir, day, 3)
	if err := os.WriteFile(logging.TipPath(path), []byte("garbage"), 0o640); err != nil {
		t.Fatal(err)
	}
	writeTestLog(t, dir, day, 2) // the restart keeps the damaged sidecar aside
	var stdout, stderr bytes.Buffer
	code := run([]string{"logs", "verify", path}, strings.NewReader(""), &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "set aside damaged parts of this day") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}
