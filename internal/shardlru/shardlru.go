// Package shardlru is the sharded LRU behind the verdict cache and the
// DNS answer cache: a power-of-two set of simplelru.LRUs, each behind its
// own mutex, picked by the low bits of a hash the caller computes.
// golang-lru's lru.Cache takes one exclusive lock for every Get, which
// serialises all cores; here two lookups on different shards never wait
// for each other.
//
// Each shard carries a value of the caller's type S (counters, say),
// guarded by the same lock, so that counting a hit costs nothing more
// than the lookup. What a cache keeps and when an entry is stale stay
// with the caller, who works on a locked shard: sh := c.Shard(h);
// sh.Lock(); …; sh.Unlock() (three calls the compiler inlines).
package shardlru

import (
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Cache is a sharded LRU from K to V with per-shard data S. A nil *Cache
// holds nothing (Len 0; Purge and Resize do nothing).
type Cache[K comparable, V, S any] struct {
	shards []Shard[K, V, S] // len is a power of two
	mask   uint64
}

// Shard is one part of a Cache. Between Lock and Unlock the caller may use
// LRU and Data freely.
type Shard[K comparable, V, S any] struct {
	sync.Mutex
	LRU  *simplelru.LRU[K, V]
	Data S
	_    [64]byte // keeps neighbouring shards' locks off one cache line
}

// New returns a cache of about size entries in as many shards as keep at
// least minPerShard entries each, at most maxShards (rounded down to a
// power of two); nil for a size <= 0.
func New[K comparable, V, S any](size, maxShards, minPerShard int) *Cache[K, V, S] {
	if size <= 0 {
		return nil
	}
	n := 1
	for n*2 <= maxShards && size/(n*2) >= minPerShard {
		n *= 2
	}
	c := &Cache[K, V, S]{shards: make([]Shard[K, V, S], n), mask: uint64(n - 1)}
	per := perShard(size, n)
	for i := range c.shards {
		c.shards[i].LRU, _ = simplelru.NewLRU[K, V](per, nil) // fails only for a size <= 0
	}
	return c
}

func perShard(size, n int) int { return max((size+n-1)/n, 1) }

// Shard returns the shard that hash h picks (not locked).
func (c *Cache[K, V, S]) Shard(h uint64) *Shard[K, V, S] { return &c.shards[h&c.mask] }

// Each calls f on every shard in turn, locked.
func (c *Cache[K, V, S]) Each(f func(*Shard[K, V, S])) {
	if c == nil {
		return
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.Lock()
		f(s)
		s.Unlock()
	}
}

// Len is the number of entries.
func (c *Cache[K, V, S]) Len() int {
	n := 0
	c.Each(func(s *Shard[K, V, S]) { n += s.LRU.Len() })
	return n
}

// Purge drops every entry (the shards' Data stays).
func (c *Cache[K, V, S]) Purge() { c.Each(func(s *Shard[K, V, S]) { s.LRU.Purge() }) }

// Resize makes room for about size entries in the same shards; it reports
// false for a nil cache or a size <= 0, when the caller must build anew.
func (c *Cache[K, V, S]) Resize(size int) bool {
	if c == nil || size <= 0 {
		return false
	}
	per := perShard(size, len(c.shards))
	c.Each(func(s *Shard[K, V, S]) { s.LRU.Resize(per) })
	return true
}

// Shards is the number of shards.
func (c *Cache[K, V, S]) Shards() int {
	if c == nil {
		return 0
	}
	return len(c.shards)
}
