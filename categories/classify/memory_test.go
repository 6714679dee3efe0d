package classify

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/categories"
)

func gam(score float64) []CategoryScore {
	return []CategoryScore{{categories.Gambling, score}}
}

func TestMemory(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	m := NewMemory(2, time.Hour)
	if _, ok := m.Lookup("a.example", t0); ok {
		t.Fatal("empty memory found a host")
	}
	m.Remember("a.example", []CategoryScore{{categories.Games, 0.4}, {categories.Gambling, 0.83}, {categories.Adult, 0}}, "", t0)
	set, note, ok := m.Classified("a.example", 0, t0.Add(59*time.Minute))
	if !ok || set != categories.SetOf(categories.Gambling) || note != "gambling=0.83" {
		t.Fatalf("Classified = %v %q %v", set, note, ok)
	}
	// a strict profile's threshold takes games too; a lenient one nothing
	if set, _, _ := m.Classified("a.example", 0.3, t0); set != categories.SetOf(categories.Gambling, categories.Games) {
		t.Fatalf("threshold 0.3: %v", set)
	}
	if set, _, ok := m.Classified("a.example", 0.9, t0); ok || !set.Empty() {
		t.Fatalf("threshold 0.9: %v %v", set, ok)
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
	m.Remember("h.example", gam(0.7), "host", t0)
	if _, note, _ := m.Classified("h.example", 0, t0); note != "host:gambling=0.70" {
		t.Fatalf("host note %q", note)
	}
	// bounded: the oldest goes
	m.Remember("b.example", gam(0.9), "", t0)
	m.Remember("c.example", gam(0.9), "", t0)
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
	if _, _, ok := nilMem.Classified("x", 0, t0); ok || nilMem.Len() != 0 {
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
					m.Remember(h, gam(0.7), "", now)
				}
				m.Classified(h, 0, now.Add(time.Duration(i)*time.Second))
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
		m.Classified("www.example.com", 0, now)
	}
}

func BenchmarkMemoryLookupMiss(b *testing.B) {
	m := NewMemory(0, 0)
	now := time.Now()
	m.Remember("casino.example", gam(0.9), "", now)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Classified("www.example.com", 0, now)
		}
	})
}
