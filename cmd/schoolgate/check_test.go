package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// checkConfig is example.yaml with a users file and test-only list entries,
// written to a temporary folder; it returns the config's path.
func checkConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := "user,profile,password_hash\nalice,staff," + string(hash) + "\nbob,student," + string(hash) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "users.csv"), []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	const cfg = `timezone: Europe/London
listen: {proxy: "127.0.0.1:0", dns: "", admin: ""}
clients: [127.0.0.0/8, 10.0.0.0/8]
proxy:
  deny_destinations: [127.0.0.0/8, 169.254.0.0/16, "::1/128"]
users:
  file: users.csv
  require_auth: true
networks:
  10.20.0.0/16: staff
  10.10.0.0/16: student
default_profile: student
schedules:
  school-hours: { days: [mon, tue, wed, thu, fri], from: "08:30", to: "15:30" }
  lunch:        { days: [mon, tue, wed, thu, fri], from: "12:15", to: "13:15" }
lists:
  - category: gambling
    domains: [test-casino.example]
  - category: webmail
    domains: [test-webmail.example]
  - category: education
    domains: [test-school.example]
    urls: [test-video.example/lessons]
profiles:
  student:
    rules:
      - action: allow
        categories: [education]
      - action: block
        categories: [adult, gambling, chat, webmail, streaming, social, games]
    default: allow
  staff:
    rules:
      - action: block
        categories: [adult, gambling]
      - action: allow
        categories: [webmail, social]
        when: [lunch]
      - action: allow
        categories: [webmail, social]
        when_not: [school-hours]
      - action: block
        categories: [webmail, social, games]
    default: allow
log: {dir: logs}
`
	path := filepath.Join(dir, "schoolgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCheckT(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"check"}, args...), strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// checkLine is the JSON object of docs/contract.md §2.
type checkLine struct {
	Target     string   `json:"target"`
	Host       string   `json:"host"`
	User       string   `json:"user"`
	Profile    string   `json:"profile"`
	Categories []string `json:"categories"`
	Verdict    string   `json:"verdict"`
	Rule       string   `json:"rule"`
	Reason     string   `json:"reason"`
}

func decodeLines(t *testing.T, out string) []checkLine {
	t.Helper()
	var lines []checkLine
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		// Exactly the contract's fields, no more, no fewer.
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(l), &raw); err != nil {
			t.Fatalf("not JSON: %q: %v", l, err)
		}
		var keys []string
		for k := range raw {
			keys = append(keys, k)
		}
		if len(raw) != 8 {
			t.Errorf("line has fields %v, want the 8 of the contract", keys)
		}
		if string(raw["categories"]) == "null" {
			t.Errorf("categories is null, want []: %s", l)
		}
		var cl checkLine
		dec := json.NewDecoder(strings.NewReader(l))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cl); err != nil {
			t.Fatalf("decoding %q: %v", l, err)
		}
		lines = append(lines, cl)
	}
	return lines
}

func TestCheckUsage(t *testing.T) {
	cfg := checkConfig(t)
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no target", []string{"-config", cfg}, 2, "no TARGET"},
		{"bad -at", []string{"-config", cfg, "-at", "tuesday", "a.example"}, 2, `-at "tuesday"`},
		{"bad -ip", []string{"-config", cfg, "-ip", "10.0.0", "a.example"}, 2, `-ip "10.0.0" is not an IP address`},
		{"unknown user", []string{"-config", cfg, "-user", "mallory", "a.example"}, 2, `unknown user "mallory"`},
		{"unknown user without users file", []string{"-user", "mallory", "a.example"}, 2, `unknown user "mallory"`},
		{"unknown flag", []string{"-frobnicate", "a.example"}, 2, "flag provided but not defined"},
		{"help (printed on stdout: TestHelpEverywhere)", []string{"-h"}, 0, ""},
		{"missing config", []string{"-config", filepath.Join(t.TempDir(), "none.yaml"), "a.example"}, 1, "loading config"},
		{"bad target on the command line", []string{"-config", cfg, "-json", "a.example", "not a host", "b.example"}, 2, `"not a host" is not a URL or host name`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCheckT(t, "", tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr: %s)", code, tc.code, stderr)
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr %q does not contain %q", stderr, tc.stderr)
			}
			if strings.Contains(stderr, "goroutine") || strings.Contains(stderr, "panic") {
				t.Errorf("stack trace on stderr: %s", stderr)
			}
		})
	}
	t.Run("good targets still checked", func(t *testing.T) {
		_, out, _ := runCheckT(t, "", "-config", cfg, "-json", "a.example", "not a host", "b.example")
		lines := decodeLines(t, out)
		if len(lines) != 2 || lines[0].Host != "a.example" || lines[1].Host != "b.example" {
			t.Errorf("lines = %+v, want a.example and b.example", lines)
		}
	})
}

func TestCheckJSON(t *testing.T) {
	cfg := checkConfig(t)
	tests := []struct {
		name string
		args []string // after -config and -json
		want checkLine
	}{
		{"staff webmail at lunch", []string{"-user", "alice", "-at", "2026-11-24T12:30", "https://mail.test-webmail.example/inbox?x=1"},
			checkLine{"https://mail.test-webmail.example/inbox?x=1", "mail.test-webmail.example", "alice", "staff",
				[]string{"webmail"}, "allow", "staff#2", "category webmail is allowed for staff during lunch"}},
		{"staff webmail in class", []string{"-user", "alice", "-at", "2026-11-24T10:00", "test-webmail.example"},
			checkLine{"test-webmail.example", "test-webmail.example", "alice", "staff",
				[]string{"webmail"}, "block", "staff#4", "category webmail is blocked for staff"}},
		{"staff webmail after school", []string{"-user", "alice", "-at", "2026-11-24T16:00", "test-webmail.example"},
			checkLine{"test-webmail.example", "test-webmail.example", "alice", "staff",
				[]string{"webmail"}, "allow", "staff#3", "category webmail is allowed for staff outside school-hours"}},
		{"RFC 3339 time", []string{"-user", "alice", "-at", "2026-11-24T12:30:00Z", "test-webmail.example"},
			checkLine{"test-webmail.example", "test-webmail.example", "alice", "staff",
				[]string{"webmail"}, "allow", "staff#2", "category webmail is allowed for staff during lunch"}},
		{"RFC 3339 time with offset", []string{"-user", "alice", "-at", "2026-11-24T13:30:00+01:00", "test-webmail.example"},
			checkLine{"test-webmail.example", "test-webmail.example", "alice", "staff",
				[]string{"webmail"}, "allow", "staff#2", ""}},
		{"staff gambling", []string{"-user", "alice", "-at", "2026-11-24T12:30", "WWW.Test-Casino.Example."},
			checkLine{"WWW.Test-Casino.Example.", "www.test-casino.example", "alice", "staff",
				[]string{"gambling"}, "block", "staff#1", "category gambling is blocked for staff"}},
		{"student education", []string{"-user", "bob", "-at", "2026-11-24T10:00", "test-school.example"},
			checkLine{"test-school.example", "test-school.example", "bob", "student",
				[]string{"education"}, "allow", "student#1", "category education is allowed for student"}},
		{"student URL entry", []string{"-user", "bob", "-at", "2026-11-24T10:00", "http://test-video.example/lessons/1"},
			checkLine{"http://test-video.example/lessons/1", "test-video.example", "bob", "student",
				[]string{"education"}, "allow", "student#1", ""}},
		{"student unclassified", []string{"-user", "bob", "-at", "2026-11-24T10:00", "nothing-here.example"},
			checkLine{"nothing-here.example", "nothing-here.example", "bob", "student",
				[]string{}, "allow", "student#default", "no rule matched; student allows by default"}},
		{"network picks the profile", []string{"-ip", "10.20.1.1", "-at", "2026-11-24T10:00", "test-webmail.example"},
			checkLine{"test-webmail.example", "test-webmail.example", "", "staff",
				[]string{"webmail"}, "block", "staff#4", ""}},
		{"user beats network", []string{"-ip", "10.20.1.1", "-user", "bob", "-at", "2026-11-24T12:30", "test-webmail.example"},
			checkLine{"test-webmail.example", "test-webmail.example", "bob", "student",
				[]string{"webmail"}, "block", "student#2", ""}},
		{"not a client", []string{"-ip", "192.168.1.1", "test-school.example"},
			checkLine{"test-school.example", "test-school.example", "", "student",
				[]string{"education"}, "block", "not_a_client", ""}},
		{"deny destination", []string{"-user", "bob", "http://169.254.169.254/latest/meta-data"},
			checkLine{"http://169.254.169.254/latest/meta-data", "169.254.169.254", "bob", "student",
				[]string{}, "block", "deny_destinations", ""}},
		{"flags after the target", []string{"test-webmail.example", "-at", "2026-11-24T12:30", "-user", "alice"},
			checkLine{"test-webmail.example", "test-webmail.example", "alice", "staff",
				[]string{"webmail"}, "allow", "staff#2", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := runCheckT(t, "", append([]string{"-config", cfg, "-json"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			lines := decodeLines(t, out)
			if len(lines) != 1 {
				t.Fatalf("got %d lines, want 1: %s", len(lines), out)
			}
			got := lines[0]
			if tc.want.Reason == "" {
				got.Reason = ""
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestCheckStdin(t *testing.T) {
	cfg := checkConfig(t)
	in := "test-casino.example\n\n# a comment\n  https://test-school.example/x  \nbad host!\r\nnothing.example\r\n"
	code, out, stderr := runCheckT(t, in, "-config", cfg, "-json", "-user", "bob", "-")
	if code != 0 {
		t.Errorf("exit %d, want 0: junk lines on stdin are reported, not fatal", code)
	}
	if !strings.Contains(stderr, `"bad host!" is not a URL or host name`) {
		t.Errorf("stderr = %q, want the bad line named", stderr)
	}
	lines := decodeLines(t, out)
	var got []string
	for _, l := range lines {
		got = append(got, l.Host+" "+l.Verdict)
	}
	want := []string{"test-casino.example block", "test-school.example allow", "nothing.example allow"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	// A line too long to be a URL is named and skipped; the rest is checked,
	// the last line even without a newline.
	code, out, stderr = runCheckT(t, strings.Repeat("a", 200<<10)+"\nc.example\nd.example", "-config", cfg, "-json", "-")
	if code != 0 || !strings.Contains(stderr, "stdin line 1 is longer than") {
		t.Errorf("long line: exit %d, stderr %q", code, stderr)
	}
	if lines := decodeLines(t, out); len(lines) != 2 || lines[0].Host != "c.example" || lines[1].Host != "d.example" {
		t.Errorf("after a long line: %+v", lines)
	}
	// A target after - on the command line is checked after stdin.
	_, out, _ = runCheckT(t, "a.example\n", "-config", cfg, "-json", "-", "b.example")
	if lines := decodeLines(t, out); len(lines) != 2 || lines[0].Host != "a.example" || lines[1].Host != "b.example" {
		t.Errorf("lines = %+v", lines)
	}
}

func TestCheckHuman(t *testing.T) {
	cfg := checkConfig(t)
	code, out, stderr := runCheckT(t, "", "-config", cfg, "-user", "alice", "-ip", "10.20.1.1", "-at", "2026-11-24T12:30",
		"https://www.test-casino.example/en", "nothing.example")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want a header and 2: %q", len(lines), out)
	}
	for _, want := range []string{
		"# user alice from 10.20.1.1: profile staff, at Tue 2026-11-24 12:30 GMT; schedules open: lunch, school-hours",
		"https://www.test-casino.example/en  BLOCKED  gambling  rule staff#1 — category gambling is blocked for staff; HTTPS: decided on the host; the path is not visible without interception (profile staff, user alice)",
		"nothing.example  ALLOWED  unclassified  rule staff#default — no rule matched; staff allows by default (profile staff, user alice)",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// Without -config, check runs on the embedded default config.
func TestCheckEmbedded(t *testing.T) {
	code, out, stderr := runCheckT(t, "", "-json", "-at", "2026-11-24T10:00", "www.example.com")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := decodeLines(t, out)
	if len(lines) != 1 || lines[0].Host != "www.example.com" || lines[0].Profile == "" ||
		(lines[0].Verdict != "allow" && lines[0].Verdict != "block") || !strings.Contains(lines[0].Rule, "#") {
		t.Errorf("lines = %+v", lines)
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "tab\tnewline\ncr\r", "\x00\x01\x1f\x7f",
		"ünïcödé — ok", "bad \xff utf-8 \xc3", "line\u2028sep\u2029", "<script>&"} {
		checkJSONString(t, s)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\xff\xfe", "\u2028", "x\x00y", "https://exämple.com/?q=1&r=<2>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkJSONString(t, s) })
}

// checkJSONString: what appendJSONString writes is JSON that decodes to
// what encoding/json makes of the same string.
func checkJSONString(t *testing.T, s string) {
	t.Helper()
	b := appendJSONString(nil, s)
	if !utf8.Valid(b) {
		t.Fatalf("appendJSONString(%q) is not valid UTF-8: %q", s, b)
	}
	var got string
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("appendJSONString(%q) = %s: not a JSON string: %v", s, b, err)
	}
	ref, _ := json.Marshal(s)
	var want string
	if err := json.Unmarshal(ref, &want); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("appendJSONString(%q) decodes to %q, want %q", s, got, want)
	}
}

// BenchmarkCheckStdin runs `check -json -` on 100,000 names (a third of
// them listed in the embedded database's style, the rest unknown) on the
// embedded config, and reports names per second.
func BenchmarkCheckStdin(b *testing.B) {
	const n = 100000
	var in strings.Builder
	known := []string{"www.bet365.com", "mail.google.com", "www.youtube.com", "en.wikipedia.org", "www.khanacademy.org"}
	for i := 0; i < n; i++ {
		if i%3 == 0 {
			in.WriteString(known[i%len(known)])
		} else {
			in.WriteString("host")
			in.WriteString(strconv.Itoa(i))
			in.WriteString(".unlisted.example")
		}
		in.WriteByte('\n')
	}
	input := in.String()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var out, errb bytes.Buffer
		if code := run([]string{"check", "-json", "-"}, strings.NewReader(input), &out, &errb); code != 0 {
			b.Fatalf("exit %d: %s", code, errb.String())
		}
		if lines := strings.Count(out.String(), "\n"); lines != n {
			b.Fatalf("%d lines out, want %d", lines, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "names/s")
}
