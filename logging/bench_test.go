package logging

import (
	"testing"
	"time"
)

// BenchmarkLog measures the lines per second the writer sustains, from
// Log to the bytes in a temp file (Close included, so nothing is left in
// memory when the clock stops).
func BenchmarkLog(b *testing.B) {
	for _, par := range []struct {
		name     string
		parallel bool
	}{{"serial", false}, {"parallel", true}} {
		b.Run(par.name, func(b *testing.B) {
			dir := b.TempDir()
			now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
			w, err := Open(Options{Dir: dir, Location: london, Now: func() time.Time { return now }})
			if err != nil {
				b.Fatal(err)
			}
			e := sample(1, now)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			if par.parallel {
				b.RunParallel(func(pb *testing.PB) {
					e := *e
					for pb.Next() {
						w.Log(&e)
					}
				})
			} else {
				for i := 0; i < b.N; i++ {
					w.Log(e)
				}
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "lines/s")
			n, err := Verify(PathFor(dir, now))
			if err != nil || n != b.N {
				b.Fatalf("Verify = %d, %v; want %d lines", n, err, b.N)
			}
		})
	}
}

// BenchmarkVerify measures Verify on a file of 100,000 lines written by
// the writer (lines/s reported; the file is in the page cache).
func BenchmarkVerify(b *testing.B) {
	dir := b.TempDir()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	w, err := Open(Options{Dir: dir, Location: london, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	const lines = 100000
	for i := 0; i < lines; i++ {
		w.Log(sample(i, now))
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	path := PathFor(dir, now)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if n, err := Verify(path); err != nil || n != lines {
			b.Fatalf("Verify = %d, %v", n, err)
		}
	}
	b.ReportMetric(float64(b.N*lines)/time.Since(start).Seconds(), "lines/s")
}
