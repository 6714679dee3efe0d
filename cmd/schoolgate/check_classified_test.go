package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/categories/classify"
)

// TestCheckShowsClassifiedHosts: a host the server's content classifier
// put in a category (its journal in the log folder) is explained by check
// as the server decides it, with the classifier's note.
func TestCheckShowsClassifiedHosts(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "schoolgate.yaml")
	if err := os.WriteFile(cfg, []byte(`listen: {proxy: "127.0.0.1:0", dns: "", admin: ""}
default_profile: pupil
lists:
  - category: education
    domains: [school.example]
profiles:
  pupil:
    rules:
      - action: allow
        categories: [education]
      - action: block
        categories: [gambling]
    default: allow
log: {dir: logs}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	m := classify.NewMemory(0, time.Hour)
	if err := m.Journal(classify.JournalPath(filepath.Join(dir, "logs")), time.Now()); err != nil {
		t.Fatal(err)
	}
	g := []classify.CategoryScore{{Category: categories.Gambling, Score: 0.83}}
	// pages of three visitors agree: the host is remembered as a whole
	for i, v := range []string{"user:a", "user:b", "ip:10.0.0.3"} {
		m.Page(classify.PageVisit{Host: "luckyspins.example", Path: fmt.Sprint("/", i), Visitor: v, Scores: g}, time.Now())
		m.Page(classify.PageVisit{Host: "school.example", Path: fmt.Sprint("/", i), Visitor: v, Scores: g}, time.Now()) // listed: the list wins
	}
	m.CloseJournal()

	var out, errb bytes.Buffer
	if code := run([]string{"check", "-config", cfg, "-json", "luckyspins.example", "school.example", "other.example"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var got []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var o map[string]any
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		got = append(got, o)
	}
	if got[0]["verdict"] != "block" || got[0]["rule"] != "classifier-memory:pages:gambling=0.83" || got[0]["classified"] != "pages:gambling=0.83" {
		t.Errorf("classified host: %v", got[0])
	}
	if got[1]["verdict"] != "allow" || got[1]["classified"] != nil {
		t.Errorf("listed host: %v", got[1])
	}
	if got[2]["verdict"] != "allow" || got[2]["classified"] != nil {
		t.Errorf("unknown host: %v", got[2])
	}
	out.Reset()
	run([]string{"check", "-config", cfg, "luckyspins.example"}, nil, &out, &errb)
	if !strings.Contains(out.String(), "classified by content: pages:gambling=0.83") {
		t.Errorf("human output: %s", out.String())
	}
}
