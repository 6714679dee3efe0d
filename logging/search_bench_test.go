package logging

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// BenchmarkSearch30Days is `logs search -user` over 30 days of a million
// lines each (1000 users), after the days were closed and indexed once:
// 23 of them compressed, as days older than a week are. It writes about
// 10 GB while it prepares (3 GB stay), so it runs only when asked:
//
//	make bench-search    (SCHOOLGATE_BENCH_SEARCH=1; SCHOOLGATE_BENCH_DIR=DIR keeps the data for another run)
func BenchmarkSearch30Days(b *testing.B) {
	if os.Getenv("SCHOOLGATE_BENCH_SEARCH") == "" {
		b.Skip("set SCHOOLGATE_BENCH_SEARCH=1 (make bench-search): it writes 30 days of a million lines")
	}
	const days, perDay, users = 30, 1_000_000, 1000
	dir := os.Getenv("SCHOOLGATE_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	first := time.Date(2026, 10, 1, 0, 0, 0, 0, london)
	now := first.AddDate(0, 0, days).Add(9 * time.Hour) // every day closed
	if ds, _ := ListDays(dir, london); len(ds) != days {
		start := time.Now()
		for d := 0; d < days; d++ {
			genDay(b, dir, first.AddDate(0, 0, d), perDay, users)
		}
		b.Logf("generated %d days × %d lines in %v", days, perDay, time.Since(start).Round(time.Second))
		start = time.Now()
		if _, err := CompressOld(dir, london, now, nil); err != nil {
			b.Fatal(err)
		}
		b.Logf("compressed (and indexed) the days older than a week in %v", time.Since(start).Round(time.Second))
		start = time.Now()
		if _, err := Search(dir, london, Query{User: "user0001"}, now, func(*Line) {}); err != nil {
			b.Fatal(err)
		}
		b.Logf("first search (indexing the other days) in %v", time.Since(start).Round(time.Second))
	}
	b.ResetTimer()
	var found int
	for i := 0; i < b.N; i++ {
		found = 0
		checks, err := Search(dir, london, Query{User: "user0" + strconv.Itoa(100+i%900)}, now, func(*Line) { found++ })
		if err != nil {
			b.Fatal(err)
		}
		if len(checks) != days {
			b.Fatalf("%d days searched", len(checks))
		}
		for _, c := range checks {
			if c.Problem != "" || c.Lines != perDay {
				b.Fatalf("%+v", c)
			}
		}
	}
	b.ReportMetric(float64(found), "lines/search")
}
