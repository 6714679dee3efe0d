package classify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/categories"
)

func TestJournal(t *testing.T) {
	dir := t.TempDir()
	path := JournalPath(dir)
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

	m := NewMemory(0, time.Hour)
	if err := m.Journal(path, t0); err != nil {
		t.Fatal(err)
	}
	m.Remember("casino.example", gam(0.83), "", t0)
	m.Remember("short.example", gam(0.9), "host", t0.Add(-50*time.Minute)) // expires at t0+10m
	if err := m.CloseJournal(); err != nil {
		t.Fatal(err)
	}

	// check reads it without writing
	r, err := LoadMemory(path, t0.Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if set, note, ok := r.Classified("casino.example", 0, t0.Add(30*time.Minute)); !ok || set != categories.SetOf(categories.Gambling) || note != "gambling=0.83" {
		t.Fatalf("loaded %v %q %v", set, note, ok)
	}
	if _, ok := r.Lookup("short.example", t0.Add(30*time.Minute)); ok {
		t.Fatal("expired entry loaded")
	}

	// a restart compacts: the expired line and junk go
	os.WriteFile(path, append(mustRead(t, path), []byte("not json\n{\"host\":\"\"}\n")...), 0o640)
	m2 := NewMemory(0, time.Hour)
	if err := m2.Journal(path, t0.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	defer m2.CloseJournal()
	lines := strings.Split(strings.TrimSpace(string(mustRead(t, path))), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"host":"casino.example"`) {
		t.Fatalf("compacted journal %q", lines)
	}
	if _, ok := m2.Lookup("casino.example", t0.Add(30*time.Minute)); !ok {
		t.Fatal("restart forgot a host")
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

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
