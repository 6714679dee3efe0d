package report

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// TestWriteSample writes a realistic school day's log and its report to
// $SCHOOLGATE_REPORT_SAMPLE (for scripts/report-screenshot.sh); it skips
// when the variable is unset.
func TestWriteSample(t *testing.T) {
	dir := os.Getenv("SCHOOLGATE_REPORT_SAMPLE")
	if dir == "" {
		t.Skip("set SCHOOLGATE_REPORT_SAMPLE=DIR to write a sample log and report")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeDay(t, dir, "2026-11-20", sampleDay)
	day := at("2026-11-20", "00:00:00")
	r, err := Run(Options{Dir: dir, From: day, To: day, Location: london, SchoolHours: schoolHours,
		Title: "Hillside Academy"})
	if err != nil {
		t.Fatal(err)
	}
	for name, write := range map[string]func(*os.File) error{
		"report-2026-11-20.html": func(f *os.File) error { return r.WriteHTML(f) },
		"report-2026-11-20.csv":  func(f *os.File) error { return r.WriteCSV(f) },
	} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := write(f); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
}

var sampleNames = []string{"amelia.jones", "oliver.smith", "isla.brown", "noah.taylor", "ava.wilson",
	"leo.davies", "mia.evans", "jack.thomas", "ivy.roberts", "harry.johnson", "freya.walker", "oscar.wright",
	"lily.robinson", "george.thompson", "grace.white", "arthur.hughes", "sophia.edwards", "theo.green",
	"ella.hall", "finley.wood", "mr.patel", "ms.okafor", "mrs.clarke"}

// sampleDay is a plausible day: lessons 08:30–15:30, lunch traffic, a
// few incidents (one pupil retrying, one late at night), searches.
func sampleDay(lw *logWriter) {
	rng := rand.New(rand.NewPCG(7, 7))
	d := "2026-11-20"
	type h struct {
		host, url string
		cats      []string
		block     bool
	}
	allowed := []h{
		{"classroom.google.com", "", []string{"education"}, false},
		{"www.bbc.co.uk", "", nil, false},
		{"en.wikipedia.org", "", []string{"education"}, false},
		{"www.youtube.com", "", []string{"education", "streaming"}, false},
		{"teams.microsoft.com", "", nil, false},
		{"www.google.com", "", []string{"search-engines"}, false},
		{"www.mathsisfun.com", "", []string{"education"}, false},
		{"cdn.jsdelivr.net", "", nil, false},
	}
	blockedH := []h{
		{"www.tiktok.com", "", []string{"social"}, true},
		{"www.instagram.com", "", []string{"social"}, true},
		{"www.roblox.com", "", []string{"games"}, true},
		{"discord.com", "", []string{"chat"}, true},
		{"coolmathgames.com", "", []string{"games"}, true},
		{"www.netflix.com", "", []string{"streaming"}, true},
	}
	searches := []string{"photosynthesis diagram", "volcano eruption", "world war 2 timeline", "fractions worksheet",
		"how to draw a cat", "minecraft", "french verbs etre", "periodic table"}
	var evs []ev
	add := func(e ev) { evs = append(evs, e) }
	for i := 0; i < 6000; i++ {
		who := rng.IntN(len(sampleNames))
		user, ip, profile := sampleNames[who], fmt.Sprintf("10.10.%d.%d", who/10+1, who%10+20), "student"
		if who >= 20 {
			ip, profile = fmt.Sprintf("10.20.0.%d", who), "staff"
		}
		min := 8*60 + 25 + rng.IntN(7*60+10)
		if rng.IntN(6) == 0 {
			min = 12*60 + 15 + rng.IntN(60) // lunch
		}
		e := ev{ts: at(d, "00:00:00").Add(time.Duration(min)*time.Minute + time.Duration(rng.IntN(60))*time.Second),
			user: user, ip: ip, profile: profile, rule: profile + "#1"}
		if rng.IntN(4) == 0 {
			e.src, e.method, e.user = "dns", "A", ""
		}
		var x h
		if rng.IntN(9) == 0 {
			x = blockedH[rng.IntN(len(blockedH))]
			e.verdict, e.rule = "block", profile+"#2"
		} else {
			x = allowed[rng.IntN(len(allowed))]
		}
		e.host, e.cats, e.url = x.host, x.cats, x.url
		if x.host == "www.google.com" && e.src == "" {
			e.method = "GET"
			e.url = "http://www.google.com/search?q=" + searches[rng.IntN(len(searches))]
		}
		e.bytes = int64(rng.IntN(80000))
		add(e)
	}
	// Incidents.
	for i, hm := range []string{"10:41:03", "10:41:40", "10:43:12", "10:47:55", "10:52:10"} {
		add(ev{ts: at(d, hm), user: "jack.thomas", ip: "10.10.1.27", profile: "student", host: "www.pornhub.com",
			cats: []string{"adult"}, verdict: "block", rule: "student#2", method: []string{"CONNECT", "GET"}[i%2],
			url: []string{"", "http://www.pornhub.com/"}[i%2]})
	}
	add(ev{ts: at(d, "13:05:00"), user: "jack.thomas", ip: "10.10.1.27", profile: "student", host: "nordvpn.com",
		cats: []string{"proxy-avoidance"}, verdict: "block", rule: "student#2"})
	add(ev{ts: at(d, "22:47:10"), user: "isla.brown", ip: "10.10.1.22", profile: "student", method: "GET",
		host: "selfharm-forum.example", url: "http://selfharm-forum.example/how-to-hide-it", cats: []string{"self-harm"},
		verdict: "block", rule: "student#2"})
	add(ev{ts: at(d, "22:49:30"), user: "isla.brown", ip: "10.10.1.22", profile: "student", method: "GET",
		host: "www.google.com", url: "http://www.google.com/search?q=ways+to+hide+cuts", cats: []string{"search-engines"}})
	for _, hm := range []string{"11:15:00", "11:15:02", "14:02:00"} {
		add(ev{ts: at(d, hm), src: "dns", ip: "10.10.4.61", profile: "student", method: "HTTPS", host: "dns.google",
			cats: []string{"doh"}, verdict: "block", rule: "student#2"})
	}
	add(ev{ts: at(d, "09:12:00"), user: "theo.green", ip: "10.10.2.37", profile: "student", host: "www.thingiverse.com",
		verdict: "block", rule: "student#default"})
	add(ev{ts: at(d, "09:13:00"), user: "theo.green", ip: "10.10.2.37", profile: "student", host: "www.thingiverse.com",
		verdict: "block", rule: "student#default"})
	add(ev{ts: at(d, "14:22:00"), user: "mr.patel", ip: "10.20.0.20", profile: "staff", host: "phet.colorado.edu",
		cats: []string{"education", "games"}, verdict: "block", rule: "staff#4"})
	add(ev{ts: at(d, "15:10:00"), user: "oscar.wright", ip: "10.10.2.31", profile: "student", host: "www.4chan.org",
		cats: []string{"forums", "hate"}, verdict: "block", rule: "student#2"})
	// The log is in time order.
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].ts.Before(evs[j].ts) })
	for _, e := range evs {
		lw.write(e)
	}
	lw.raw(`{"ts":"2026-11-20T23:59:59.999Z","src":"proxy","user":"trunc`)
}
