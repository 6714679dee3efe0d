package classify

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/categories"
)

func TestMemory(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	m := NewMemory(2, time.Hour)
	if _, ok := m.Lookup("a.example", t0); ok {
		t.Fatal("empty memory found a host")
	}
	m.Remember("a.example", categories.SetOf(categories.Gambling), "gambling=0.83", t0)
	r, ok := m.Lookup("a.example", t0.Add(59*time.Minute))
	if !ok || !r.Categories.Has(categories.Gambling) || r.Note != "gambling=0.83" {
		t.Fatalf("Lookup = %+v %v", r, ok)
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
	m.Remember("b.example", categories.SetOf(categories.Adult), "adult=0.9", t0)
	m.Remember("c.example", categories.SetOf(categories.Adult), "adult=0.9", t0)
	m.Remember("d.example", categories.SetOf(categories.Adult), "adult=0.9", t0)
	if _, ok := m.Lookup("b.example", t0); ok || m.Len() != 2 {
		t.Fatalf("not bounded: Len %d", m.Len())
	}
	m.Forget("d.example")
	if _, ok := m.Lookup("d.example", t0); ok {
		t.Fatal("Forget kept the host")
	}
	m.Remember("e.example", 0, "", t0) // nothing to remember
	if _, ok := m.Lookup("e.example", t0); ok {
		t.Fatal("empty set remembered")
	}
	var nilMem *Memory
	nilMem.Remember("x", categories.SetOf(categories.Adult), "", t0)
	if _, ok := nilMem.Lookup("x", t0); ok || nilMem.Len() != 0 {
		t.Fatal("nil memory holds something")
	}
	if Note(categories.Gambling, 0.8349) != "gambling=0.83" {
		t.Fatalf("Note = %q", Note(categories.Gambling, 0.8349))
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
					m.Remember(h, categories.SetOf(categories.Games), "games=0.7", now)
				}
				m.Lookup(h, now.Add(time.Duration(i)*time.Second))
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
		m.Lookup("www.example.com", now)
	}
}

func BenchmarkMemoryLookupMiss(b *testing.B) {
	m := NewMemory(0, 0)
	now := time.Now()
	m.Remember("casino.example", categories.SetOf(categories.Gambling), "gambling=0.9", now)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Lookup("www.example.com", now)
		}
	})
}
