package classify

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/internal/testenv"
)

func TestJournal(t *testing.T) {
	dir := t.TempDir()
	path := JournalPath(dir)
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

	m := NewMemory(0, time.Hour)
	if err := m.Journal(path, t0); err != nil {
		t.Fatal(err)
	}
	for i, v := range []string{"user:a", "user:b", "ip:10.0.0.3"} {
		m.Page(PageVisit{Host: "casino.example", Path: fmt.Sprint("/", i), Visitor: v, Scores: gam(0.83)}, t0)
	}
	m.Page(PageVisit{Host: "page.example", Path: "/slots", Visitor: "user:a", Scores: gam(0.9)}, t0)
	m.Remember("short.example", gam(0.9), "host", t0.Add(-50*time.Minute)) // expires at t0+10m
	if err := m.CloseJournal(); err != nil {
		t.Fatal(err)
	}

	// check reads it without writing
	r, err := LoadMemory(path, t0.Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if rc, ok := r.Classified("casino.example", "", 0, t0.Add(30*time.Minute)); !ok || rc.Categories != categories.SetOf(categories.Gambling) || rc.Note != "pages:gambling=0.83" || !rc.Host {
		t.Fatalf("loaded host %+v %v", rc, ok)
	}
	if rc, ok := r.Classified("page.example", "/slots", 0, t0.Add(30*time.Minute)); !ok || rc.Host || rc.Note != "gambling=0.90" {
		t.Fatalf("loaded page %+v %v", rc, ok)
	}
	if _, ok := r.Classified("page.example", "", 0, t0.Add(30*time.Minute)); ok {
		t.Fatal("a page's host recalled after loading")
	}
	if _, ok := r.Lookup("short.example", t0.Add(30*time.Minute)); ok {
		t.Fatal("expired entry loaded")
	}

	// a restart compacts: the expired line and junk go, and so does a line
	// from before pages were kept apart (no kind: one page condemned its host)
	legacy := `{"host":"poisoned.example","expires":"2026-11-23T12:00:00Z","scores":{"extremism":0.99}}`
	os.WriteFile(path, append(testenv.ReadFile(t, path), []byte("not json\n{\"host\":\"\"}\n"+legacy+"\n")...), 0o640)
	m2 := NewMemory(0, time.Hour)
	if err := m2.Journal(path, t0.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	defer m2.CloseJournal()
	lines := strings.Split(strings.TrimSpace(string(testenv.ReadFile(t, path))), "\n")
	if len(lines) != 5 || !strings.Contains(lines[0], `"host":"casino.example"`) || strings.Contains(string(testenv.ReadFile(t, path)), "poisoned") {
		t.Fatalf("compacted journal %q", lines)
	}
	if _, ok := m2.Lookup("casino.example", t0.Add(30*time.Minute)); !ok {
		t.Fatal("restart forgot a host")
	}
	if _, ok := m2.Lookup("poisoned.example", t0.Add(30*time.Minute)); ok {
		t.Fatal("a legacy host line was loaded")
	}
	// the pages still count towards agreement after a restart
	if m2.Page(PageVisit{Host: "page.example", Path: "/b", Visitor: "user:b", Scores: gam(0.9)}, t0.Add(30*time.Minute)) {
		t.Fatal("two visitors agreed")
	}
	if !m2.Page(PageVisit{Host: "page.example", Path: "/c", Visitor: "user:c", Scores: gam(0.9)}, t0.Add(30*time.Minute)) {
		t.Fatal("the page from before the restart did not count")
	}

	// missing file: empty memory, no error
	if m3, err := LoadMemory(filepath.Join(dir, "none.jsonl"), t0); err != nil || m3.Len() != 0 {
		t.Fatalf("missing journal: %v %v", m3, err)
	}
	// unwritable folder: an error, not a panic
	if err := NewMemory(0, 0).Journal(filepath.Join(dir, "no", "such", "dir", JournalName), t0); err == nil {
		t.Fatal("no error for an unwritable journal")
	}
}

// FuzzJournal: the journal is a file on disk; whatever it holds, loading
// it never panics and never yields a page with a query or a score out of
// 0..1.
func FuzzJournal(f *testing.F) {
	f.Add([]byte(`{"kind":"page","host":"a.test","path":"/x","visitor":"user:a","expires":"2099-01-01T00:00:00Z","scores":{"gambling":0.9}}` + "\n"))
	f.Add([]byte(`{"kind":"host","host":"a.test","via":"pages","expires":"2099-01-01T00:00:00Z","scores":{"gambling":1.5,"adult":-1}}` + "\n"))
	f.Add([]byte(`{"kind":"page","host":"a.test","path":"/x?q=1","expires":"2099-01-01T00:00:00Z","scores":{"gambling":0.9}}` + "\nnot json\n"))
	f.Add([]byte(`{"host":"legacy.test","expires":"2099-01-01T00:00:00Z","scores":{"extremism":0.99}}`))
	dir := f.TempDir()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "j.jsonl")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := LoadMemory(path, now)
		if err != nil {
			return // a line over the scanner's limit: an error, not a panic
		}
		m.mu.RLock()
		defer m.mu.RUnlock()
		for _, host := range m.sites.Keys() {
			s, _ := m.sites.Peek(host)
			for _, p := range s.pages {
				if !strings.HasPrefix(p.path, "/") || strings.ContainsAny(p.path, "?#") {
					t.Fatalf("%s: page %q loaded", host, p.path)
				}
				for _, cs := range p.scores {
					if cs.Score <= 0 || cs.Score > 1 {
						t.Fatalf("%s%s: score %v", host, p.path, cs.Score)
					}
				}
			}
		}
	})
}
