package logging

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// copyDir copies the regular files of src into a new folder: the state a
// crash would leave, taken while the writer runs.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range ents {
		if !de.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, de.Name()), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestOpenSessionsSurviveACrash(t *testing.T) {
	dir := t.TempDir()
	start := time.Now().Add(-3 * time.Second)
	w := openTest(t, dir, start, func(o *Options) { o.Now = time.Now })
	w.Log(sample(1, start))
	long := sample(2, start)
	long.Method, long.Host, long.Verdict, long.HTTPStatus, long.Bytes = "CONNECT", "tunnel.example", "allow", 200, 0
	s := w.Begin(long)
	s.Add(12345)
	ended := w.Begin(sample(4, start))
	ended.End(w.Writer, sample(4, start))
	// Wait for a journal naming the long session.
	journal := filepath.Join(dir, JournalName)
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(journal)
		if strings.Contains(string(b), "tunnel.example") && strings.Contains(string(b), "12345") {
			if strings.Contains(string(b), "host4.example") {
				t.Fatalf("the journal names an ended session:\n%s", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no journal naming the open session:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	crashed := copyDir(t, dir)

	w2 := openTest(t, crashed, time.Now(), func(o *Options) { o.Now = time.Now })
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	path := PathFor(crashed, start)
	lines := readLines(t, path)
	var got string
	for _, l := range lines {
		if strings.Contains(string(l), "tunnel.example") {
			got = string(l)
		}
	}
	if !containsAll(got, `"method":"CONNECT"`, `"status":200`, `"bytes":12345`, `"ended":"crash"`) {
		t.Fatalf("crash line for the open tunnel = %q", got)
	}
	mustVerify(t, path, len(lines))
	if _, err := os.Stat(filepath.Join(crashed, JournalName)); !os.IsNotExist(err) {
		t.Fatalf("the journal is still there after the replay: %v", err)
	}

	// A graceful stop writes the still-open sessions (ended "stop"), and
	// their End afterwards adds nothing.
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s.End(w.Writer, long)
	n := 0
	for _, l := range readLines(t, PathFor(dir, start)) {
		if strings.Contains(string(l), "tunnel.example") {
			n++
			if !strings.Contains(string(l), `"ended":"stop"`) {
				t.Fatalf("line at stop = %s", l)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d lines for the tunnel, want 1", n)
	}
	if got := w.metric(t, "schoolgate_logging_dropped_lines_total"); got != 0 {
		t.Fatalf("dropped %v", got)
	}
}
