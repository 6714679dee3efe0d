package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/config"
)

var london = func() *time.Location {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return loc
}()

// schoolHours is the example config's school-hours schedule.
var schoolHours = []config.Schedule{{
	Days: []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday},
	From: 8*60 + 30, To: 15*60 + 30,
}}

func at(day, hm string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", day+" "+hm, london)
	if err != nil {
		panic(err)
	}
	return t
}

const hostileUser = `<script>alert("u")</script>`
const hostileHost = `<img src=x onerror=alert(1)>.evil.example`

// knownDay writes a day whose counts are known by construction. Friday
// 2026-11-20 is in GMT, so local time equals UTC.
func knownDay(lw *logWriter) {
	d := "2026-11-20"
	// alice: 10 allowed, 4 blocked adult (three within ten minutes:
	// repeated), 1 blocked gambling (not an incident category).
	for i := 0; i < 10; i++ {
		lw.write(ev{ts: at(d, "09:00:00").Add(time.Duration(i) * time.Minute), user: "alice", ip: "10.10.1.5",
			profile: "student", method: "GET", host: "classroom.google.com", cats: []string{"education"}, rule: "student#1"})
	}
	for _, hm := range []string{"10:00:00", "10:02:00", "10:05:00", "10:20:00"} {
		lw.write(ev{ts: at(d, hm), user: "alice", ip: "10.10.1.5", profile: "student",
			host: "www.pornhub.com", cats: []string{"adult"}, verdict: "block", rule: "student#2"})
	}
	lw.write(ev{ts: at(d, "11:00:00"), user: "alice", ip: "10.10.1.5", profile: "student",
		host: "www.bet365.com", cats: []string{"gambling"}, verdict: "block", rule: "student#2"})
	// bob: two devices, 5 allowed (one a Google search), 1 self-harm block
	// at 19:00 (out of hours, not repeated).
	for i := 0; i < 4; i++ {
		lw.write(ev{ts: at(d, "09:30:00").Add(time.Duration(i) * time.Second), user: "bob", ip: "10.10.1.6",
			profile: "student", host: "wikipedia.org", cats: []string{"education"}, rule: "student#1"})
	}
	lw.write(ev{ts: at(d, "13:00:00"), user: "bob", ip: "10.10.1.7", profile: "student", method: "GET",
		host: "www.google.com", url: "http://www.google.com/search?q=How+to+%3Cb%3Ebake%3C%2Fb%3E&hl=en",
		cats: []string{"search-engines"}})
	lw.write(ev{ts: at(d, "19:00:00"), user: "bob", ip: "10.10.1.7", profile: "student", method: "GET",
		host: "selfharm.example", url: "http://selfharm.example/page", cats: []string{"self-harm"},
		verdict: "block", rule: "student#2"})
	// an unknown user on 10.10.3.4: 3 allowed DNS queries, 2 blocked
	// proxy-avoidance queries half an hour apart.
	for i := 0; i < 3; i++ {
		lw.write(ev{ts: at(d, "11:30:00").Add(time.Duration(i) * time.Second), src: "dns", ip: "10.10.3.4",
			profile: "student", host: "www.bbc.co.uk"})
	}
	for _, hm := range []string{"12:00:00", "12:30:00"} {
		lw.write(ev{ts: at(d, hm), src: "dns", ip: "10.10.3.4", profile: "student", method: "HTTPS",
			host: "nordvpn.com", cats: []string{"proxy-avoidance"}, verdict: "block", rule: "student#2"})
	}
	// carol, staff: 2 allowed; one over-blocked education site.
	lw.write(ev{ts: at(d, "08:10:00"), user: "carol", ip: "10.20.0.9", profile: "staff", host: "www.bbc.co.uk"})
	lw.write(ev{ts: at(d, "15:45:00"), user: "carol", ip: "10.20.0.9", profile: "staff", host: "www.bbc.co.uk"})
	lw.write(ev{ts: at(d, "14:00:00"), user: "carol", ip: "10.20.0.9", profile: "staff",
		host: "science.example", cats: []string{"education", "streaming"}, verdict: "block", rule: "staff#4"})
	// Hostile text in user and host; a CSV-formula user name.
	lw.write(ev{ts: at(d, "14:10:00"), user: hostileUser, ip: "10.10.9.9", profile: "student",
		host: hostileHost, cats: []string{"adult"}, verdict: "block", rule: "student#2"})
	lw.write(ev{ts: at(d, "14:20:00"), user: "=HYPERLINK(\"http://x\")", ip: "10.10.9.10", profile: "student",
		host: "www.bbc.co.uk"})
	// Malformed lines: skipped and counted.
	lw.raw(`{"ts":"2026-11-20T14:30:00.000Z","src":"proxy"`)
	lw.raw(`not json at all`)
	lw.raw(`{"ts":"yesterday","src":"proxy","user":"x","verdict":"allow"}`)
}

func runKnown(t *testing.T) (*Report, string) {
	t.Helper()
	dir := t.TempDir()
	writeDay(t, dir, "2026-11-20", knownDay)
	day := at("2026-11-20", "00:00:00")
	r, err := Run(Options{Dir: dir, From: day, To: day, Location: london, SchoolHours: schoolHours,
		Now: func() time.Time { return at("2026-11-21", "07:00:00") }})
	if err != nil {
		t.Fatal(err)
	}
	return r, dir
}

func TestTotals(t *testing.T) {
	r, _ := runKnown(t)
	checks := []struct {
		name      string
		got, want int64
	}{
		{"requests", r.Requests, 31},
		{"blocked", r.Blocked, 10},
		{"dns", r.DNS, 5},
		{"proxy", r.Proxy, 26},
		{"malformed", r.Malformed, 3},
		{"devices", int64(r.Devices), 7},
		{"named users", int64(r.DistinctUsers), 5},
		{"incident attempts", r.IncidentAttempts, 8}, // alice 4, bob 1, unknown 2, hostile 1
		{"busiest hour", int64(r.BusiestHour), 9},
		// out of hours: carol 08:10, 15:45 and bob 19:00
		{"out of hours", r.OutOfHours, 3},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if got := r.Hours[10].Blocked; got != 4 {
		t.Errorf("10:00 blocked = %d, want 4", got)
	}
	if len(r.MalformedAt) != 3 || r.MalformedAt[0] != "access-2026-11-20.jsonl:32" {
		t.Errorf("MalformedAt = %v", r.MalformedAt)
	}
}

func TestCSVExact(t *testing.T) {
	r, _ := runKnown(t)
	var buf bytes.Buffer
	if err := r.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v\n%s", err, buf.String())
	}
	want := [][]string{
		CSVHeader,
		{hostileUser, "student", "1", "1", "2026-11-20 14:10:00", "2026-11-20 14:10:00", "adult", "1", "0", "10.10.9.9", "adult"},
		{`'=HYPERLINK("http://x")`, "student", "1", "0", "2026-11-20 14:20:00", "2026-11-20 14:20:00", "", "0", "0", "10.10.9.10", "unclassified"},
		{"alice", "student", "15", "5", "2026-11-20 09:00:00", "2026-11-20 11:00:00", "adult", "4", "0", "10.10.1.5", "education adult gambling"},
		{"bob", "student", "6", "1", "2026-11-20 09:30:00", "2026-11-20 19:00:00", "self-harm", "1", "1", "10.10.1.6 10.10.1.7", "education search-engines self-harm"},
		{"carol", "staff", "3", "1", "2026-11-20 08:10:00", "2026-11-20 15:45:00", "education", "0", "2", "10.20.0.9", "unclassified education streaming"},
		{"(unknown) 10.10.3.4", "student", "5", "2", "2026-11-20 11:30:00", "2026-11-20 12:30:00", "proxy-avoidance", "2", "0", "10.10.3.4", "unclassified proxy-avoidance"},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d:\n%s", len(rows), len(want), buf.String())
	}
	for i := range want {
		if strings.Join(rows[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("row %d:\n got %q\nwant %q", i, rows[i], want[i])
		}
	}
}

func TestIncidents(t *testing.T) {
	r, _ := runKnown(t)
	type row struct {
		user, ip, host string
		count          int64
		repeated       bool
		ooh            int64
		dns            int64
	}
	want := []row{
		{hostileUser, "10.10.9.9", hostileHost, 1, false, 0, 0},
		{"alice", "10.10.1.5", "www.pornhub.com", 4, true, 0, 0},
		{"bob", "10.10.1.7", "selfharm.example", 1, false, 1, 0},
		{"", "10.10.3.4", "nordvpn.com", 2, false, 0, 2},
	}
	if len(r.Incidents) != len(want) {
		for _, in := range r.Incidents {
			t.Logf("%+v", *in)
		}
		t.Fatalf("got %d incident rows, want %d", len(r.Incidents), len(want))
	}
	for i, w := range want {
		in := r.Incidents[i]
		got := row{in.User, in.IP, in.Host, in.Count, in.Repeated, in.OutOfHours, in.DNS}
		if got != w {
			t.Errorf("incident %d = %+v, want %+v", i, got, w)
		}
	}
	alice := r.Incidents[1]
	if !alice.First.Equal(at("2026-11-20", "10:00:00")) || !alice.Last.Equal(at("2026-11-20", "10:20:00")) {
		t.Errorf("alice first/last = %v/%v", alice.First, alice.Last)
	}
	if got := alice.Categories.String(); got != "adult" || alice.Rule != "student#2" {
		t.Errorf("alice categories/rule = %q/%q", got, alice.Rule)
	}
	if r.Incidents[2].URL != "http://selfharm.example/page" {
		t.Errorf("bob URL = %q", r.Incidents[2].URL)
	}
}

func TestRepeatedNeedsThreeInTenMinutes(t *testing.T) {
	cases := []struct {
		name  string
		times []string
		want  bool
	}{
		{"three in ten minutes", []string{"10:00:00", "10:04:00", "10:10:00"}, true},
		{"three spread out", []string{"10:00:00", "10:06:00", "10:12:00"}, false},
		{"two close", []string{"10:00:00", "10:00:01"}, false},
		{"late burst", []string{"08:00:00", "10:00:00", "10:01:00", "10:02:00"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeDay(t, dir, "2026-11-20", func(lw *logWriter) {
				for _, hm := range c.times {
					lw.write(ev{ts: at("2026-11-20", hm), user: "dan", ip: "10.10.1.1", profile: "student",
						host: "x.example", cats: []string{"hacking"}, verdict: "block"})
				}
			})
			day := at("2026-11-20", "00:00:00")
			r, err := Run(Options{Dir: dir, From: day, To: day, Location: london})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Incidents) != 1 || r.Incidents[0].Repeated != c.want {
				t.Fatalf("incidents %+v, want one with repeated=%v", r.Incidents, c.want)
			}
		})
	}
}

func TestHTMLEscapesLogText(t *testing.T) {
	r, _ := runKnown(t)
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, bad := range []string{"<script>alert", "<img src=x", "<b>bake"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains unescaped %q", bad)
		}
	}
	for _, good := range []string{"&lt;script&gt;alert(&#34;u&#34;)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;.evil.example",
		"how to &lt;b&gt;bake&lt;/b&gt;", "www.pornhub.com", "(unknown user) — device 10.10.3.4", "Blocked by schoolgate",
		"Friday 20 November 2026"} {
		if !strings.Contains(page, good) {
			t.Errorf("page lacks %q", good)
		}
	}
	// Self-contained: nothing fetched from elsewhere.
	for _, ext := range []string{"<script", "<link", "src=\"http", "@import", "url("} {
		if strings.Contains(page, ext) {
			t.Errorf("page references external content: %q", ext)
		}
	}
	// Incidents come before the other detail sections.
	if i, j := strings.Index(page, "<h2>Incidents"), strings.Index(page, "<h2>People"); i < 0 || j < 0 || i > j {
		t.Errorf("incidents section not before people (%d, %d)", i, j)
	}
}

func TestSearchTerms(t *testing.T) {
	dir := t.TempDir()
	urls := []struct{ host, url, want string }{
		{"www.google.co.uk", "http://www.google.co.uk/search?q=Volcano+Facts", "volcano facts"},
		{"www.bing.com", "http://www.bing.com/search?q=fractions&form=x", "fractions"},
		{"duckduckgo.com", "https://duckduckgo.com/?q=weather", "weather"},
		{"www.youtube.com", "https://www.youtube.com/results?search_query=minecraft", "minecraft"},
		{"search.yahoo.com", "https://search.yahoo.com/search?p=maths", "maths"},
		{"www.google.com", "https://www.google.com/maps?q=london", ""}, // not a search
		{"notgoogle.example", "https://notgoogle.example/search?q=x", ""},
	}
	writeDay(t, dir, "2026-11-20", func(lw *logWriter) {
		for _, u := range urls {
			lw.write(ev{ts: at("2026-11-20", "10:00:00"), user: "eve", ip: "10.10.1.2", profile: "student",
				method: "GET", host: u.host, url: u.url})
		}
	})
	day := at("2026-11-20", "00:00:00")
	r, err := Run(Options{Dir: dir, From: day, To: day, Location: london})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, s := range r.Searches {
		got[s.Term] = true
	}
	n := 0
	for _, u := range urls {
		if u.want == "" {
			continue
		}
		n++
		if !got[u.want] {
			t.Errorf("search %q not found in %v", u.want, got)
		}
	}
	if len(r.Searches) != n {
		t.Errorf("got %d searches, want %d", len(r.Searches), n)
	}
}

func TestWeek(t *testing.T) {
	dir := t.TempDir()
	// Mon 16 to Sun 22 Nov 2026; Wednesday missing.
	for i, day := range []string{"2026-11-16", "2026-11-17", "2026-11-19", "2026-11-20", "2026-11-21", "2026-11-22"} {
		writeDay(t, dir, day, func(lw *logWriter) {
			for j := 0; j <= i; j++ {
				lw.write(ev{ts: at(day, "10:00:00").Add(time.Duration(j) * time.Minute), user: "alice", ip: "10.10.1.5",
					profile: "student", host: "www.pornhub.com", cats: []string{"adult"}, verdict: "block"})
			}
		})
	}
	r, err := Run(Options{Dir: dir, From: at("2026-11-16", "00:00:00"), To: at("2026-11-22", "00:00:00"), Location: london})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 21 || r.Blocked != 21 {
		t.Errorf("requests/blocked = %d/%d, want 21/21", r.Requests, r.Blocked)
	}
	if len(r.MissingDays) != 1 || r.MissingDays[0] != "2026-11-18" {
		t.Errorf("missing days = %v", r.MissingDays)
	}
	if len(r.Days) != 6 || r.Days[5].Requests != 6 {
		t.Errorf("days = %+v", r.Days)
	}
	// One incident row per day for the same user and host.
	if len(r.Incidents) != 6 {
		t.Errorf("got %d incident rows, want 6", len(r.Incidents))
	}
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "Activity by day") || !strings.Contains(buf.String(), "No log for 2026-11-18") {
		t.Error("weekly page lacks the day chart or the missing day")
	}
}

func TestDamagedFileIsRead(t *testing.T) {
	dir := t.TempDir()
	writeDay(t, dir, "2026-11-20", func(lw *logWriter) {
		lw.write(ev{ts: at("2026-11-20", "10:00:00"), user: "a", ip: "10.0.0.1", profile: "student", host: "x.example"})
	})
	path := filepath.Join(dir, "access-2026-11-20.jsonl")
	if err := os.Rename(path, path+".damaged-20261120T100500"); err != nil {
		t.Fatal(err)
	}
	writeDay(t, dir, "2026-11-20", func(lw *logWriter) {
		lw.write(ev{ts: at("2026-11-20", "11:00:00"), user: "a", ip: "10.0.0.1", profile: "student", host: "x.example"})
	})
	day := at("2026-11-20", "00:00:00")
	r, err := Run(Options{Dir: dir, From: day, To: day, Location: london})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 2 || len(r.DamagedFiles) != 1 {
		t.Errorf("requests %d, damaged files %v; want 2 and the damaged file", r.Requests, r.DamagedFiles)
	}
}

// A day with no log (a weekend, a holiday) gives an empty report that says
// so and where it looked, not a failure of the technician's daily job.
func TestMissingDay(t *testing.T) {
	day := at("2026-11-20", "00:00:00")
	dir := t.TempDir()
	r, err := Run(Options{Dir: dir, From: day, To: day, Location: london})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if r.Requests != 0 || len(r.MissingDays) != 1 || r.MissingDays[0] != "2026-11-20" {
		t.Fatalf("requests %d, missing %v", r.Requests, r.MissingDays)
	}
	var b strings.Builder
	if err := r.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "No access log was found for this day") || !strings.Contains(b.String(), dir) {
		t.Errorf("the page does not say the log is missing and where it looked")
	}
}

func TestEmptyAndOversizedLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access-2026-11-20.jsonl")
	big := `{"ts":"2026-11-20T10:00:00.000Z","host":"` + strings.Repeat("a", 2<<20) + `","verdict":"allow"}`
	good := `{"ts":"2026-11-20T10:00:00.000Z","src":"proxy","user":"a","ip":"1.2.3.4","verdict":"allow"}`
	if err := os.WriteFile(path, []byte("\n"+big+"\n"+good+"\n\n"+good), 0o600); err != nil {
		t.Fatal(err)
	}
	day := at("2026-11-20", "00:00:00")
	r, err := Run(Options{Dir: dir, From: day, To: day, Location: london})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 2 || r.Malformed != 1 {
		t.Errorf("requests/malformed = %d/%d, want 2/1", r.Requests, r.Malformed)
	}
}

// The report reads "out of hours" by the policy's schedule rule
// (policy.ScheduleOpen, tested there); the days a report prints.
func TestDayRanges(t *testing.T) {
	for want, days := range map[string][]time.Weekday{
		"Mon–Fri":     {1, 2, 3, 4, 5},
		"Mon Wed Fri": {1, 3, 5},
		"Sun Mon":     {0, 1},
		"Sun–Tue Sat": {0, 1, 2, 6},
		"":            nil,
	} {
		if got := dayRanges(days); got != want {
			t.Errorf("dayRanges(%v) = %q, want %q", days, got, want)
		}
	}
}

func TestParserMatchesEncodingJSON(t *testing.T) {
	var buf bytes.Buffer
	lw := newLogWriter(&buf)
	lw.write(ev{ts: at("2026-11-20", "10:00:00"), user: "é\"\\\u2028x", ip: "10.0.0.1", profile: "p",
		host: "a\tb", url: "http://x/?q=\u00e9", cats: []string{"adult", "hate"}, verdict: "block", bytes: 42})
	lw.flush()
	var p parser
	var l line
	b := bytes.TrimSpace(buf.Bytes())
	if err := p.parse(b, &l); err != nil {
		t.Fatal(err)
	}
	var std struct {
		User, Host, URL string
		Categories      []string
		Status          json.RawMessage
		Bytes           int64
	}
	if err := json.Unmarshal(b, &std); err != nil {
		t.Fatal(err)
	}
	if string(l.user) != std.User || string(l.host) != std.Host || string(l.url) != std.URL ||
		len(l.categories) != 2 || string(l.categories[1]) != "hate" || string(l.status) != string(std.Status) || l.bytes != 42 {
		t.Errorf("parser %q %q %q %q %s %d; encoding/json %+v", l.user, l.host, l.url, l.categories, l.status, l.bytes, std)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"ts":"2026-11-20T10:00:00.000Z","src":"dns","user":"","ip":"10.0.0.1","profile":"student","method":"A","host":"x","url":"","categories":["adult"],"verdict":"block","rule":"student#2","status":"NXDOMAIN","bytes":0,"ms":0.2,"seq":1,"hash":"ab"}`))
	f.Add([]byte(`{"ts":"2026-11-20T10:00:00Z","user":"a\u0000\"b","verdict":"allow","categories":[]}`))
	f.Add([]byte(`{"ts":"x"`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p parser
		var l line
		if p.parse(b, &l) == nil {
			// Whatever the parser accepts must be valid JSON with a ts.
			if !json.Valid(b) {
				t.Fatalf("accepted invalid JSON %q", b)
			}
			a, _ := NewAggregator(Options{})
			a.add(&l)
		}
	})
}

func TestLargeDayPageAndCSV(t *testing.T) {
	// Enough users, hosts and searches to hit every cap and "more" line.
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "access-2026-11-20.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	if err := genRandomDay(f, day, 20000, 3); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r, err := Run(Options{Dir: dir, From: day, To: day, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 20000 || r.Malformed != 0 {
		t.Fatalf("requests/malformed = %d/%d", r.Requests, r.Malformed)
	}
	var sum, blocked int64
	for _, u := range r.Users {
		sum += u.Requests
		blocked += u.Blocked
	}
	if sum != r.Requests || blocked != r.Blocked {
		t.Errorf("per-user sums %d/%d differ from totals %d/%d", sum, blocked, r.Requests, r.Blocked)
	}
	var page, table bytes.Buffer
	if err := r.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), "more in the CSV file") {
		t.Error("page lacks the note about users left out")
	}
	if len(r.Incidents) <= 1000 {
		t.Fatalf("only %d incident rows; the test wants more than the page shows", len(r.Incidents))
	}
	if !strings.Contains(page.String(), fmtNum(int64(len(r.Incidents)-1000))+" more incident rows are not shown") {
		t.Error("page lacks the note about incident rows left out")
	}
	if err := r.WriteCSV(&table); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&table).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(r.Users)+1 {
		t.Errorf("%d CSV rows for %d users", len(rows)-1, len(r.Users))
	}
}

func TestTopKExactUnderCapacity(t *testing.T) {
	tk := newTopK(4)
	for _, h := range []string{"a", "b", "a", "c", "a", "b", "d"} {
		tk.add([]byte(h), 0)
	}
	got := tk.top(2)
	if len(got) != 2 || got[0].key != "a" || got[0].count != 3 || got[1].key != "b" || got[1].count != 2 || got[0].err != 0 {
		t.Errorf("top = %+v", got)
	}
	// Over capacity, a heavy hitter is still found.
	tk = newTopK(3)
	for i := 0; i < 100; i++ {
		tk.add([]byte("heavy"), 0)
		tk.add([]byte(fmt.Sprint("tail", i)), 0)
	}
	if top := tk.top(1); top[0].key != "heavy" || top[0].count < 100 {
		t.Errorf("top over capacity = %+v", top)
	}
}
