package policy

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/internal/testenv"
)

// bigDB is the embedded database plus, when ../shared/lists is found, every
// public list in it, loaded once for all benchmarks. sample holds domains
// taken from the lists (or the embedded names when there are none), so that
// benchmarks look up names that are really there.
var bigDB struct {
	once   sync.Once
	db     *categories.DB
	sample []string
}

func loadBigDB(b *testing.B) (*categories.DB, []string) {
	bigDB.once.Do(func() {
		start := time.Now()
		bd := categories.NewBuilder()
		bd.AddEmbedded()
		var sample []string
		if root := findUp(b, filepath.Join("shared", "lists")); root != "" {
			if st, err := bd.LoadUT1(filepath.Join(root, "ut1")); err == nil {
				b.Logf("ut1: %d added, %d skipped", st.Added, st.Skipped)
			}
			for _, set := range []struct{ dir, suffix string }{{"blocklistproject", ".txt.gz"}, {"sinfonietta", ".gz"}} {
				for list, cat := range suggestions(filepath.Join(root, set.dir, "CATEGORIES.tsv")) {
					c, ok := categories.Parse(cat)
					if !ok {
						continue
					}
					path := filepath.Join(root, set.dir, list+set.suffix)
					if _, err := bd.LoadFile(path, "", c); err != nil {
						b.Logf("loading %s: %v", path, err)
					}
				}
			}
			sample = sampleDomains(filepath.Join(root, "ut1", "gambling", "domains.gz"), 2000)
		}
		bigDB.db = bd.Build()
		if len(sample) == 0 {
			sample = []string{"bet365.com", "www.youtube.com", "mail.google.com", "www.bbc.co.uk"}
		}
		bigDB.sample = sample
		b.Logf("database: %d entries in %v", bigDB.db.Len(), time.Since(start).Round(time.Millisecond))
	})
	return bigDB.db, bigDB.sample
}

// suggestions reads a CATEGORIES.tsv: list name → suggested category.
func suggestions(path string) map[string]string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	head := strings.Split(lines[0], "\t")
	col := -1
	for i, h := range head {
		if h == "schoolgate_suggestion" {
			col = i
		}
	}
	out := map[string]string{}
	for _, l := range lines[1:] {
		f := strings.Split(l, "\t")
		if col >= 0 && col < len(f) && f[col] != "" {
			out[f[0]] = f[col]
		}
	}
	return out
}

func sampleDomains(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil
	}
	var out []string
	sc := bufio.NewScanner(io.LimitReader(zr, 1<<20))
	for sc.Scan() && len(out) < n {
		if h, ok := categories.NormalizeHost(strings.TrimSpace(sc.Text())); ok {
			out = append(out, "www."+h)
		}
	}
	return out
}

// cpuPerOp reports the process's CPU time per operation since start, as
// cpu-ns/op: on a shared machine ns/op counts the time spent waiting for a
// core, this does not.
func cpuPerOp(b *testing.B, start time.Duration) {
	if start == 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64(testenv.ProcessCPU()-start)/float64(b.N), "cpu-ns/op")
}

// benchArgs mixes listed names, unknown names and URLs for known profiles.
func benchArgs(b *testing.B, sample []string, n int) []Args {
	tue := at(b, london(b), "2026-11-24 12:30")
	users := []string{"alice", "bob", ""}
	out := make([]Args, n)
	for i := range out {
		a := Args{User: users[i%len(users)], IP: netip.MustParseAddr("10.10.1.1"), Time: tue}
		switch i % 4 {
		case 0, 1:
			a.Host = sample[i%len(sample)]
		case 2:
			a.Host = fmt.Sprintf("host%d.unlisted.example", i)
		case 3:
			a.Host, a.Path = "www.bbc.co.uk", fmt.Sprintf("/iplayer/episode/%d", i)
		}
		out[i] = a
	}
	return out
}

// BenchmarkDecide is the uncached decision on the full database.
func BenchmarkDecide(b *testing.B) {
	db, sample := loadBigDB(b)
	s := mustCompile(b, exampleConfig(b), db, testUsers())
	args := benchArgs(b, sample, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := testenv.ProcessCPU()
	for i := 0; i < b.N; i++ {
		s.Decide(args[i&4095])
	}
	cpuPerOp(b, cpu)
}

// BenchmarkEngineDecideCached is the hot path: every decision a cache hit,
// all cores deciding at once.
func BenchmarkEngineDecideCached(b *testing.B) {
	db, sample := loadBigDB(b)
	e := NewEngine(mustCompile(b, exampleConfig(b), db, testUsers()), 100000, nil)
	args := benchArgs(b, sample, 4096)
	for _, a := range args {
		e.Decide(a)
	}
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	cpu := testenv.ProcessCPU()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1) * 977)
		for pb.Next() {
			e.Decide(args[i&4095])
			i++
		}
	})
	b.StopTimer()
	cpuPerOp(b, cpu)
	if hits, misses, _ := e.CacheStats(); misses > uint64(len(args)) {
		b.Errorf("%d misses after warming (hits %d)", misses, hits)
	}
}

// BenchmarkEngineDecideMiss is the engine on names it has not seen: a
// decision plus the cache insert (and an eviction).
func BenchmarkEngineDecideMiss(b *testing.B) {
	db, _ := loadBigDB(b)
	e := NewEngine(mustCompile(b, exampleConfig(b), db, testUsers()), 1024, nil)
	const n = 1 << 17
	args := make([]Args, n)
	tue := at(b, london(b), "2026-11-24 12:30")
	for i := range args {
		args[i] = Args{User: "bob", Host: fmt.Sprintf("h%d.example.net", i), Time: tue}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := testenv.ProcessCPU()
	for i := 0; i < b.N; i++ {
		e.Decide(args[i&(n-1)])
	}
	cpuPerOp(b, cpu)
}
