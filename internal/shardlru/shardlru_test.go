package shardlru

import (
	"sync"
	"testing"
)

func TestShardsAndSizes(t *testing.T) {
	for _, c := range []struct{ size, max, min, shards int }{
		{100000, 64, 64, 64}, {1000, 64, 64, 8}, {100, 64, 64, 1}, {50000, 16, 64, 16}, {1, 64, 64, 1},
	} {
		lc := New[int, int, struct{}](c.size, c.max, c.min)
		if lc.Shards() != c.shards {
			t.Errorf("New(%d, %d, %d): %d shards, want %d", c.size, c.max, c.min, lc.Shards(), c.shards)
		}
	}
	if New[int, int, struct{}](0, 64, 64) != nil {
		t.Error("a size of 0 made a cache")
	}
	var nilc *Cache[int, int, struct{}]
	if nilc.Len() != 0 || nilc.Resize(10) || nilc.Shards() != 0 {
		t.Error("a nil cache is not empty")
	}
	nilc.Purge()
}

// Entries go to the shard their hash picks; Len, Purge and Resize see all.
func TestLockLenPurgeResize(t *testing.T) {
	type counts struct{ adds int }
	c := New[uint64, string, counts](1024, 64, 64)
	for h := range uint64(1000) {
		s := c.Shard(h)
		s.Lock()
		s.LRU.Add(h, "v")
		s.Data.adds++
		s.Unlock()
	}
	if c.Len() != 1000 {
		t.Fatalf("Len = %d, want 1000", c.Len())
	}
	adds := 0
	c.Each(func(s *Shard[uint64, string, counts]) { adds += s.Data.adds })
	if adds != 1000 {
		t.Errorf("shard data counted %d adds, want 1000", adds)
	}
	s := c.Shard(7)
	s.Lock()
	v, ok := s.LRU.Get(7)
	s.Unlock()
	if !ok || v != "v" {
		t.Error("an entry is not in the shard its hash picks")
	}
	if !c.Resize(128) || c.Len() > 128 {
		t.Errorf("after Resize(128): %d entries", c.Len())
	}
	c.Purge()
	if c.Len() != 0 {
		t.Errorf("after Purge: %d entries", c.Len())
	}
}

func TestConcurrent(t *testing.T) {
	c := New[uint64, int, int](4096, 64, 64)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range uint64(5000) {
				h := i*8 + uint64(g)
				s := c.Shard(h)
				s.Lock()
				s.LRU.Add(h, g)
				s.Data++
				s.Unlock()
			}
		}()
	}
	wg.Wait()
	total := 0
	c.Each(func(s *Shard[uint64, int, int]) { total += s.Data })
	if total != 40000 {
		t.Errorf("%d adds counted, want 40000", total)
	}
}
