//go:build unix

package report

import (
	"github.com/schoolgate/schoolgate/internal/testenv"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkReport summarises a generated day of a million log lines
// (about 2,000 pupils, a long tail of 200,000 hosts) and writes the HTML
// and CSV. It reports lines/s and the peak heap seen while it ran.
func BenchmarkReport(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	f, err := os.Create(filepath.Join(dir, "access-2026-11-20.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	if err := genRandomDay(f, day, n, 1); err != nil {
		b.Fatal(err)
	}
	st, _ := f.Stat()
	f.Close()
	b.SetBytes(st.Size())
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	b.ReportAllocs()
	cpu0 := testenv.ProcessCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := Run(Options{Dir: dir, From: day, To: day, Location: time.UTC})
		if err != nil {
			b.Fatal(err)
		}
		if r.Requests != n {
			b.Fatalf("read %d lines, want %d", r.Requests, n)
		}
		if err := r.WriteHTML(discard{}); err != nil {
			b.Fatal(err)
		}
		if err := r.WriteCSV(discard{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu := testenv.ProcessCPU() - cpu0
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(float64(peak.Load()-min(peak.Load(), base.HeapInuse))/(1<<20), "peak-heap-MB")
	// CPU seconds (user+system, all threads, GC included) per run: on a
	// shared, loaded machine this says more than the wall time.
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
