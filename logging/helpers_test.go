package logging

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/schoolgate/schoolgate/categories"
)

// clock is a settable time source for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

var london = func() *time.Location {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return loc
}()

// testWriter opens a writer on dir with a fresh registry; it is closed at
// the end of the test if the test did not close it.
type testWriter struct {
	*Writer
	reg   *prometheus.Registry
	clock *clock
}

func openTest(t *testing.T, dir string, now time.Time, mod func(*Options)) *testWriter {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := newClock(now)
	o := Options{Dir: dir, Location: london, Registerer: reg, Now: c.Now}
	if mod != nil {
		mod(&o)
	}
	w, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return &testWriter{Writer: w, reg: reg, clock: c}
}

func (tw *testWriter) metric(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := tw.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// sample returns a plausible entry number i at time at.
func sample(i int, at time.Time) *Entry {
	e := &Entry{
		Time: at, Src: "proxy", User: "alice", IP: "10.10.1.7", Profile: "student",
		Method: "GET", Host: fmt.Sprintf("host%d.example", i), URL: fmt.Sprintf("http://host%d.example/page?i=%d", i, i),
		Categories: categories.SetOf(categories.Gambling), Verdict: "block", Rule: "student#2",
		HTTPStatus: 403, Bytes: int64(100 + i), Duration: time.Duration(i) * 137 * time.Microsecond,
	}
	if i%3 == 0 {
		e.Src, e.Method, e.URL, e.Rcode, e.HTTPStatus = "dns", "A", "", "NXDOMAIN", 0
	}
	return e
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] != '\n' {
		t.Fatalf("%s does not end with a newline", path)
	}
	return bytes.SplitAfter(b[:len(b)-1], []byte("\n"))
}

func writeLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l)
		if !bytes.HasSuffix(l, []byte("\n")) {
			b.WriteByte('\n')
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o640); err != nil {
		t.Fatal(err)
	}
}

func mustVerify(t *testing.T, path string, want int) VerifyResult {
	t.Helper()
	r, err := VerifyFile(path)
	if err != nil {
		t.Fatalf("Verify(%s): %v", path, err)
	}
	if r.Lines != want {
		t.Fatalf("Verify(%s) = %d lines, want %d", path, r.Lines, want)
	}
	return r
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
