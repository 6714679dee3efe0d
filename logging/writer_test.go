package logging

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestRoundTripAndMetrics(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "log", "schoolgate") // created by Open
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	w := openTest(t, dir, now, nil)
	const n = 250
	for i := 0; i < n; i++ {
		w.Log(sample(i, now.Add(time.Duration(i)*time.Millisecond)))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	path := PathFor(dir, now)
	mustVerify(t, path, n) // visible on disk after Flush, before Close
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := mustVerify(t, path, n)
	if !r.Tip {
		t.Fatal("no tip sidecar after Close")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// 0640 and 0750, less whatever the umask takes away: never writable
	// by the group, never readable by others.
	if p := fi.Mode().Perm(); p&0o600 != 0o600 || p&^0o640 != 0 {
		t.Errorf("file mode %v, want 0640", p)
	}
	if di, err := os.Stat(dir); err != nil || di.Mode().Perm()&0o700 != 0o700 || di.Mode().Perm()&^0o750 != 0 {
		t.Errorf("dir: %v, want mode 0750", err)
	}
	if got := w.metric(t, "schoolgate_logging_lines_total"); got != n {
		t.Errorf("lines_total %v, want %d", got, n)
	}
	if got := w.metric(t, "schoolgate_logging_bytes_total"); got != float64(fi.Size()) {
		t.Errorf("bytes_total %v, want the file size %d", got, fi.Size())
	}
	for _, m := range []string{"schoolgate_logging_dropped_lines_total", "schoolgate_logging_write_errors_total", "schoolgate_logging_queue_length"} {
		if got := w.metric(t, m); got != 0 {
			t.Errorf("%s = %v, want 0", m, got)
		}
	}
	if w.metric(t, "schoolgate_logging_flush_duration_seconds") == 0 {
		t.Error("no flush observed")
	}
	// Log after Close neither panics nor disappears silently.
	w.Log(sample(1, now))
	if got := w.metric(t, "schoolgate_logging_dropped_lines_total"); got != 1 {
		t.Errorf("dropped after Close = %v, want 1", got)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestFlushedWithinASecond(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	w := openTest(t, dir, now, nil)
	w.Log(sample(1, now))
	path := PathFor(dir, now)
	deadline := time.Now().Add(3 * time.Second) // one second, plus slack for a loaded machine
	for {
		// The line is written, then synced and named in the sidecar by
		// the syncer goroutine.
		if r, err := VerifyFile(path); err == nil && r.Lines == 1 && r.Tip {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the line did not reach the file and its sidecar without Close or Flush")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRestartContinuesChain(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	path := PathFor(dir, now)
	write := func(n int) {
		t.Helper()
		w := openTest(t, dir, now, nil)
		for i := 0; i < n; i++ {
			w.Log(sample(i, now))
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	write(10)
	write(10)
	mustVerify(t, path, 20)

	t.Run("crash mid-line", func(t *testing.T) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(`{"ts":"2026-11-23T09:00:01.000Z","src":"pro`); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if _, err := Verify(path); err == nil {
			t.Fatal("Verify passed a file with a partial last line")
		}
		write(5)
		mustVerify(t, path, 25)
	})

	t.Run("lines cut from the end while stopped", func(t *testing.T) {
		lines := readLines(t, path)
		writeLines(t, path, lines[:len(lines)-2]) // 23 of 25 lines left, the sidecar says 25
		write(2)
		_, err := Verify(path)
		var ve *VerifyError
		if !errors.As(err, &ve) || ve.Line != 24 || !strings.Contains(ve.Msg, "seq 26, expected 24") {
			t.Fatalf("Verify = %v, want the gap reported at line 24", err)
		}
		// Put things back for the next case: a fresh, intact file.
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(TipPath(path)); err != nil {
			t.Fatal(err)
		}
		write(25)
		mustVerify(t, path, 25)
	})

	t.Run("end is not a chained line", func(t *testing.T) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("hello, I am not a log line\n"); err != nil {
			t.Fatal(err)
		}
		f.Close()
		write(3)
		mustVerify(t, path, 3) // a new chain
		aside, _ := filepath.Glob(path + ".damaged-*")
		sort.Strings(aside)
		if len(aside) != 2 || !strings.HasSuffix(aside[1], TipSuffix) {
			t.Fatalf("set aside: %v, want the damaged file and its sidecar", aside)
		}
		b, err := os.ReadFile(aside[0])
		if err != nil || !strings.Contains(string(b), "hello, I am not a log line") {
			t.Fatalf("the damaged file was not kept: %v", err)
		}
	})
}

func TestMidnightSwitch(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 23, 23, 59, 59, 0, london)
	w := openTest(t, dir, start, nil)
	times := []time.Time{
		start,                                         // 23rd
		start.Add(900 * time.Millisecond),             // 23rd
		start.Add(1100 * time.Millisecond),            // 24th, 00:00:00.1
		start.Add(999 * time.Millisecond),             // late entry for the 23rd
		start.Add(2 * time.Second),                    // 24th
		time.Date(2026, 7, 1, 23, 30, 0, 0, time.UTC), // 00:30 BST on 2 July
	}
	for i, at := range times {
		w.Log(sample(i, at))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		lines int
	}{{"access-2026-11-23.jsonl", 3}, {"access-2026-11-24.jsonl", 2}, {"access-2026-07-02.jsonl", 1}} {
		mustVerify(t, filepath.Join(dir, c.name), c.lines)
	}
	// seq restarts in each file.
	l := readLines(t, filepath.Join(dir, "access-2026-11-24.jsonl"))
	if !strings.Contains(string(l[0]), `"ts":"2026-11-24T00:00:00.100Z"`) || !strings.Contains(string(l[0]), `"seq":1,`) {
		t.Fatalf("first line of the 24th: %s", l[0])
	}
}

func TestEntryWithoutTimeUsesNow(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC) // 02:30 BST, the day the clocks change
	w := openTest(t, dir, now, nil)
	e := sample(1, time.Time{})
	w.Log(e)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	l := readLines(t, filepath.Join(dir, "access-2026-03-29.jsonl"))
	if len(l) != 1 || !strings.Contains(string(l[0]), `"ts":"2026-03-29T01:30:00.000Z"`) {
		t.Fatalf("lines %q", l)
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	files := map[string]bool{ // name: should survive
		"access-2026-10-01.jsonl":                       false,
		"access-2026-10-01.jsonl.tip":                   false,
		"access-2026-10-01.jsonl.damaged-20261001T1200": false,
		"access-2026-10-23.jsonl":                       false, // 31 days before
		"access-2026-10-24.jsonl":                       true,  // 30 days before
		"access-2026-11-22.jsonl":                       true,
		"access-2026-10-01.jsonl.bak":                   true, // not ours
		"access-2026-10-01.json":                        true,
		"notes.txt":                                     true,
		"access-old.jsonl":                              true,
		"report-2026-10-01.html":                        true,
		"access-2026-13-01.jsonl":                       true, // not a date
	}
	for name := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x\n"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "access-2026-01-01.jsonl"), 0o750); err != nil { // a directory: left alone
		t.Fatal(err)
	}
	files["access-2026-01-01.jsonl"] = true
	w := openTest(t, dir, now, func(o *Options) { o.RetentionDays = 30 })
	for name, keep := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		if keep != (err == nil) {
			t.Errorf("%s: exists=%v, want %v", name, err == nil, keep)
		}
	}
	// Once a day after: forty days later the 24 October file goes too.
	w.Log(sample(1, now))
	w.clock.Set(now.AddDate(0, 0, 40))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"access-2026-10-24.jsonl", "access-2026-11-22.jsonl", "access-2026-11-23.jsonl"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s survived forty days with retention 30", name)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Error("notes.txt was deleted")
	}
}

func TestConcurrentLog(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	w := openTest(t, dir, now, func(o *Options) { o.QueueSize = 4 })
	const goroutines, each = 16, 300
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := &Entry{} // reused after Log returns, as callers may
			for i := 0; i < each; i++ {
				*e = *sample(i, now)
				e.User = fmt.Sprintf("g%d", g)
				e.Host = fmt.Sprintf("g%d-%d.example", g, i)
				w.Log(e)
				e.Host = "overwritten.example"
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := PathFor(dir, now)
	mustVerify(t, path, goroutines*each)
	seen := map[string]bool{}
	for _, l := range readLines(t, path) {
		var v struct{ Host string }
		if err := json.Unmarshal(l, &v); err != nil {
			t.Fatal(err)
		}
		if seen[v.Host] || v.Host == "overwritten.example" {
			t.Fatalf("host %q twice or overwritten", v.Host)
		}
		seen[v.Host] = true
	}
	if w.metric(t, "schoolgate_logging_queue_full_total") == 0 {
		t.Log("queue never filled (fast writer); queue_full not exercised")
	}
}

func TestOnEntry(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	var blocked atomic.Int64
	w := openTest(t, dir, now, func(o *Options) {
		o.OnEntry = func(e *Entry) {
			if e.Host == "panic.example" {
				panic("observer bug")
			}
			if e.Verdict == "block" {
				blocked.Add(1)
			}
		}
	})
	for i := 0; i < 10; i++ {
		e := sample(i, now)
		if i%2 == 0 {
			e.Verdict = "allow"
		}
		if i == 5 {
			e.Host = "panic.example"
		}
		w.Log(e)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if blocked.Load() != 4 { // 1,3,7,9 (5 panicked)
		t.Fatalf("OnEntry saw %d blocked, want 4", blocked.Load())
	}
	mustVerify(t, PathFor(dir, now), 10)
}

// flakyFile fails writes while failing is set.
type flakyFile struct {
	logFile
	failing *atomic.Bool
	partial bool // write a few bytes before failing, like a full disk
}

func (f *flakyFile) Write(b []byte) (int, error) {
	if f.failing.Load() {
		if f.partial && len(b) > 10 {
			n, _ := f.logFile.Write(b[:7])
			return n, syscall.ENOSPC
		}
		return 0, syscall.ENOSPC
	}
	return f.logFile.Write(b)
}

// syncFlakyFile fails syncs while failing is set.
type syncFlakyFile struct {
	logFile
	failing *atomic.Bool
}

func (f *syncFlakyFile) Sync() error {
	if f.failing.Load() {
		return syscall.EIO
	}
	return f.logFile.Sync()
}

func TestSyncErrorsAreCountedAndRetried(t *testing.T) {
	var failing atomic.Bool
	old := wrapFile
	wrapFile = func(f *os.File) logFile { return &syncFlakyFile{logFile: f, failing: &failing} }
	t.Cleanup(func() { wrapFile = old })
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	w := openTest(t, dir, now, nil)
	failing.Store(true)
	for i := 0; i < 10; i++ {
		w.Log(sample(i, now))
	}
	if err := w.Flush(); err == nil {
		t.Fatal("Flush succeeded while fsync fails")
	}
	if w.metric(t, "schoolgate_logging_write_errors_total") == 0 {
		t.Fatal("sync errors not counted")
	}
	if _, err := os.Stat(TipPath(PathFor(dir, now))); err == nil {
		t.Fatal("sidecar written although the lines were never synced")
	}
	failing.Store(false)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if r := mustVerify(t, PathFor(dir, now), 10); !r.Tip {
		t.Fatal("no sidecar after a successful Close")
	}
}

func withFlakyFiles(t *testing.T, partial bool) *atomic.Bool {
	var failing atomic.Bool
	old := wrapFile
	wrapFile = func(f *os.File) logFile { return &flakyFile{logFile: f, failing: &failing, partial: partial} }
	t.Cleanup(func() { wrapFile = old })
	return &failing
}

func TestWriteErrorsAreRetried(t *testing.T) {
	failing := withFlakyFiles(t, true)
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	w := openTest(t, dir, now, nil)
	failing.Store(true)
	for i := 0; i < 100; i++ {
		w.Log(sample(i, now))
	}
	if err := w.Flush(); err == nil {
		t.Fatal("Flush succeeded while writes fail")
	}
	if w.metric(t, "schoolgate_logging_write_errors_total") == 0 {
		t.Fatal("write errors not counted")
	}
	failing.Store(false) // the disk has room again
	for i := 100; i < 150; i++ {
		w.Log(sample(i, now))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, PathFor(dir, now), 150)
	if got := w.metric(t, "schoolgate_logging_dropped_lines_total"); got != 0 {
		t.Fatalf("dropped %v lines", got)
	}
}

func TestDropsAreVisible(t *testing.T) {
	failing := withFlakyFiles(t, false)
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	w := openTest(t, dir, now, func(o *Options) { o.MaxBuffered = 4 << 10 })
	failing.Store(true)
	for i := 0; i < 100; i++ {
		w.Log(sample(i, now))
	}
	err := w.Close()
	if err == nil || !strings.Contains(err.Error(), "lines not written") {
		t.Fatalf("Close = %v, want an error about lines not written", err)
	}
	if got := w.metric(t, "schoolgate_logging_dropped_lines_total"); got != 100 {
		t.Fatalf("dropped_lines_total = %v, want 100 (over the bound, then unwritten at Close)", got)
	}
}

func TestOpenFailureWaitsForTheFile(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 23, 59, 0, 0, london)
	w := openTest(t, dir, now, nil)
	tomorrow := now.Add(2 * time.Minute)
	blocker := PathFor(dir, tomorrow)
	if err := os.Mkdir(blocker, 0o750); err != nil { // a directory where the file should go
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		w.Log(sample(i, tomorrow))
	}
	if err := w.Flush(); err == nil {
		t.Fatal("Flush succeeded although the file cannot be opened")
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, blocker, 5)
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(Options{}); err == nil {
		t.Error("Open without a dir succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Dir: file}); err == nil {
		t.Error("Open on a regular file as dir succeeded")
	}
	if _, err := Open(Options{Dir: t.TempDir(), RetentionDays: -1}); err == nil {
		t.Error("negative retention accepted")
	}
	reg := prometheus.NewRegistry()
	dir := t.TempDir()
	w, err := Open(Options{Dir: dir, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := Open(Options{Dir: t.TempDir(), Registerer: reg}); err == nil || !strings.Contains(err.Error(), "another access-log writer") {
		t.Errorf("second writer on one registry: %v", err)
	}
	var nilW *Writer
	nilW.Log(&Entry{}) // no-op, no panic
	if err := nilW.Close(); err != nil {
		t.Error(err)
	}
}

func TestFileNames(t *testing.T) {
	d := time.Date(2026, 3, 9, 0, 0, 0, 0, london)
	if got := FileName(d); got != "access-2026-03-09.jsonl" {
		t.Fatalf("FileName = %q", got)
	}
	if got := PathFor("/var/log/schoolgate", d); got != "/var/log/schoolgate/access-2026-03-09.jsonl" {
		t.Fatalf("PathFor = %q", got)
	}
	if got, ok := ParseFileName("access-2026-03-09.jsonl", london); !ok || !got.Equal(d) {
		t.Fatalf("ParseFileName = %v %v", got, ok)
	}
	for _, bad := range []string{"access-2026-3-9.jsonl", "access-2026-03-09.jsonl.tip", "x-2026-03-09.jsonl", "access-2026-02-30.jsonl", "access-.jsonl"} {
		if _, ok := ParseFileName(bad, london); ok {
			t.Errorf("ParseFileName(%q) accepted", bad)
		}
	}
}

func TestFullQueueWaitsAndCounts(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	w := openTest(t, dir, now, func(o *Options) {
		o.QueueSize = 2
		o.OnEntry = func(*Entry) { time.Sleep(time.Millisecond) } // a slow writer
	})
	for i := 0; i < 50; i++ {
		w.Log(sample(i, now))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, PathFor(dir, now), 50)
	if got := w.metric(t, "schoolgate_logging_queue_full_total"); got == 0 {
		t.Fatal("queue_full_total stayed 0 with a queue of 2 and a slow writer")
	}
	if got := w.metric(t, "schoolgate_logging_dropped_lines_total"); got != 0 {
		t.Fatalf("dropped %v lines", got)
	}
}

// TestCloseWhileLogsWait closes the writer while callers are blocked on a
// full queue: every entry is either written or counted as dropped (Log
// after Close), none is lost silently, and the file verifies.
func TestCloseWhileLogsWait(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	w := openTest(t, dir, now, func(o *Options) {
		o.QueueSize = 2
		o.OnEntry = func(*Entry) { time.Sleep(200 * time.Microsecond) } // a slow writer
	})
	const goroutines, each = 8, 40
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				w.Log(sample(g*each+i, now))
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	r, err := VerifyFile(PathFor(dir, now))
	if err != nil {
		t.Fatal(err)
	}
	dropped := w.metric(t, "schoolgate_logging_dropped_lines_total")
	if float64(r.Lines)+dropped != goroutines*each {
		t.Fatalf("%d lines written + %v dropped after Close, want %d in all", r.Lines, dropped, goroutines*each)
	}
	if got := w.metric(t, "schoolgate_logging_lines_total"); got != float64(r.Lines) {
		t.Fatalf("lines_total = %v, file has %d", got, r.Lines)
	}
	t.Logf("%d written before Close, %v dropped after", r.Lines, dropped)
}

// TestOnEntrySoonWithoutFlush: the writer sees an entry within about
// drainInterval even when fewer than a batch are queued.
func TestOnEntrySoonWithoutFlush(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	seen := make(chan string, 1)
	w := openTest(t, t.TempDir(), now, func(o *Options) {
		o.OnEntry = func(e *Entry) { seen <- e.Host }
	})
	start := time.Now()
	w.Log(sample(7, now))
	select {
	case h := <-seen:
		if h != "host7.example" {
			t.Fatalf("OnEntry saw %q", h)
		}
		t.Logf("seen after %v", time.Since(start))
	case <-time.After(2 * time.Second): // drainInterval, plus slack for a loaded machine
		t.Fatal("OnEntry did not see the entry without Flush")
	}
}

// One writer per log folder: a second process (or Writer) on the same
// folder would interleave its lines and break both chains.
func TestLogDirLock(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	w := openTest(t, dir, now, nil)
	_, err := Open(Options{Dir: dir, Location: london, Now: newClock(now).Now})
	if err == nil || !strings.Contains(err.Error(), "in use by another schoolgate (pid ") {
		t.Fatalf("second Open on the folder: err = %v, want it refused", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2, err := Open(Options{Dir: dir, Location: london, Now: newClock(now).Now})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	w2.Close()
}

// A damaged sidecar is kept aside at a restart, never silently rewritten:
// it is the evidence that lines may have been cut from the end.
func TestDamagedTipKeptAside(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	path := PathFor(dir, now)
	w := openTest(t, dir, now, nil)
	for i := 0; i < 5; i++ {
		w.Log(sample(i, now))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(TipPath(path), []byte("garbage"), 0o640); err != nil {
		t.Fatal(err)
	}
	w = openTest(t, dir, now, nil)
	w.Log(sample(5, now))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	aside, _ := filepath.Glob(TipPath(path) + ".damaged-*")
	if len(aside) != 1 {
		t.Fatalf("damaged sidecars kept: %v, want one", aside)
	}
	if b, _ := os.ReadFile(aside[0]); string(b) != "garbage" {
		t.Errorf("kept sidecar holds %q", b)
	}
	mustVerify(t, path, 6)
}
