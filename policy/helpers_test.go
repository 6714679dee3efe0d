package policy

import (
	"net/netip"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/internal/testenv"
)

// london is the example config's timezone.
func london(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Skipf("no tz database: %v", err)
	}
	return loc
}

// at returns a local time in loc: at(loc, "2026-11-24 12:30").
func at(t testing.TB, loc *time.Location, s string) time.Time {
	t.Helper()
	tm, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatalf("bad test time %q: %v", s, err)
	}
	return tm
}

func clock(t testing.TB, s string) config.Clock {
	t.Helper()
	tm, err := time.Parse("15:04", s)
	if err != nil {
		t.Fatalf("bad test clock %q: %v", s, err)
	}
	return config.Clock(tm.Hour()*60 + tm.Minute())
}

var weekdays = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}

// exampleConfig is docs/example.yaml written in Go, so that
// the policy tests do not depend on the YAML loader.
func exampleConfig(t testing.TB) *config.Config {
	t.Helper()
	pfx := netip.MustParsePrefix
	studentBlock := []string{"adult", "gambling", "chat", "webmail", "streaming", "social", "games", "dating",
		"shopping", "drugs", "violence", "hate", "extremism", "self-harm", "malware",
		"phishing", "hacking", "piracy", "proxy-avoidance", "doh"}
	personal := []string{"webmail", "social", "shopping", "streaming", "chat"}
	return &config.Config{
		Path:     "example.yaml",
		Timezone: "Europe/London",
		Location: london(t),
		Clients:  []netip.Prefix{pfx("127.0.0.0/8"), pfx("10.0.0.0/8")},
		Proxy: config.Proxy{
			DenyDestinations: []netip.Prefix{pfx("127.0.0.0/8"), pfx("169.254.0.0/16"), pfx("::1/128")},
		},
		Networks: []config.Network{
			{Prefix: pfx("10.20.0.0/16"), Profile: "staff", Line: 38},
			{Prefix: pfx("10.10.0.0/16"), Profile: "student", Line: 39},
		},
		DefaultProfile: "student",
		Schedules: map[string]config.Schedule{
			"school-hours": {Days: weekdays, From: clock(t, "08:30"), To: clock(t, "15:30"), Line: 43},
			"lunch":        {Days: weekdays, From: clock(t, "12:15"), To: clock(t, "13:15"), Line: 44},
		},
		Profiles: map[string]config.Profile{
			"student": {SafeSearch: true, Default: "allow", Rules: []config.Rule{
				{Action: "allow", Categories: []string{"education"}, Line: 58},
				{Action: "block", Categories: studentBlock, Line: 60},
			}},
			"staff": {Default: "allow", Rules: []config.Rule{
				{Action: "block", Categories: []string{"adult", "gambling", "drugs", "hate", "extremism", "malware",
					"phishing", "hacking", "piracy", "proxy-avoidance", "doh"}, Line: 67},
				{Action: "allow", Categories: personal, When: []string{"lunch"}, Line: 70},
				{Action: "allow", Categories: personal, WhenNot: []string{"school-hours"}, Line: 73},
				{Action: "block", Categories: append(personal[:len(personal):len(personal)], "games", "dating"), Line: 76},
			}},
		},
	}
}

// testDB is a small database with the names the tests use.
func testDB(t testing.TB) *categories.DB {
	t.Helper()
	b := categories.NewBuilder()
	for _, e := range []struct {
		entry string
		c     categories.Category
	}{
		{"bet365.com", categories.Gambling},
		{"casino.example", categories.Gambling},
		{"gmail.com", categories.Webmail},
		{"outlook.com", categories.Webmail},
		{"facebook.com", categories.Social},
		{"khanacademy.org", categories.Education},
		{"youtube.com", categories.Streaming},
		{"youtube.com", categories.Education},
		{"music.youtube.com", categories.Streaming},
		{"roblox.com", categories.Games},
		{"bbc.co.uk/iplayer", categories.Streaming},
		{"pornhub.com", categories.Adult},
	} {
		if !b.Add(e.entry, e.c) {
			t.Fatalf("categories.Builder refused %q", e.entry)
		}
	}
	return b.Build()
}

func testUsers() []config.User {
	return []config.User{
		{Name: "alice", Profile: "staff", Line: 2},
		{Name: "bob", Profile: "student", Line: 3},
	}
}

func mustCompile(t testing.TB, cfg *config.Config, db *categories.DB, users []config.User) *Snapshot {
	t.Helper()
	s, err := Compile(cfg, db, users)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

// findUp returns the path of rel above the package folder, or "".
func findUp(t testing.TB, rel string) string { return testenv.FindUp(t, rel) }
