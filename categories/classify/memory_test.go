package classify

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/categories"
)

func gam(score float64) []CategoryScore {
	return []CategoryScore{{categories.Gambling, score}}
}

func TestMemoryHost(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	m := NewMemory(2, time.Hour)
	if _, ok := m.Lookup("a.example", t0); ok {
		t.Fatal("empty memory found a host")
	}
	m.Remember("a.example", []CategoryScore{{categories.Games, 0.5}, {categories.Gambling, 0.83}, {categories.Adult, 0}}, ViaHost, t0)
	r, ok := m.Classified("a.example", "", 0, t0.Add(59*time.Minute))
	if !ok || r.Categories != categories.SetOf(categories.Gambling) || r.Note != "host:gambling=0.83" || !r.Host {
		t.Fatalf("Classified = %+v %v", r, ok)
	}
	// a strict profile's threshold takes games too (0.5 is clear evidence
	// over 0.3); a lenient one nothing
	if r, _ := m.Classified("a.example", "/any", 0.3, t0); r.Categories != categories.SetOf(categories.Gambling, categories.Games) || !r.Host {
		t.Fatalf("threshold 0.3: %+v", r)
	}
	if r, ok := m.Classified("a.example", "", 0.75, t0); ok || !r.Categories.Empty() {
		t.Fatalf("threshold 0.75 (clear evidence 0.875): %+v %v", r, ok)
	}
	if _, ok := m.Lookup("www.a.example", t0); ok {
		t.Fatal("a subdomain matched: the memory is per host")
	}
	if _, ok := m.Lookup("a.example", t0.Add(time.Hour)); ok {
		t.Fatal("an expired entry was found")
	}
	if m.Len() != 0 {
		t.Fatalf("expired entry kept: Len %d", m.Len())
	}
	// bounded: the oldest goes
	m.Remember("h.example", gam(0.9), ViaHost, t0)
	m.Remember("b.example", gam(0.9), ViaHost, t0)
	m.Remember("c.example", gam(0.9), ViaHost, t0)
	if _, ok := m.Lookup("h.example", t0); ok || m.Len() != 2 {
		t.Fatalf("not bounded: Len %d", m.Len())
	}
	m.Forget("c.example")
	if _, ok := m.Lookup("c.example", t0); ok {
		t.Fatal("Forget kept the host")
	}
	m.Remember("e.example", nil, "", t0) // nothing to remember
	m.Remember("e.example", gam(0), "", t0)
	if _, ok := m.Lookup("e.example", t0); ok {
		t.Fatal("nothing remembered as something")
	}
	var nilMem *Memory
	nilMem.Remember("x", gam(1), "", t0)
	nilMem.Page(PageVisit{Host: "x", Path: "/", Visitor: "user:a", Scores: gam(1)}, t0)
	if _, ok := nilMem.Classified("x", "/", 0, t0); ok || nilMem.Len() != 0 {
		t.Fatal("nil memory holds something")
	}
	if Note(categories.Gambling, 0.8349) != "gambling=0.83" {
		t.Fatalf("Note = %q", Note(categories.Gambling, 0.8349))
	}
}

// TestMemoryPages: a page is remembered for itself only; a host only when
// HostPages pages from HostVisitors visitors agree, never from one
// visitor, whatever the number of pages.
func TestMemoryPages(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	m := NewMemory(0, time.Hour)
	visit := func(path, visitor string, score float64) bool {
		return m.Page(PageVisit{Host: "spins.example", Path: path, Visitor: visitor, Scores: gam(score)}, t0)
	}
	if visit("/", "user:alice", 0.95) {
		t.Fatal("one page remembered the host")
	}
	r, ok := m.Classified("spins.example", "/", 0, t0)
	if !ok || r.Host || r.Note != "gambling=0.95" || r.Categories != categories.SetOf(categories.Gambling) {
		t.Fatalf("the page itself: %+v %v", r, ok)
	}
	for _, path := range []string{"", "/other", "/?q=1", "/#top"} {
		if r, ok := m.Classified("spins.example", path, 0, t0); ok {
			t.Fatalf("path %q decided by another page: %+v", path, r)
		}
	}
	// one visitor, any number of pages: never the host
	for i := range 20 {
		if visit(fmt.Sprintf("/p%d", i), "user:alice", 0.95) {
			t.Fatalf("host remembered from one visitor's %d pages", i+2)
		}
	}
	if _, ok := m.Lookup("spins.example", t0); ok {
		t.Fatal("host remembered from one visitor")
	}
	if n := len(m.sites.Values()[0].pages); n > maxSitePages {
		t.Fatalf("%d pages kept, bound %d", n, maxSitePages)
	}
	// queries and unknown visitors add nothing
	m.Page(PageVisit{Host: "spins.example", Path: "/search?q=casino", Visitor: "user:bob", Scores: gam(0.99)}, t0)
	if _, ok := m.Classified("spins.example", "/search", 0, t0); ok {
		t.Fatal("a page with a query was remembered")
	}
	if visit("/a", "", 0.9) || visit("/b", "", 0.9) {
		t.Fatal("unknown visitors counted")
	}
	// two visitors: not yet
	if visit("/bob1", "user:bob", 0.8) {
		t.Fatal("host remembered from two visitors")
	}
	// the third visitor agrees: the host scores as its weakest agreeing page
	if !visit("/carol", "ip:10.0.0.9", 0.85) {
		t.Fatal("three pages from three visitors did not remember the host")
	}
	r, ok = m.Classified("spins.example", "/never-seen", 0, t0)
	if !ok || !r.Host || r.Note != "pages:gambling=0.80" {
		t.Fatalf("host memory: %+v %v", r, ok)
	}
	if r, ok := m.Classified("spins.example", "", 0, t0); !ok || !r.Host {
		t.Fatalf("DNS question: %+v %v", r, ok)
	}
	// the page's own memory still comes first for that page
	if r, _ := m.Classified("spins.example", "/carol", 0, t0); r.Host || r.Note != "gambling=0.85" {
		t.Fatalf("own page: %+v", r)
	}
	if m.Added() != 1 {
		t.Fatalf("Added %d", m.Added())
	}
	// a lenient profile: 0.80 is not clear evidence over 0.7
	if _, ok := m.Classified("spins.example", "/never-seen", 0.7, t0); ok {
		t.Fatal("host recalled under clear evidence")
	}
}

func TestAgreement(t *testing.T) {
	pg := func(v string, s float64) pageMemory { return pageMemory{visitor: v, scores: gam(s)} }
	for _, tc := range []struct {
		name  string
		pages []pageMemory
		want  float64 // 0: none
	}{
		{"two pages", []pageMemory{pg("a", 0.9), pg("b", 0.9)}, 0},
		{"one visitor", []pageMemory{pg("a", 0.9), pg("a", 0.9), pg("a", 0.9), pg("a", 0.9)}, 0},
		{"two visitors", []pageMemory{pg("a", 0.9), pg("b", 0.9), pg("a", 0.9), pg("b", 0.9)}, 0},
		{"three and three", []pageMemory{pg("a", 0.9), pg("b", 0.8), pg("c", 0.95)}, 0.8},
		// the best three pages are one visitor's: agreement needs the fifth
		{"weakest agreeing", []pageMemory{pg("a", 0.99), pg("a", 0.98), pg("a", 0.97), pg("b", 0.7), pg("c", 0.65)}, 0.65},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := agreement(tc.pages)
			if tc.want == 0 {
				if len(got) != 0 {
					t.Fatalf("agreed %v", got)
				}
				return
			}
			if len(got) != 1 || got[0].Score != tc.want {
				t.Fatalf("agreed %v, want gambling %v", got, tc.want)
			}
		})
	}
}

func TestClearEvidence(t *testing.T) {
	for _, tc := range []struct{ threshold, want float64 }{
		{0, 0.75}, {0.6, 0.75}, {0.3, 0.45}, {0.9, 0.95}, {0.95, 0.975},
	} {
		if got := ClearEvidence(tc.threshold); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("ClearEvidence(%v) = %v, want %v", tc.threshold, got, tc.want)
		}
	}
	r := &Result{Scores: make([]float64, numCats)}
	r.Scores[categories.Gambling] = 0.68
	r.Scores[categories.Adult] = 0.9
	r.Scores[categories.Games] = 0.3
	sure, unsure := r.Judge(0)
	if sure != categories.SetOf(categories.Adult) || unsure != categories.SetOf(categories.Gambling) {
		t.Fatalf("Judge(0) = %v, %v", sure, unsure)
	}
	if sure, unsure := r.Judge(0.2); sure != categories.SetOf(categories.Adult, categories.Gambling) || unsure != categories.SetOf(categories.Games) {
		t.Fatalf("Judge(0.2) = %v, %v", sure, unsure)
	}
}

// TestInputCategories: what the visitor sent is read as the page would
// echo it: decoded, normalised, and each short run on its own.
func TestInputCategories(t *testing.T) {
	c := Default()
	for _, tc := range []struct {
		name   string
		inputs []string
		want   categories.Set
	}{
		{"search path", []string{"/search/online-casino-free-spins"}, categories.SetOf(categories.Gambling)},
		{"query, plus and percent", []string{"/search", "q=online+casino%20free+spins"}, categories.SetOf(categories.Gambling)},
		{"leetspeak", []string{"/s/0nline-c4sino"}, categories.SetOf(categories.Gambling)},
		{"hidden by help words", []string{"/q/online casino free spins gambling addiction help support helpline"}, categories.SetOf(categories.Gambling)},
		{"referer and cookie", []string{"/", "http://other.example/?q=free+spins", "name=online casino"}, categories.SetOf(categories.Gambling)},
		{"innocent", []string{"/maths/probability-lesson", "", "session=abc123"}, 0},
		{"empty", nil, 0},
		{"too long to vet", []string{"/" + strings.Repeat("maths-", maxInputWords+1)}, categories.SetOf(categories.Gambling, categories.Adult, categories.Extremism)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.InputCategories(tc.inputs...); got&tc.want != tc.want || (tc.want.Empty() && !got.Empty()) {
				t.Fatalf("InputCategories = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMemoryConcurrent(t *testing.T) {
	m := NewMemory(100, time.Hour)
	now := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				h := fmt.Sprintf("h%d.example", i%150)
				if i%3 == g%3 {
					m.Page(PageVisit{Host: h, Path: fmt.Sprintf("/%d", i%7), Visitor: fmt.Sprint("user:", g), Scores: gam(0.9)}, now)
				}
				m.Classified(h, "/1", 0, now.Add(time.Duration(i)*time.Second))
			}
		}(g)
	}
	wg.Wait()
	if m.Len() > 100 {
		t.Fatalf("Len %d over the bound", m.Len())
	}
}

func BenchmarkMemoryLookupEmpty(b *testing.B) {
	m := NewMemory(0, 0)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		m.Classified("www.example.com", "/", 0, now)
	}
}

func BenchmarkMemoryLookupMiss(b *testing.B) {
	m := NewMemory(0, 0)
	now := time.Now()
	m.Remember("casino.example", gam(0.9), ViaHost, now)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Classified("www.example.com", "/", 0, now)
		}
	})
}

// FuzzInputCategories: a request's path, Referer and cookies are the
// visitor's; reading them never panics, and words of a category the
// visitor adds are never hidden by what comes before them.
func FuzzInputCategories(f *testing.F) {
	for _, s := range []string{"/search/online-casino", "/%63asino?q=x", "%zz%", "/a+b%20c", "ref=https://x.test/?q=free+spins",
		strings.Repeat("a-", 300), "/ĳ/\u0301/\xff"} {
		f.Add(s)
	}
	c := Default()
	f.Fuzz(func(t *testing.T, in string) {
		got := c.InputCategories(in)
		if len(Words(in)) < maxInputWords/2 && !c.InputCategories(in, "online casino").Has(categories.Gambling) {
			t.Fatalf("gambling words after %q not seen (alone: %v)", in, got)
		}
	})
}

// BenchmarkInputCategories is what vetting a request's input costs: it
// runs only for a page with clear evidence that could be remembered.
func BenchmarkInputCategories(b *testing.B) {
	c := Default()
	path := "/news/2026/11/school-minibus-fund-raises-money-at-the-bake-sale"
	ref := "https://www.google.com/search?q=hillside+school+bake+sale"
	cookie := "session=7f3a9c; theme=dark; consent=yes"
	b.ReportAllocs()
	for b.Loop() {
		c.InputCategories(path, ref, cookie)
	}
}

func BenchmarkMemoryPageLookup(b *testing.B) {
	m := NewMemory(0, 0)
	now := time.Now()
	for i := range 10 {
		m.Page(PageVisit{Host: "casino.example", Path: fmt.Sprint("/", i), Visitor: "user:a", Scores: gam(0.9)}, now)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Classified("casino.example", "/other", 0, now)
		}
	})
}

// TestEchoes: a page's phrase completed by one word of the visitor's is
// the visitor's evidence as much as the site's.
func TestEchoes(t *testing.T) {
	c := Default()
	r := c.Score([]byte("Results for online casino. Our casino has the best live casino tables and free spins."))
	if !r.Echoes("/search/online").Has(categories.Gambling) {
		t.Fatalf("the echoed word of a matched phrase not seen: %v", explain(r))
	}
	if got := r.Echoes("/about-us", "session=abc"); !got.Empty() {
		t.Fatalf("Echoes = %v for input the phrases do not use", got)
	}
	var nilResult *Result
	if !nilResult.Echoes("/x").Empty() {
		t.Fatal("nil result echoes")
	}
}
