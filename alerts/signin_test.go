package alerts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/logging"
)

// Ten failed sign-ins against one account in a minute send an alert naming
// the account, within seconds; a sign-in prompt without credentials does not count.
func TestFailedSignInsAlert(t *testing.T) {
	file := filepath.Join(t.TempDir(), "alerts.jsonl")
	a, _ := newTest(t, config.Alerts{File: file}, fastTiming)
	now := time.Now()
	for i := 0; i < 20; i++ {
		a.Observe(&logging.Entry{Time: now, Src: "proxy", IP: "10.10.1.66", Method: "GET", Host: "x.example",
			Verdict: "block", Rule: "proxy_auth", HTTPStatus: 407}) // no credentials: no name
	}
	for i := 0; i < 9; i++ {
		a.Observe(&logging.Entry{Time: now, Src: "proxy", User: "mr.smith", IP: "10.10.1.66", Method: "GET",
			Host: "x.example", Verdict: "block", Rule: "proxy_auth", HTTPStatus: 407})
	}
	time.Sleep(300 * time.Millisecond)
	if b, _ := os.ReadFile(file); len(b) > 0 {
		t.Fatalf("alert before ten failures: %s", b)
	}
	a.Observe(&logging.Entry{Time: now, Src: "proxy", User: "mr.smith", IP: "10.10.1.67", Method: "GET",
		Host: "x.example", Verdict: "block", Rule: "proxy_auth", HTTPStatus: 407})
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(file)
		s := string(b)
		if strings.Contains(s, `"kind":"sign_in_failures"`) {
			if !strings.Contains(s, `"user":"mr.smith"`) || !strings.Contains(s, "10 failed sign-ins for the account mr.smith") ||
				!strings.Contains(s, "10.10.1.66") || strings.Count(s, "\n") != 1 {
				t.Fatalf("alert = %s", s)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no alert within 10 s of the tenth failure: %q", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Failed sign-ins at the portal count as the proxy's do; its successful
// ones do not.
func TestFailedPortalSignInsAlert(t *testing.T) {
	file := filepath.Join(t.TempDir(), "alerts.jsonl")
	a, _ := newTest(t, config.Alerts{File: file}, fastTiming)
	now := time.Now()
	for i := 0; i < 12; i++ {
		a.Observe(&logging.Entry{Time: now, Src: "proxy", User: "pupil7", IP: "10.30.0.9", Method: "POST", Host: "signin.school.test",
			Verdict: "allow", Rule: "portal_signin", HTTPStatus: 303})
	}
	for i := 0; i < 10; i++ {
		a.Observe(&logging.Entry{Time: now, Src: "proxy", User: "mr.jones", IP: "10.30.0.9", Method: "POST", Host: "signin.school.test",
			Verdict: "block", Rule: "portal_signin", HTTPStatus: 401, AuthFailed: true})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(file)
		s := string(b)
		if strings.Contains(s, `"kind":"sign_in_failures"`) {
			if !strings.Contains(s, `"user":"mr.jones"`) || strings.Contains(s, "pupil7") || strings.Count(s, "\n") != 1 {
				t.Fatalf("alert = %s", s)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no alert within 10 s of the tenth failure: %q", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
