package main

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/config"
)

func TestReportPeriod(t *testing.T) {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	now := time.Date(2026, 11, 23, 0, 30, 0, 0, loc) // just after midnight Monday
	cases := []struct {
		name     string
		f        reportFlags
		from, to string
		bad      string
	}{
		{"default is yesterday", reportFlags{}, "2026-11-22", "2026-11-22", ""},
		{"date", reportFlags{date: "2026-11-20"}, "2026-11-20", "2026-11-20", ""},
		{"week ending date", reportFlags{date: "2026-11-20", week: true}, "2026-11-14", "2026-11-20", ""},
		{"week ending yesterday", reportFlags{week: true}, "2026-11-16", "2026-11-22", ""},
		{"from-to", reportFlags{from: "2026-11-01", to: "2026-11-07"}, "2026-11-01", "2026-11-07", ""},
		{"from alone", reportFlags{from: "2026-11-01"}, "2026-11-01", "2026-11-01", ""},
		{"bad date", reportFlags{date: "20/11/2026"}, "", "", "want a date"},
		{"to before from", reportFlags{from: "2026-11-07", to: "2026-11-01"}, "", "", "before"},
		{"both forms", reportFlags{date: "2026-11-07", from: "2026-11-01"}, "", "", "not both"},
		{"to alone", reportFlags{to: "2026-11-01"}, "", "", "needs -from"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			from, to, err := reportPeriod(c.f, now, loc)
			if c.bad != "" {
				if err == nil || !strings.Contains(err.Error(), c.bad) {
					t.Fatalf("err = %v, want one containing %q", err, c.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := from.Format(time.DateOnly) + " " + to.Format(time.DateOnly); got != c.from+" "+c.to {
				t.Errorf("period = %s, want %s %s", got, c.from, c.to)
			}
		})
	}
}

func TestReportCommand(t *testing.T) {
	logDir, out := t.TempDir(), filepath.Join(t.TempDir(), "reports")
	lines := `{"ts":"2026-11-20T10:00:00.000Z","src":"proxy","user":"alice","ip":"10.10.1.5","profile":"student","method":"CONNECT","host":"www.pornhub.com","url":"","categories":["adult"],"verdict":"block","rule":"student#2","status":403,"bytes":0,"ms":1.2,"seq":1,"hash":"aa"}
{"ts":"2026-11-20T10:01:00.000Z","src":"dns","user":"","ip":"10.10.3.4","profile":"student","method":"A","host":"www.bbc.co.uk","url":"","categories":[],"verdict":"allow","rule":"student#default","status":"NOERROR","bytes":80,"ms":3,"seq":2,"hash":"bb"}
garbage
`
	if err := os.WriteFile(filepath.Join(logDir, "access-2026-11-20.jsonl"), []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Location: time.UTC, Log: config.Log{Dir: logDir}}
	var stdout, stderr bytes.Buffer
	if code := reportFor(cfg, reportFlags{date: "2026-11-20", out: out}, time.Now(), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "skipped 1 malformed") {
		t.Errorf("stderr = %q, want the malformed line counted", stderr.String())
	}
	page, err := os.ReadFile(filepath.Join(out, "report-2026-11-20.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte("www.pornhub.com")) {
		t.Error("HTML lacks the incident")
	}
	f, err := os.Open(filepath.Join(out, "report-2026-11-20.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[1][0] != "alice" || rows[1][3] != "1" || rows[2][0] != "(unknown) 10.10.3.4" {
		t.Errorf("CSV rows = %q", rows)
	}

	// A day without a log: nothing written, a clear message, exit 1, so
	// that a cron job notices a gateway that stopped logging.
	stderr.Reset()
	if code := reportFor(cfg, reportFlags{date: "2026-11-19", out: out}, time.Now(), &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "no access log for 2026-11-19 in "+logDir) ||
		!strings.Contains(stderr.String(), "nothing written") {
		t.Errorf("missing day: exit %d, stderr %q", code, stderr.String())
	}
	for _, ext := range []string{".html", ".csv"} {
		if _, err := os.Stat(filepath.Join(out, "report-2026-11-19"+ext)); err == nil {
			t.Errorf("missing day: report-2026-11-19%s was written", ext)
		}
	}
	// A week with one day's log is still reported (the others are named).
	stderr.Reset()
	if code := reportFor(cfg, reportFlags{from: "2026-11-18", to: "2026-11-20", out: out}, time.Now(), &stdout, &stderr); code != 0 ||
		!strings.Contains(stderr.String(), "no access log for 2026-11-18, 2026-11-19") {
		t.Errorf("partly missing period: exit %d, stderr %q", code, stderr.String())
	}
	// The weekly form names its files after the period.
	if code := reportFor(cfg, reportFlags{date: "2026-11-20", week: true, out: out}, time.Now(), &stdout, &stderr); code != 0 {
		t.Fatalf("week: exit %d: %s", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, "report-2026-11-14_to_2026-11-20.html")); err != nil {
		t.Error(err)
	}
}

// Without -out, reports go to reports/ under the working folder.
func TestReportDefaultFolder(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Mkdir("logs", 0o750); err != nil {
		t.Fatal(err)
	}
	line := `{"ts":"2026-11-20T09:59:59.000Z","src":"proxy","user":"","ip":"10.10.1.5","profile":"student","method":"CONNECT","host":"www.bbc.co.uk","url":"","categories":[],"verdict":"block","rule":"proxy_auth","status":407,"bytes":0,"ms":1,"seq":1,"hash":"a0"}` + "\n" +
		`{"ts":"2026-11-20T10:00:00.000Z","src":"proxy","user":"alice","ip":"10.10.1.5","profile":"student","method":"CONNECT","host":"www.bbc.co.uk","url":"","categories":[],"verdict":"allow","rule":"student#default","status":200,"bytes":0,"ms":1,"seq":2,"hash":"aa"}` + "\n"
	if err := os.WriteFile(filepath.Join("logs", "access-2026-11-20.jsonl"), []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"report", "-date", "2026-11-20"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "1 requests, 0 blocked") || !strings.Contains(stdout.String(), "counted apart: 1 sign-in prompts") {
		t.Errorf("stdout %q", stdout.String())
	}
	for _, ext := range []string{".html", ".csv"} {
		if _, err := os.Stat(filepath.Join(dir, "reports", "report-2026-11-20"+ext)); err != nil {
			t.Error(err)
		}
	}
	// And a day with no log writes nothing there, exit 1.
	if code := run([]string{"report", "-date", "2026-11-19"}, nil, &stdout, &stderr); code != 1 {
		t.Errorf("day without a log: exit %d, want 1", code)
	}
}

func TestReportFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"report", "-date", "2026-11-20", "extra"}, nil, &stdout, &stderr); code != 2 {
		t.Errorf("extra argument: exit %d, want 2", code)
	}
	if code := run([]string{"report", "-bogus"}, nil, &stdout, &stderr); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
}

func TestReportThroughConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := `timezone: Europe/London
default_profile: student
schedules:
  school-hours: { days: [mon, tue, wed, thu, fri], from: "09:00", to: "15:00" }
profiles:
  student:
    default: allow
log:
  dir: logs
proxy:
  block_page:
    organisation: "Hillside <Academy>"
`
	if err := os.WriteFile(filepath.Join(dir, "sg.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "logs"), 0o750); err != nil {
		t.Fatal(err)
	}
	// 08:45 local is before this config's school hours: out of hours.
	line := `{"ts":"2026-11-20T08:45:00.000Z","src":"proxy","user":"bob","ip":"10.10.1.6","profile":"student","method":"CONNECT","host":"gore.example","url":"","categories":["violence"],"verdict":"block","rule":"student#1","status":403,"bytes":0,"ms":1,"seq":1,"hash":"aa"}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "logs", "access-2026-11-20.jsonl"), []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	code := run([]string{"report", "-config", filepath.Join(dir, "sg.yaml"), "-date", "2026-11-20", "-out", out}, nil, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	page, err := os.ReadFile(filepath.Join(out, "report-2026-11-20.html"))
	if err != nil {
		t.Fatal(err)
	}
	// The legend has one out-of-hours tag; the incident row must add another.
	if n := bytes.Count(page, []byte(`t-ooh">out of hours</span>`)); n != 2 {
		t.Errorf("%d out-of-hours tags, want the legend's and the incident's", n)
	}
	for _, want := range []string{"Hillside &lt;Academy&gt;", "Mon–Fri 09:00–15:00", "gore.example"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("page lacks %q", want)
		}
	}
}
