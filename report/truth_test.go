package report

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"
)

// A day as a browser behind the proxy makes it: sign-in prompts before the
// credentials, Firefox's DoH canary, and intercepted tunnels whose every
// request inside was blocked. None of those is a visit or a block of
// content.
func truthDay(lw *logWriter) {
	d := "2026-11-20"
	t0 := at(d, "09:00:00")
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	// Sign-in prompts (407, rule proxy_auth): no user yet, unclassified.
	for i, h := range []string{"localhost", "accounts.google.com", "accounts.google.com"} {
		lw.write(ev{ts: sec(i), ip: "10.10.1.5", profile: "student", method: "GET", host: h,
			verdict: "block", rule: "proxy_auth"})
	}
	// The DoH canary, answered NXDOMAIN on purpose.
	lw.write(ev{ts: sec(5), src: "dns", ip: "10.10.1.5", profile: "student", host: "use-application-dns.net",
		verdict: "block", rule: "doh_canary"})
	// Intercepted tunnels to blocked hosts, and the blocked requests inside.
	for i, h := range []string{"www.bet365.com", "www.youtube.com"} {
		lw.write(ev{ts: sec(10 + i), user: "alice", ip: "10.10.1.5", profile: "student", method: "CONNECT", host: h,
			cats: []string{"gambling"}, rule: "intercept"})
		for j := 0; j < 2; j++ {
			lw.write(ev{ts: sec(20 + 2*i + j), user: "alice", ip: "10.10.1.5", profile: "student", method: "GET", host: h,
				url: "https://" + h + "/", cats: []string{"gambling"}, verdict: "block", rule: "student#2"})
		}
	}
	// One real visit, and a refusal by the gateway itself (not a profile's rule).
	lw.write(ev{ts: sec(30), user: "alice", ip: "10.10.1.5", profile: "student", method: "GET", host: "www.bbc.co.uk",
		url: "http://www.bbc.co.uk/"})
	lw.write(ev{ts: sec(31), user: "alice", ip: "10.10.1.5", profile: "student", method: "CONNECT", host: "odd.example",
		verdict: "block", rule: "tls_required"})
	// A member of staff seen under two profiles (signed in on a pupil's
	// network before the users file knew her).
	lw.write(ev{ts: sec(40), user: "dana", ip: "10.10.1.9", profile: "student", host: "www.bbc.co.uk"})
	lw.write(ev{ts: sec(41), user: "dana", ip: "10.20.0.9", profile: "staff", host: "www.bbc.co.uk"})
	lw.write(ev{ts: sec(42), user: "dana", ip: "10.20.0.9", profile: "staff", host: "www.bbc.co.uk"})
}

func TestReportCountsApartWhatIsNotAVisit(t *testing.T) {
	dir := t.TempDir()
	writeDay(t, dir, "2026-11-20", truthDay)
	day := at("2026-11-20", "00:00:00")
	r, err := Run(Options{Dir: dir, From: day, To: day, Location: london})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"sign-in prompts", r.SignInPrompts, 3},
		{"answered on purpose", r.OnPurpose, 1},
		{"tunnels", r.Tunnels, 2},
		{"requests", r.Requests, 9}, // 4 blocked inside the tunnels, bbc, odd.example, dana's 3
		{"blocked", r.Blocked, 5},
		{"lines", r.Lines, 15},
		{"unclassified blocked", r.CatBlocked[numCats-1], 1}, // odd.example only
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	for _, h := range r.TopAllowed {
		if h.Host == "www.bet365.com" || h.Host == "www.youtube.com" {
			t.Errorf("top allowed sites list %s, whose every request was blocked", h.Host)
		}
	}
	for _, h := range r.OverBlocking {
		t.Errorf("possible over-blocking lists %s (%s): a sign-in prompt, the canary or a refusal of the gateway's own", h.Host, h.Categories)
	}
	var page bytes.Buffer
	if err := r.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"3 sign-in prompts", "1 answer given on purpose (use-application-dns.net", "2 intercepted HTTPS tunnels", "15 log lines read"} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("page lacks %q", want)
		}
	}

	var buf bytes.Buffer
	if err := r.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, row := range rows {
		if row[0] == "dana" {
			found = true
			if row[1] != "staff student" {
				t.Errorf("dana's profile column = %q, want every profile she was seen under: %q", row[1], "staff student")
			}
		}
	}
	if !found {
		t.Errorf("no row for dana:\n%s", buf.String())
	}
}

// The sign-in page's lines — a redirect to it, a failed and a good
// sign-in, a sign-out — are sign-in prompts, not visits or blocks.
func TestPortalLinesCountedApart(t *testing.T) {
	dir := t.TempDir()
	writeDay(t, dir, "2026-11-20", func(lw *logWriter) {
		t0 := at("2026-11-20", "09:00:00")
		lw.write(ev{ts: t0, ip: "10.30.0.5", profile: "student", method: "GET", host: "www.bbc.co.uk",
			url: "http://www.bbc.co.uk/", verdict: "block", rule: "portal_required"})
		lw.write(ev{ts: t0.Add(time.Second), user: "alice", ip: "10.30.0.5", profile: "student", method: "POST",
			host: "signin.school.test", verdict: "block", rule: "portal_signin"})
		lw.write(ev{ts: t0.Add(2 * time.Second), user: "alice", ip: "10.30.0.5", profile: "staff", method: "POST",
			host: "signin.school.test", rule: "portal_signin"})
		lw.write(ev{ts: t0.Add(3 * time.Second), user: "alice", ip: "10.30.0.5", profile: "staff", method: "GET",
			host: "www.bbc.co.uk", url: "http://www.bbc.co.uk/"})
		lw.write(ev{ts: t0.Add(4 * time.Second), user: "alice", ip: "10.30.0.5", profile: "staff", method: "POST",
			host: "signin.school.test", rule: "portal_signout"})
	})
	day := at("2026-11-20", "00:00:00")
	r, err := Run(Options{Dir: dir, From: day, To: day, Location: london})
	if err != nil {
		t.Fatal(err)
	}
	if r.SignInPrompts != 4 || r.Requests != 1 || r.Blocked != 0 || r.Lines != 5 {
		t.Errorf("sign-in prompts %d, requests %d, blocked %d, lines %d; want 4, 1, 0, 5", r.SignInPrompts, r.Requests, r.Blocked, r.Lines)
	}
}
