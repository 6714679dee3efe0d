package logging

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// TestClassifiedField: the content classifier's optional `classified`
// field is written only when set, after `ms`, and is covered by the hash
// chain like any other field.
func TestClassifiedField(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	w := openTest(t, dir, now, nil)
	for i := 0; i < 4; i++ {
		e := sample(i+1, now)
		if i%2 == 0 {
			e.Classified = "gambling=0.83"
		}
		w.Log(e)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := PathFor(dir, now)
	lines := readLines(t, path)
	if len(lines) != 4 {
		t.Fatalf("%d lines", len(lines))
	}
	for i, l := range lines {
		has := bytes.Contains(l, []byte(`,"classified":"gambling=0.83","seq":`))
		if has != (i%2 == 0) {
			t.Errorf("line %d: classified field present=%v: %s", i+1, has, l)
		}
	}
	if n, err := Verify(path); err != nil || n != 4 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
	// editing the note breaks the chain at that line
	b, _ := os.ReadFile(path)
	b = bytes.Replace(b, []byte(`"classified":"gambling=0.83"`), []byte(`"classified":"gambling=0.13"`), 1)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(path); err == nil || !strings.Contains(err.Error(), "hash does not match") {
		t.Fatalf("tampered note: Verify err = %v", err)
	}
}
