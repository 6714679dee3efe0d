package report

import (
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/logging"
)

// TestReadsTheRealWriter reads a file written by the access-log writer
// itself, so that the report and the writer agree on the format.
func TestReadsTheRealWriter(t *testing.T) {
	dir := t.TempDir()
	day := at("2026-11-20", "00:00:00")
	now := at("2026-11-20", "10:00:00")
	w, err := logging.Open(logging.Options{Dir: dir, Location: london, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	hostile := "evil\"host\n<script>.example"
	for i := 0; i < 5; i++ {
		w.Log(&logging.Entry{Time: now.Add(time.Duration(i) * time.Minute), Src: "proxy", User: "alice", IP: "10.10.1.5",
			Profile: "student", Method: "CONNECT", Host: "www.pornhub.com", Categories: categories.SetOf(categories.Adult),
			Verdict: "block", Rule: "student#2", HTTPStatus: 403, Duration: 1500 * time.Microsecond})
	}
	w.Log(&logging.Entry{Time: now, Src: "dns", IP: "10.10.3.4", Profile: "student", Method: "AAAA", Host: hostile,
		Verdict: "allow", Rule: "student#default", Rcode: "NOERROR", Bytes: 120})
	w.Log(&logging.Entry{Time: now, Src: "proxy", User: "bob", IP: "10.10.1.6", Profile: "student", Method: "GET",
		Host: "www.google.com", URL: "http://www.google.com/search?q=rivers", Categories: categories.SetOf(categories.SearchEngines),
		Verdict: "allow", Rule: "student#default", HTTPStatus: 200, Bytes: 5000})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Run(Options{Dir: dir, From: day, To: day, Location: london})
	if err != nil {
		t.Fatal(err)
	}
	if r.Malformed != 0 || r.Requests != 7 || r.Blocked != 5 || r.DNS != 1 {
		t.Fatalf("malformed %d (%v), requests %d, blocked %d, dns %d; want 0, 7, 5, 1",
			r.Malformed, r.MalformedAt, r.Requests, r.Blocked, r.DNS)
	}
	if len(r.Incidents) != 1 || r.Incidents[0].Count != 5 || !r.Incidents[0].Repeated {
		t.Errorf("incidents = %+v", r.Incidents)
	}
	if len(r.Searches) != 1 || r.Searches[0].Term != "rivers" {
		t.Errorf("searches = %+v", r.Searches)
	}
	found := false
	for _, h := range r.TopAllowed {
		found = found || h.Host == hostile
	}
	if !found {
		t.Errorf("hostile host not read back exactly: %+v", r.TopAllowed)
	}
}

// A day older than a week is compressed by the writer; the report reads
// the .gz as it read the plain file.
func TestReadsACompressedDay(t *testing.T) {
	dir := t.TempDir()
	day := at("2026-11-20", "00:00:00")
	now := at("2026-11-20", "10:00:00")
	w, err := logging.Open(logging.Options{Dir: dir, Location: london, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		w.Log(&logging.Entry{Time: now, Src: "proxy", User: "alice", IP: "10.10.1.5", Profile: "student", Method: "GET",
			Host: "www.bet365.com", Categories: categories.SetOf(categories.Gambling), Verdict: "block", Rule: "student#2", HTTPStatus: 403})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	names, err := logging.CompressOld(dir, london, day.AddDate(0, 0, 8), nil)
	if err != nil || len(names) != 1 {
		t.Fatalf("compressed %v, %v", names, err)
	}
	r, err := Run(Options{Dir: dir, From: day, To: day, Location: london})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 3 || r.Blocked != 3 || len(r.MissingDays) != 0 {
		t.Fatalf("requests %d, blocked %d, missing %v; want 3, 3, none", r.Requests, r.Blocked, r.MissingDays)
	}
}
