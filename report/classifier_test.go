package report

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// classifierDay writes lines the content classifier spoke on: a pupil's
// own reflected search blocked as served, another pupil blocked only by
// the classifier's memory of the host (proxy and DNS), and near misses.
func classifierDay(lw *logWriter) {
	d := "2026-11-20"
	line := func(hm, src, user, ip, method, host, url, cats, verdict, rule, classified string) {
		status := "200"
		if src == "dns" {
			status = `"NOERROR"`
			if verdict == "block" {
				status = `"NXDOMAIN"`
			}
		} else if verdict == "block" {
			status = "403"
		}
		cl := ""
		if classified != "" {
			cl = `,"classified":` + jstr(classified)
		}
		lw.raw(fmt.Sprintf(`{"ts":%q,"src":%q,"user":%s,"ip":%q,"profile":"student","method":%q,"host":%q,"url":%s,"categories":%s,"verdict":%q,"rule":%q,"status":%s,"bytes":0,"ms":1.5%s,"seq":1,"hash":"00"}`,
			at(d, hm).UTC().Format("2006-01-02T15:04:05.000Z07:00"), src, jstr(user), ip, method, host, jstr(url), cats, verdict, rule, status, cl))
	}
	// dave asked for the reflecting search page himself: his incident
	line("10:00:00", "proxy", "dave", "10.10.1.20", "GET", "forum.example", "http://forum.example/search?q=join+the+fight",
		`["extremism"]`, "block", "classifier:extremism=0.95", "extremism=0.95")
	// erin opened the home page and her device looked the name up: the
	// classifier's memory of the host decided, four times
	for i, src := range []string{"proxy", "dns", "proxy", "dns"} {
		method := "GET"
		if src == "dns" {
			method = "A"
		}
		line(fmt.Sprintf("10:0%d:00", i+1), src, "erin", "10.10.1.21", method, "forum.example", "",
			`["extremism"]`, "block", "classifier-memory:pages:extremism=0.90", "pages:extremism=0.90")
	}
	// frank: a maths page the classifier was unsure about, allowed
	for i, note := range []string{"unsure:gambling=0.68", "unsure:gambling=0.71", "unsure:gambling=0.62"} {
		line(fmt.Sprintf("11:0%d:00", i), "proxy", "frank", "10.10.1.22", "GET", "maths.example",
			fmt.Sprintf("http://maths.example/odds/%d", i), "[]", "allow", "student#default", note)
	}
	// a bad note is ignored, not a crash
	line("11:10:00", "proxy", "frank", "10.10.1.22", "GET", "odd.example", "", "[]", "allow", "student#default", "unsure:nonsense")
}

// TestClassifierIncidents: incidents come from what the person asked
// for; a block from the classifier's memory of a host is counted as a
// block, shown as possible over-blocking, and never as an incident.
// Near misses (classified "unsure:…") are listed with their best score.
func TestClassifierIncidents(t *testing.T) {
	dir := t.TempDir()
	writeDay(t, dir, "2026-11-20", classifierDay)
	day := at("2026-11-20", "00:00:00")
	r, err := Run(Options{Dir: dir, From: day, To: day, Location: london, SchoolHours: schoolHours})
	if err != nil {
		t.Fatal(err)
	}
	if r.Malformed != 0 {
		t.Fatalf("malformed lines: %v", r.MalformedAt)
	}
	if len(r.Incidents) != 1 || r.Incidents[0].User != "dave" || r.Incidents[0].Count != 1 {
		for _, in := range r.Incidents {
			t.Logf("%+v", *in)
		}
		t.Fatalf("incidents: want dave's one")
	}
	if r.IncidentAttempts != 1 || r.MemoryBlocks != 4 || r.Blocked != 5 {
		t.Fatalf("attempts %d, memory blocks %d, blocked %d", r.IncidentAttempts, r.MemoryBlocks, r.Blocked)
	}
	for _, u := range r.Users {
		switch u.User {
		case "erin":
			if u.Incidents != 0 || u.Blocked != 4 {
				t.Errorf("erin: %d incidents, %d blocked", u.Incidents, u.Blocked)
			}
		case "dave":
			if u.Incidents != 1 {
				t.Errorf("dave: %d incidents", u.Incidents)
			}
		}
	}
	if len(r.OverBlocking) != 1 || r.OverBlocking[0].Host != "forum.example" || r.OverBlocking[0].Count != 5 {
		t.Errorf("over-blocking %+v", r.OverBlocking)
	}
	if len(r.NearMisses) != 1 || r.NearMissPages != 3 {
		t.Fatalf("near misses %+v (%d pages)", r.NearMisses, r.NearMissPages)
	}
	nm := r.NearMisses[0]
	if nm.Host != "maths.example" || nm.Count != 3 || nm.Best != "gambling=0.71" || nm.URL != "http://maths.example/odds/1" || nm.Categories != "gambling" {
		t.Errorf("near miss %+v", nm)
	}
	var html bytes.Buffer
	if err := r.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Near misses", "maths.example", "gambling=0.71", "decided from the classifier"} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
}
