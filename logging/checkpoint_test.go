package logging

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

type cpSink struct {
	mu  sync.Mutex
	cps []Checkpoint
}

func (s *cpSink) add(c Checkpoint) {
	s.mu.Lock()
	s.cps = append(s.cps, c)
	s.mu.Unlock()
}

func (s *cpSink) all() []Checkpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Checkpoint(nil), s.cps...)
}

// forgeAppend appends n lines with valid seq and hashes after the file's last line.
func forgeAppend(t *testing.T, path string, n int, at time.Time) {
	t.Helper()
	lines := readLines(t, path)
	last := bytes.TrimSuffix(lines[len(lines)-1], []byte("\n"))
	_, seq, sum, ok := splitLine(last)
	if !ok {
		t.Fatal("last line unreadable")
	}
	prev := append([]byte(nil), sum...)
	le := newLineEncoder()
	var out []byte
	for i := 0; i < n; i++ {
		e := sample(1000+i, at)
		var h [hashHex]byte
		out, h = le.appendLine(out, e, seq+int64(i)+1, prev)
		prev = h[:]
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(out)
	f.Close()
}

func TestCheckpoints(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	sink := &cpSink{}
	open := func(at time.Time, logger *zap.Logger) *testWriter {
		return openTest(t, dir, at, func(o *Options) {
			o.StateDir, o.OnCheckpoint, o.CheckpointInterval = state, sink.add, 5*time.Minute
			if logger != nil {
				o.Logger = logger
			}
		})
	}
	w := open(now, nil)
	for i := 0; i < 10; i++ {
		w.Log(sample(i, now))
	}
	w.clock.Set(now.Add(5 * time.Minute))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := 10; i < 20; i++ {
		w.Log(sample(i, now.Add(5*time.Minute)))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	cps := sink.all()
	var reasons []string
	for _, c := range cps {
		reasons = append(reasons, c.Reason+":"+strings.TrimPrefix(c.File, "access-"))
	}
	if got := strings.Join(reasons, " "); got != "start:2026-11-23.jsonl interval:2026-11-23.jsonl stop:2026-11-23.jsonl" {
		t.Fatalf("checkpoints = %s", got)
	}
	if last := cps[len(cps)-1]; last.Seq != 20 || last.N != 3 {
		t.Fatalf("stop checkpoint = %+v, want seq 20, n 3", last)
	}
	if p := CheckChain(cps); len(p) != 0 {
		t.Fatalf("chain problems: %v", p)
	}
	if p := CheckChain([]Checkpoint{cps[0], cps[2]}); len(p) == 0 {
		t.Fatal("a withheld checkpoint is not seen")
	}
	edited := append([]Checkpoint(nil), cps...)
	edited[1].Seq = 5
	if p := CheckChain(edited); len(p) == 0 {
		t.Fatal("an edited checkpoint is not seen")
	}
	path := PathFor(dir, now)
	if _, p, err := VerifyAgainst(path, cps); err != nil || len(p) != 0 {
		t.Fatalf("intact day against its checkpoints: %v %v", p, err)
	}
	orig, _ := os.ReadFile(path)
	origTip, _ := os.ReadFile(TipPath(path))
	restore := func() {
		os.WriteFile(path, orig, 0o640)
		os.WriteFile(TipPath(path), origTip, 0o640)
	}

	t.Run("tip deleted and lines cut", func(t *testing.T) {
		defer restore()
		os.Remove(TipPath(path))
		lines := readLines(t, path)
		writeLines(t, path, lines[:15])
		mustVerify(t, path, 15) // the chain alone cannot see it
		_, p, err := VerifyAgainst(path, cps)
		if err != nil || len(p) == 0 || !strings.Contains(strings.Join(p, "\n"), "lines were cut") {
			t.Fatalf("against checkpoints: %v %v", p, err)
		}
	})
	t.Run("forged lines appended", func(t *testing.T) {
		defer restore()
		os.Remove(TipPath(path))
		forgeAppend(t, path, 3, now.Add(6*time.Minute))
		mustVerify(t, path, 23) // valid hashes: the chain alone cannot see it
		_, p, err := VerifyAgainst(path, cps)
		if err != nil || !strings.Contains(strings.Join(p, "\n"), "3 lines after line 20") {
			t.Fatalf("against checkpoints: %v %v", p, err)
		}
	})
	t.Run("rewritten", func(t *testing.T) {
		defer restore()
		os.Remove(TipPath(path))
		lines := readLines(t, path)
		writeLines(t, path, lines[:9])
		forgeAppend(t, path, 11, now) // same length, other content, valid chain
		mustVerify(t, path, 20)
		_, p, _ := VerifyAgainst(path, cps)
		if !strings.Contains(strings.Join(p, "\n"), "rewritten") {
			t.Fatalf("against checkpoints: %v", p)
		}
	})
	t.Run("restart after a cut", func(t *testing.T) {
		defer restore()
		os.Remove(TipPath(path))
		lines := readLines(t, path)
		writeLines(t, path, lines[:15])
		core, logs := observer.New(zap.InfoLevel)
		w2 := open(now.Add(time.Hour), zap.New(core))
		if err := w2.Close(); err != nil {
			t.Fatal(err)
		}
		if logs.FilterMessageSnippet("checkpoint mismatch").Len() == 0 {
			t.Fatal("no `checkpoint mismatch` in the program log")
		}
		r, err := VerifyFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Gaps) != 1 || r.Gaps[0].Rule != RuleCheckpointMismatch || r.Gaps[0].Lost != 5 {
			t.Fatalf("gaps = %+v, want a mismatch naming 5 lines", r.Gaps)
		}
	})
}
