package classify

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/schoolgate/schoolgate/internal/testenv"
	"golang.org/x/net/html"
)

// threadCPU returns the CPU time of the calling OS thread, so benchmarks
// can report CPU per operation on a busy shared machine, where wall time
// includes waiting for a core.
func threadCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// cpuLoop runs f b.N times on one locked thread and reports cpu-ns/op.
func cpuLoop(b *testing.B, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU()
	for b.Loop() {
		f()
	}
	if start > 0 {
		b.ReportMetric(float64(threadCPU()-start)/float64(b.N), "cpu-ns/op")
	}
}

// benchText is about 100 KiB of ordinary prose with a few category words,
// the common case the proxy scores.
var benchText = func() []byte {
	para := "The school football team won the county cup on Saturday after a long season. " +
		"Parents and pupils celebrated in the hall, and the head teacher thanked the coaches. " +
		"Next term the library opens a new reading room; the science department plans a trip " +
		"to the museum, and a talk on online safety and gambling addiction for Year 9. " +
		"Zakłady pracy w Krakowie, les élèves de Lyon et los niños de Madrid se unen al proyecto. "
	var b bytes.Buffer
	for b.Len() < 100<<10 {
		b.WriteString(para)
	}
	return b.Bytes()
}()

var benchHTML = func() []byte {
	var b bytes.Buffer
	b.WriteString("<!doctype html><html><head><title>School news</title><style>p{margin:0}</style><script>var x=1;</script></head><body>")
	for _, p := range strings.SplitAfter(string(benchText), ". ") {
		b.WriteString("<p>" + p + "</p>\n")
	}
	b.WriteString("</body></html>")
	return b.Bytes()
}()

func BenchmarkScore100KiB(b *testing.B) {
	c := Default()
	b.SetBytes(int64(len(benchText)))
	b.ReportAllocs()
	cpuLoop(b, func() { c.Score(benchText) })
}

func BenchmarkScoreHTML100KiB(b *testing.B) {
	c := Default()
	b.SetBytes(int64(len(benchHTML)))
	b.ReportAllocs()
	cpuLoop(b, func() {
		if _, err := c.ScoreHTML(bytes.NewReader(benchHTML), len(benchHTML)); err != nil {
			b.Fatal(err)
		}
	})
}

// markupPage is about 40 KiB of markup-heavy HTML like the proxy's
// benchmark page (the same page): most tags have attributes, as on real
// sites.
var markupPage = testenv.CleanPage()

// BenchmarkSniffMarkup40KiB is what the proxy spends on one scored page.
func BenchmarkSniffMarkup40KiB(b *testing.B) {
	c := Default()
	b.SetBytes(int64(len(markupPage)))
	b.ReportAllocs()
	cpuLoop(b, func() {
		_, rb, _ := c.Sniff(io.NopCloser(bytes.NewReader(markupPage)), "", "text/html; charset=utf-8", 0)
		rb.Close()
	})
}

// BenchmarkTokenizerOnly* run the x/net/html tokenizer alone over the
// same pages (no text taken, nothing scored): the floor under
// ScoreHTML100KiB and SniffMarkup40KiB. On markup the tokenizer
// allocates for every attribute it reads.
func BenchmarkTokenizerOnlyHTML100KiB(b *testing.B)  { benchTokenizer(b, benchHTML) }
func BenchmarkTokenizerOnlyMarkup40KiB(b *testing.B) { benchTokenizer(b, markupPage) }

func benchTokenizer(b *testing.B, page []byte) {
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	cpuLoop(b, func() {
		z := html.NewTokenizer(bytes.NewReader(page))
		for z.Next() != html.ErrorToken {
		}
	})
}

func BenchmarkScoreParallel(b *testing.B) {
	c := Default()
	b.SetBytes(int64(len(benchText)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Score(benchText)
		}
	})
}

func BenchmarkHostClassify(b *testing.B) {
	h := DefaultHost()
	b.ReportAllocs()
	for b.Loop() {
		h.Classify("www.best-online-casinobonus.example.co.uk")
	}
}

// TestScoreSpeed keeps the 100 KiB scoring (text, and HTML with
// extraction) well under a millisecond; it is generous (race detector, a shared machine) and skipped in -short.
func TestScoreSpeed(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("timing test")
	}
	// CPU time, not wall time: on a shared machine the wall clock counts
	// the wait for a core. The best of three runs: a loaded machine (other
	// tests, other builds) inflates CPU time too, by contention for caches
	// and cores, and the best run is the nearest to the cost itself.
	best := func(f func(*testing.B)) (cpu float64, r testing.BenchmarkResult) {
		for i := 0; i < 3; i++ {
			res := testing.Benchmark(f)
			c := res.Extra["cpu-ns/op"]
			if i == 0 || c < cpu {
				cpu, r = c, res
			}
		}
		return cpu, r
	}
	cpu, r := best(BenchmarkScore100KiB)
	if cpu == 0 {
		t.Skip("no per-thread CPU time here")
	}
	// The target is well under 1 ms; fail at 1 ms.
	if cpu > 1e6 {
		t.Fatalf("scoring 100 KiB took %.0f µs of CPU", cpu/1e3)
	}
	t.Logf("scoring 100 KiB of text: %.0f µs CPU/op (%v wall/op)", cpu/1e3, r.NsPerOp())
	// With the HTML tokenizer (about half of it) the page is still well
	// under 1 ms (0.6–0.75 ms here on a quiet machine); 1.5 ms leaves room
	// for a busy machine and still catches a path gone several times slower.
	cpu, r = best(BenchmarkScoreHTML100KiB)
	if cpu > 1.5e6 {
		t.Fatalf("extracting and scoring 100 KiB of HTML took %.0f µs of CPU", cpu/1e3)
	}
	t.Logf("extracting and scoring 100 KiB of HTML: %.0f µs CPU/op (%v wall/op)", cpu/1e3, r.NsPerOp())
}
