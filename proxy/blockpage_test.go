package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/categories"
)

func testPage(err error, contact string) string {
	st := &request{host: "www.bet365.com", url: "http://www.bet365.com/en", user: "alice", profile: "student",
		ip: netip.MustParseAddr("10.10.4.7"), cats: categories.SetOf(categories.Gambling),
		start: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	return string(renderPage(pageFor(st, err, configBlockPage("Hillside Academy", contact), time.UTC)))
}

// The pages a pupil reads: what to do comes first; the 407 page says
// whether the password was wrong and how to try again; no page refers to a
// rule it does not show; the contact is shown as written; the rule reads
// as words with its id beside it.
func TestPagesForPupils(t *testing.T) {
	const contact = "Mr Patel, IT office (room 12), ext. 214"
	for _, tc := range []struct {
		name     string
		err      error
		contact  string
		want     []string
		wantNot  []string
		todoWant string // must be in the "What you can do" section
	}{
		{"blocked", &BlockedError{Rule: "student#2", Reason: "category gambling is blocked for student"}, contact,
			[]string{"rule 2 of the student profile <span class=\"id\">(student#2)</span>", "Contact: " + contact},
			[]string{"ask Mr Patel"}, "the rule shown below"},
		{"blocked, default", &BlockedError{Rule: "student#default"}, "",
			[]string{"the default of the student profile (no rule matched)", "(student#default)", "ask your teacher or the school&#39;s IT staff to review it"},
			[]string{"Contact:"}, "the rule shown below"},
		{"blocked by the classifier", &BlockedError{Rule: "classifier:adult=0.93"}, "",
			[]string{"the page&#39;s content, which reads as adult", "(classifier:adult=0.93)"}, nil, "rule"},
		{"no credentials", &AuthError{Reason: "no credentials"}, contact,
			[]string{"needs your school user name and password", "Contact: " + contact},
			[]string{"rule", "Rule", "not right"}, "when your browser asks, type your school user name and password"},
		{"wrong password", &AuthError{Reason: "wrong password"}, "",
			[]string{"The user name or password was not right", "Caps Lock", "Forgotten your password? Tell your teacher"},
			[]string{"rule", "Rule"}, "Reload this page (F5)"},
		{"unknown user reads as a wrong password", &AuthError{Reason: "unknown user"}, "",
			[]string{"The user name or password was not right"}, []string{"unknown", "rule"}, "Reload this page"},
		{"upstream down", &UpstreamError{Kind: kindRefused}, contact,
			[]string{"could not be reached", "tell the contact below", "Contact: " + contact},
			[]string{"rule", "Rule"}, "reload the page"},
		{"upstream timeout", &UpstreamError{Kind: kindTimeout}, "",
			[]string{"took too long"}, []string{"rule", "Rule"}, "Try again in a moment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page := testPage(tc.err, tc.contact)
			for _, w := range tc.want {
				if !strings.Contains(page, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(page, w) {
					t.Errorf("page has %q", w)
				}
			}
			todo, details, ok := strings.Cut(page, "<dl>")
			if !ok || !strings.Contains(todo, "What you can do") || !strings.Contains(todo, tc.todoWant) {
				t.Errorf("what to do (%q) does not come before the details:\n%s", tc.todoWant, page)
			}
			if strings.Contains(details, "What you can do") {
				t.Error("what to do comes after the details")
			}
		})
	}
}

// On a 1366×768 laptop screen the block page shows what to do without
// scrolling: a real browser lays it out, and the bottom of the "what you
// can do" section must be inside the first screen.
func TestBlockPageFitsASmallLaptop(t *testing.T) {
	chromium := chromiumPath(t)
	dir := t.TempDir()
	long := "http://www.bet365.com/en/sports/football/england/premier-league/arsenal-v-chelsea/match-odds?utm_source=a-very-long-campaign-name"
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"blocked", &BlockedError{Rule: "student#2", Reason: "category gambling is blocked for student"}},
		{"wrong password", &AuthError{Reason: "wrong password"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &request{host: "www.bet365.com", url: long, user: "alice", profile: "student",
				ip: netip.MustParseAddr("10.10.4.7"), cats: categories.SetOf(categories.Gambling),
				start: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
			page := string(renderPage(pageFor(st, tc.err, configBlockPage("Hillside Academy", "Mr Patel, IT office (room 12), ext. 214"), time.UTC)))
			// A script reports where the section ends, in CSS pixels.
			page = strings.Replace(page, "</body>", `<script>document.title="BOTTOM="+Math.ceil(document.querySelector(".todo, .help").getBoundingClientRect().bottom)+" H="+window.innerHeight</script></body>`, 1)
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".html")
			if err := os.WriteFile(path, []byte(page), 0o600); err != nil {
				t.Fatal(err)
			}
			// 768 minus a browser's own bars (about 130 px of tabs, address
			// bar and task bar) is what the page gets.
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1366,638",
				"--user-data-dir="+t.TempDir(),
				"--virtual-time-budget=2000", "--dump-dom", "file://"+path).CombinedOutput()
			if err != nil {
				t.Skipf("chromium could not run here: %v\n%s", err, out)
			}
			s := string(out)
			i := strings.Index(s, "<title>BOTTOM=")
			if i < 0 {
				t.Fatalf("no measurement in the DOM:\n%s", s)
			}
			var bottom, height int
			if _, err := fmt.Sscanf(s[i:], "<title>BOTTOM=%d H=%d", &bottom, &height); err != nil {
				t.Fatalf("reading the measurement: %v", err)
			}
			if bottom > height {
				t.Errorf("what to do ends at %d px, below the %d px a 1366×768 screen shows", bottom, height)
			}
		})
	}
}
