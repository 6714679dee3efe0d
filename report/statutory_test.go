package report

import (
	"bytes"
	"strings"
	"testing"
)

// A statutory list's blocks are counted, and nothing they name — site,
// address, search — appears in the report.
func TestReportNeverNamesStatutoryEntries(t *testing.T) {
	dir := t.TempDir()
	writeDay(t, dir, "2026-11-20", func(lw *logWriter) {
		t0 := at("2026-11-20", "10:00:00")
		lw.write(ev{ts: t0, user: "alice", ip: "10.10.1.5", profile: "student", method: "GET", host: "hidden-entry.example",
			url: "http://hidden-entry.example/albums/1234/?q=secret-words", verdict: "block", rule: "statutory:iwf"})
		lw.write(ev{ts: t0, src: "dns", ip: "10.10.1.5", profile: "student", host: "hidden-domain.example",
			verdict: "block", rule: "statutory:iwf"})
		lw.write(ev{ts: t0, user: "alice", ip: "10.10.1.5", profile: "student", method: "GET", host: "www.bbc.co.uk",
			url: "http://www.bbc.co.uk/"})
	})
	day := at("2026-11-20", "00:00:00")
	r, err := Run(Options{Dir: dir, From: day, To: day, Location: london})
	if err != nil {
		t.Fatal(err)
	}
	if r.Statutory != 2 || r.Requests != 1 {
		t.Errorf("statutory %d, requests %d; want 2 counted apart and 1 request", r.Statutory, r.Requests)
	}
	var page, csv bytes.Buffer
	if err := r.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteCSV(&csv); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{page.String(), csv.String()} {
		for _, leak := range []string{"hidden-entry", "hidden-domain", "albums", "secret-words"} {
			if strings.Contains(out, leak) {
				t.Errorf("the report names %q, which is on a statutory list", leak)
			}
		}
	}
	if !strings.Contains(page.String(), "blocked by a statutory list") {
		t.Error("the page does not say that statutory blocks were counted")
	}
}
