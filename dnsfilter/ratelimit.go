package dnsfilter

import (
	"hash/maphash"
	"net/netip"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

const (
	limiterShards   = 16
	limiterPerShard = 4096 // addresses remembered per shard (LRU)
)

// limiter holds one token bucket per source address (burst: one second's
// worth), and remembers when each address last produced a log line, so
// that a flood of refused queries yields at most one line a second.
type limiter struct {
	seed   maphash.Seed
	shards [limiterShards]limiterShard
}

type limiterShard struct {
	mu  sync.Mutex
	lru *simplelru.LRU[netip.Addr, *bucket]
}

type bucket struct {
	tokens  float64
	last    int64 // unix nanoseconds of the last refill
	logSec  int64 // unix second of the last allowed "noisy" event
	logSeen bool
}

func newLimiter() *limiter {
	l := &limiter{seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].lru, _ = simplelru.NewLRU[netip.Addr, *bucket](limiterPerShard, nil)
	}
	return l
}

func (l *limiter) shard(ip netip.Addr) *limiterShard {
	b := ip.As16()
	return &l.shards[maphash.Bytes(l.seed, b[:])&(limiterShards-1)]
}

func (l *limiter) get(s *limiterShard, ip netip.Addr, qps float64, now int64) *bucket {
	b, ok := s.lru.Get(ip)
	if !ok {
		b = &bucket{tokens: qps, last: now}
		s.lru.Add(ip, b)
	}
	return b
}

// allow takes a token for ip at now (unix nanoseconds) from a bucket
// refilled at qps per second.
func (l *limiter) allow(ip netip.Addr, qps float64, now int64) bool {
	s := l.shard(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	b := l.get(s, ip, qps, now)
	if el := now - b.last; el > 0 {
		b.tokens = min(qps, b.tokens+float64(el)*qps/1e9)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// firstThisSecond reports whether this is ip's first noisy event (a
// refused or rate-limited query) in the current second: only that one is
// answered and logged.
func (l *limiter) firstThisSecond(ip netip.Addr, qps float64, now int64) bool {
	s := l.shard(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	b := l.get(s, ip, qps, now)
	sec := now / 1e9
	if b.logSeen && b.logSec == sec {
		return false
	}
	b.logSeen, b.logSec = true, sec
	return true
}
