package logging

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeDay writes n sample lines for now's day through a writer and
// returns the file's path.
func writeDay(t *testing.T, dir string, now time.Time, n int) string {
	t.Helper()
	w := openTest(t, dir, now, nil)
	for i := 0; i < n; i++ {
		w.Log(sample(i, now.Add(time.Duration(i)*time.Second)))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return PathFor(dir, now)
}

// forge returns a correctly chained line with the given seq after prev.
func forge(t *testing.T, prev []byte, seq int64, host string) []byte {
	t.Helper()
	le := newLineEncoder()
	e := sample(99, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	e.Host = host
	line, _ := le.appendLine(nil, e, seq, prev)
	return line
}

func hashOf(line []byte) []byte {
	l := bytes.TrimSuffix(line, []byte("\n"))
	return l[len(l)-2-hashHex : len(l)-2]
}

func TestVerifyCatchesTampering(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	const n = 20
	tests := []struct {
		name     string
		tamper   func(t *testing.T, path string, lines [][]byte) [][]byte
		wantLine int
		wantMsg  string
	}{
		{"edit a field", func(t *testing.T, _ string, l [][]byte) [][]byte {
			l[4] = bytes.Replace(l[4], []byte(`"user":"alice"`), []byte(`"user":"bob"`), 1)
			return l
		}, 5, "hash does not match"},
		{"edit a number", func(t *testing.T, _ string, l [][]byte) [][]byte {
			l[10] = bytes.Replace(l[10], []byte(`"bytes":110`), []byte(`"bytes":111`), 1)
			return l
		}, 11, "hash does not match"},
		{"edit the hash", func(t *testing.T, _ string, l [][]byte) [][]byte {
			h := hashOf(l[6])
			if h[0] == '0' {
				h[0] = '1'
			} else {
				h[0] = '0'
			}
			return l
		}, 7, "hash does not match"},
		{"remove a middle line", func(t *testing.T, _ string, l [][]byte) [][]byte {
			return append(l[:8], l[9:]...)
		}, 9, "seq 10, expected 9 (a line was removed or inserted)"},
		{"remove the first line", func(t *testing.T, _ string, l [][]byte) [][]byte {
			return l[1:]
		}, 1, "seq 2, expected 1"},
		{"swap two lines", func(t *testing.T, _ string, l [][]byte) [][]byte {
			l[4], l[5] = l[5], l[4]
			return l
		}, 5, "seq 6, expected 5"},
		{"insert a copied line", func(t *testing.T, _ string, l [][]byte) [][]byte {
			return append(l[:7], append([][]byte{l[6]}, l[7:]...)...)
		}, 8, "seq 7, expected 8"},
		{"insert a forged, correctly chained line", func(t *testing.T, _ string, l [][]byte) [][]byte {
			f := forge(t, hashOf(l[6]), 8, "forged.example")
			return append(l[:7], append([][]byte{f}, l[7:]...)...)
		}, 9, "seq 8, expected 9"},
		{"insert a forged line and renumber the rest", func(t *testing.T, _ string, l [][]byte) [][]byte {
			f := forge(t, hashOf(l[6]), 8, "forged.example")
			rest := l[7:]
			for i := range rest {
				old := []byte(`,"seq":` + strconv.Itoa(8+i) + `,"hash"`)
				rest[i] = bytes.Replace(rest[i], old, []byte(`,"seq":`+strconv.Itoa(9+i)+`,"hash"`), 1)
			}
			return append(l[:7], append([][]byte{f}, rest...)...)
		}, 9, "hash does not match"},
		{"not JSON", func(t *testing.T, _ string, l [][]byte) [][]byte {
			l[2] = bytes.Replace(l[2], []byte(`"src":`), []byte(`"src"`), 1)
			return l
		}, 3, "not valid JSON"},
		{"empty line", func(t *testing.T, _ string, l [][]byte) [][]byte {
			return append(l[:3], append([][]byte{[]byte("\n")}, l[3:]...)...)
		}, 4, "empty line"},
		{"seq and hash stripped", func(t *testing.T, _ string, l [][]byte) [][]byte {
			l[0] = []byte(`{"ts":"2026-11-23T09:00:00.000Z","src":"proxy"}` + "\n")
			return l
		}, 1, `does not end with "seq" and "hash"`},
		{"last line cut short", func(t *testing.T, path string, l [][]byte) [][]byte {
			writeLines(t, path, l)
			b, _ := os.ReadFile(path)
			if err := os.WriteFile(path, b[:len(b)-30], 0o640); err != nil {
				t.Fatal(err)
			}
			return nil
		}, n, "incomplete last line"},
		{"last lines removed (caught by the tip sidecar)", func(t *testing.T, _ string, l [][]byte) [][]byte {
			return l[:n-3]
		}, n - 2, "the file ends after line 17 but the writer recorded 20 lines"},
		{"whole file emptied", func(t *testing.T, _ string, l [][]byte) [][]byte {
			return [][]byte{}
		}, 1, "the writer recorded 20 lines"},
		{"rewritten with a consistent chain (caught by the tip sidecar)", func(t *testing.T, _ string, l [][]byte) [][]byte {
			out := l[:5]
			prev := hashOf(l[4])
			for i := 6; i <= n; i++ {
				f := forge(t, prev, int64(i), "rewritten.example")
				out = append(out, f)
				prev = hashOf(f)
			}
			return out
		}, n, "differs from the one the writer recorded in the .tip sidecar"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeDay(t, dir, now, n)
			mustVerify(t, path, n)
			if l := tt.tamper(t, path, readLines(t, path)); l != nil {
				writeLines(t, path, l)
			}
			_, err := Verify(path)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify = %v, want a *VerifyError", err)
			}
			if ve.Line != tt.wantLine || !strings.Contains(ve.Msg, tt.wantMsg) {
				t.Fatalf("Verify = line %d %q, want line %d containing %q", ve.Line, ve.Msg, tt.wantLine, tt.wantMsg)
			}
			if !strings.HasPrefix(err.Error(), "line "+strconv.Itoa(tt.wantLine)+": ") {
				t.Fatalf("message %q does not start with the line", err)
			}
		})
	}
}

func TestVerifyWithoutTipCannotSeeTailRemoval(t *testing.T) {
	// Documented limit: without the sidecar the chain alone cannot tell
	// that lines were removed from the end.
	dir := t.TempDir()
	path := writeDay(t, dir, time.Date(2026, 11, 23, 9, 0, 0, 0, london), 10)
	if err := os.Remove(TipPath(path)); err != nil {
		t.Fatal(err)
	}
	writeLines(t, path, readLines(t, path)[:7])
	r := mustVerify(t, path, 7)
	if r.Tip {
		t.Fatal("Tip = true without a sidecar")
	}
}

func TestVerifyResult(t *testing.T) {
	dir := t.TempDir()
	path := writeDay(t, dir, time.Date(2026, 11, 23, 9, 0, 0, 0, london), 5)
	r := mustVerify(t, path, 5)
	lines := readLines(t, path)
	if !r.Tip || r.LastHash != string(hashOf(lines[4])) {
		t.Fatalf("result %+v, want tip and last hash %s", r, hashOf(lines[4]))
	}
}

func TestVerifyBadInput(t *testing.T) {
	dir := t.TempDir()
	if _, err := Verify(dir + "/access-2026-01-01.jsonl"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v, want not-exist", err)
	}
	path := dir + "/access-2026-01-02.jsonl"
	if err := os.WriteFile(path, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, path, 0)
	if err := os.WriteFile(TipPath(path), []byte("garbage"), 0o640); err != nil {
		t.Fatal(err)
	}
	var ve *VerifyError
	if _, err := Verify(path); !errors.As(err, &ve) || ve.Line != 0 || !strings.Contains(ve.Msg, "sidecar") {
		t.Fatalf("bad sidecar: %v", err)
	}
	// A line longer than the limit is refused, not read into memory whole.
	if err := os.Remove(TipPath(path)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), maxLine+10), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(path); !errors.As(err, &ve) || ve.Line != 1 {
		t.Fatalf("huge line: %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	dir := f.TempDir()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	w, err := Open(Options{Dir: dir, Location: london, Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		w.Log(sample(i, now))
	}
	if err := w.Close(); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(PathFor(dir, now))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-5])
	f.Add([]byte("{}\n"))
	f.Add([]byte(`{"seq":1,"hash":"` + strings.Repeat("0", 64) + `"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := t.TempDir() + "/access-2026-11-23.jsonl"
		if err := os.WriteFile(path, data, 0o640); err != nil {
			t.Fatal(err)
		}
		n, err := Verify(path)
		var ve *VerifyError
		if err != nil && !errors.As(err, &ve) {
			t.Fatalf("Verify: non-verify error %v", err)
		}
		if err == nil && n != bytes.Count(data, []byte("\n")) {
			t.Fatalf("intact file of %d lines reported as %d", bytes.Count(data, []byte("\n")), n)
		}
		// Reading the tail of any file must not panic.
		fh, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		_, _, _, _ = readTail(fh)
	})
}

func TestVerifyWhileWriting(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	w := openTest(t, dir, now, func(o *Options) { o.FlushInterval = 5 * time.Millisecond })
	path := PathFor(dir, now)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 3000; i++ {
			w.Log(sample(i, now))
			if i%30 == 0 {
				time.Sleep(2 * time.Millisecond) // let flushes land between checks
			}
		}
	}()
	checks := 0
	for running := true; running; checks++ {
		select {
		case <-done:
			running = false
		default:
		}
		_, err := Verify(path)
		var ve *VerifyError
		if err != nil && !(errors.As(err, &ve) && ve.Incomplete) {
			t.Fatalf("Verify of a file being written: %v", err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, path, 3000)
	t.Logf("%d checks while writing", checks)
}
