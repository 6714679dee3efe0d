package logging

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// spin does a fixed amount of work (about 2 µs here), standing in for a
// request's own work between two lines. A count, not a clock: when the
// machine is busy a clock-timed spin would use less CPU in one run than
// in another and spoil the baseline.
func spin(n int) uint64 {
	x := uint64(n)
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

var spinSink uint64

// BenchmarkLogCPU measures the process CPU time one access-log line
// costs, all of it: the caller's Log, the hand-off to the writer
// goroutine and its wake-ups, encoding, SHA-256, writes and syncs (Close
// is inside the measured span). Callers log as a DNS server's handlers
// do: several goroutines, a little work between lines and idle gaps, at
// about 50,000 lines/s in all; wall time on a shared machine is noisy, CPU
// time much less so. The same load without a writer is measured first and
// subtracted, so cpu-ns/line is what logging adds.
//
//	go test -run XXX -bench LogCPU -benchtime 200000x -count 5 ./logging
func BenchmarkLogCPU(b *testing.B) {
	// work=0 is steadier; work=2000 spins about 2 µs per line besides
	// Log, as a handler would work, but its baseline is noisier.
	for _, work := range []int{0, 2000} {
		b.Run(fmt.Sprintf("work=%d", work), func(b *testing.B) { benchLogCPU(b, work) })
	}
}

func benchLogCPU(b *testing.B, work int) {
	const (
		goroutines = 4
		burst      = 16               // lines between idle gaps
		gap        = time.Millisecond // idle between bursts
	)
	load := func(w *Writer) time.Duration {
		now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
		cpu0 := processCPU(b)
		var wg sync.WaitGroup
		var mu sync.Mutex
		for g := 0; g < goroutines; g++ {
			n := b.N / goroutines
			if g == 0 {
				n += b.N % goroutines
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := sample(g, now)
				var x uint64
				for i := 0; i < n; i++ {
					x += spin(work)
					w.Log(e) // a nil Writer does nothing
					if i%burst == burst-1 {
						time.Sleep(gap)
					}
				}
				mu.Lock()
				spinSink += x
				mu.Unlock()
			}()
		}
		wg.Wait()
		if w != nil {
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
		return processCPU(b) - cpu0
	}
	dir := b.TempDir()
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	base := load(nil)
	w, err := Open(Options{Dir: dir, Location: london, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	cpu := load(w)
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(cpu-base)/float64(b.N), "cpu-ns/line")
	b.ReportMetric(float64(base)/float64(b.N), "base-cpu-ns/line")
	b.ReportMetric(float64(b.N)/el.Seconds(), "lines/s")
	if n, err := Verify(PathFor(dir, now)); err != nil || n != b.N {
		b.Fatalf("Verify = %d, %v; want %d lines", n, err, b.N)
	}
}
