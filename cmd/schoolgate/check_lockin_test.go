package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestCheckLockin: check shows where SafeSearch is applied, decides an
// HTTPS address as ip-literal and names the rule that blocks it, and
// shows the path reading a URL entry was matched on (the embedded
// default config).
func TestCheckLockin(t *testing.T) {
	targets := []string{"http://www.google.com/search?q=x", "https://www.bing.com/", "https://203.0.113.7/",
		"http://203.0.113.7/", "http://www.bbc.co.uk/bitesize%2F..%2Fiplayer", "https://www.example.com/"}
	code, out, errOut := runCheckT(t, "", append([]string{"-at", "2026-11-24T10:00"}, targets...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")[1:] // after the header
	if len(lines) != len(targets) {
		t.Fatalf("%d lines for %d targets:\n%s", len(lines), len(targets), out)
	}
	for i, want := range []string{
		"safe_search: applied (connects to forcesafesearch.google.com, adds safe=active)",
		"safe_search: applied (connects to strict.bing.com, adds adlt=strict)",
		"BLOCKED  ip-literal  rule student#3",
		"ALLOWED  unclassified", // plain HTTP shows everything: not ip-literal
		"BLOCKED  streaming",
		"ALLOWED",
	} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("%s: %q lacks %q", targets[i], lines[i], want)
		}
	}
	if strings.Contains(lines[5], "safe_search") || !strings.Contains(lines[4], "reads it: /iplayer") {
		t.Errorf("unexpected lines:\n%s\n%s", lines[4], lines[5])
	}

	code, out, errOut = runCheckT(t, "", "-json", "https://www.youtube.com/", "https://www.google.co.uk/", "https://203.0.113.7/", "https://www.example.com/")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("bad JSON line %q: %v", l, err)
		}
		got = append(got, m)
	}
	// www.youtube.com is streaming, blocked for students: nothing applied.
	if got[0]["safe_search"] != nil || got[1]["safe_search"] != "applied" || got[3]["safe_search"] != nil {
		t.Errorf("safe_search fields: %v / %v / %v", got[0]["safe_search"], got[1]["safe_search"], got[3]["safe_search"])
	}
	if got[2]["rule"] != "student#3" || got[2]["verdict"] != "block" || !strings.Contains(got[2]["reason"].(string), "ip-literal") {
		t.Errorf("https://203.0.113.7/ = %v, want blocked as ip-literal by student#3", got[2])
	}
}
