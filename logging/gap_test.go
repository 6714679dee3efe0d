package logging

import (
	"strings"
	"testing"
	"time"
)

// A stop that cannot write every line leaves a gap record at the next
// start, naming how many lines were lost and when.
func TestGapRecordAfterAStopThatLostLines(t *testing.T) {
	failing := withFlakyFiles(t, true)
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	w := openTest(t, dir, now, nil)
	for i := 0; i < 10; i++ {
		w.Log(sample(i, now))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	failing.Store(true) // the disk is full from now on
	for i := 10; i < 40; i++ {
		w.Log(sample(i, now))
	}
	err := w.Close()
	if err == nil || !strings.Contains(err.Error(), "lines not written") {
		t.Fatalf("Close = %v, want an error naming the lines not written", err)
	}
	failing.Store(false) // room again
	w2 := openTest(t, dir, now.Add(time.Hour), nil)
	w2.Log(sample(99, now.Add(time.Hour)))
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := VerifyFile(PathFor(dir, now))
	if err != nil {
		t.Fatalf("the chain must stay intact: %v", err)
	}
	if len(r.Gaps) != 1 {
		t.Fatalf("gaps = %+v, want one", r.Gaps)
	}
	g := r.Gaps[0]
	// The partial write may have put part of a line on disk, which the
	// restart cuts; every line not complete on disk counts as lost.
	if g.Lost < 30 || g.Lost > 31 || g.Rule != RuleGap || !g.Time.Equal(now) {
		t.Fatalf("gap = %+v, want 30 lines lost at %v", g, now)
	}
	if r.Lines+int(g.Lost) != 10+30+1+1 && r.Lines+int(g.Lost) != 10+30+1+1+1 {
		t.Fatalf("%d lines + %d lost, want the 41 logged plus the gap record", r.Lines, g.Lost)
	}
	if !strings.Contains(g.String(), "gap: ") || !strings.Contains(g.String(), "lines lost at 2026-11-23T09:00:00Z") {
		t.Fatalf("gap reads %q", g)
	}
	// The marker is cleared: a third start adds no second record.
	w3 := openTest(t, dir, now.Add(2*time.Hour), nil)
	if err := w3.Close(); err != nil {
		t.Fatal(err)
	}
	if r, _ := VerifyFile(PathFor(dir, now)); len(r.Gaps) != 1 {
		t.Fatalf("after a clean restart: gaps = %+v, want still one", r.Gaps)
	}
}

// Lines dropped while the gateway runs (the retry buffer full) leave a
// gap record as soon as the disk takes lines again.
func TestGapRecordWhileRunning(t *testing.T) {
	failing := withFlakyFiles(t, false)
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	w := openTest(t, dir, now, func(o *Options) { o.MaxBuffered = 4 << 10 })
	failing.Store(true)
	for i := 0; i < 200; i++ {
		w.Log(sample(i, now))
	}
	_ = w.Flush()
	failing.Store(false)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	w.Log(sample(300, now))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := VerifyFile(PathFor(dir, now))
	if err != nil {
		t.Fatal(err)
	}
	dropped := int64(w.metric(t, "schoolgate_logging_dropped_lines_total"))
	if dropped == 0 || len(r.Gaps) != 1 || r.Gaps[0].Lost != dropped {
		t.Fatalf("dropped %d, gaps %+v: want one gap record naming them", dropped, r.Gaps)
	}
	if r.Lines != 201-int(dropped)+1 {
		t.Fatalf("%d lines, want %d kept + the gap record", r.Lines, 201-dropped)
	}
}
