package policy

import (
	"hash/maphash"
	"math/bits"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/internal/shardlru"
)

// maxShards bounds the verdict cache's shards: enough that two requests on
// different cores rarely want the same lock, few enough that a small cache
// still gives each shard a useful number of entries.
const maxShards = 64

// minShardEntries keeps tiny caches from being cut into useless slivers.
const minShardEntries = 64

// verdictCache is keyed on the 64-bit hash of a cacheKey; each shard counts
// what it served under its own lock.
type verdictCache = shardlru.Cache[uint64, cacheEntry, shardStats]

type shardStats struct{ hits, misses, allow, block uint64 }

// Engine serves decisions from the current snapshot through a sharded
// verdict cache. Swap installs a new snapshot atomically on reload.
type Engine struct {
	snap  atomic.Pointer[Snapshot]
	seed  maphash.Seed
	cache *verdictCache // nil: no cache

	// Decisions made outside the shards (no cache, or a system rule).
	allow, block atomic.Uint64

	// What the content classifier learned (remembered.go); nil: nothing.
	classified atomic.Pointer[RememberedPages]
}

// cacheKey is everything a cached verdict depends on besides the snapshot
// contents, which Gen stands for. mask is the set of the profile's
// schedules open at the request time, so crossing a schedule boundary
// changes the key. path is "" unless the database has URL entries under
// host, so that many URLs on one host share one entry.
type cacheKey struct {
	gen     uint64
	mask    uint64
	profile int
	host    string
	path    string
	seen    categories.Set
}

// cacheEntry keeps the whole key beside the verdict: the LRU is keyed on a
// 64-bit hash of the key (one hash per request, and the map's fastest key
// type), and a hit counts only when the stored key is equal, so a hash
// collision is a miss, never a wrong verdict.
type cacheEntry struct {
	key cacheKey
	d   Decision
}

// NewEngine returns an engine serving s, with a verdict cache of size
// entries (0: no cache), its metrics registered on reg (may be nil).
// Registering two engines on one registry keeps the first one's metrics.
func NewEngine(s *Snapshot, size int, reg prometheus.Registerer) *Engine {
	e := &Engine{seed: maphash.MakeSeed(), cache: shardlru.New[uint64, cacheEntry, shardStats](size, maxShards, minShardEntries)}
	e.snap.Store(s)
	if reg != nil {
		e.register(reg)
	}
	return e
}

func (e *Engine) register(reg prometheus.Registerer) {
	sum := func(f func(*shardlru.Shard[uint64, cacheEntry, shardStats]) uint64) func() float64 {
		return func() float64 {
			var n uint64
			e.cache.Each(func(sh *shardlru.Shard[uint64, cacheEntry, shardStats]) { n += f(sh) })
			return float64(n)
		}
	}
	type shard = shardlru.Shard[uint64, cacheEntry, shardStats]
	cs := []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "schoolgate_policy_verdict_cache_hits_total",
			Help: "Policy decisions served from the verdict cache.",
		}, sum(func(sh *shard) uint64 { return sh.Data.hits })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "schoolgate_policy_verdict_cache_misses_total",
			Help: "Policy decisions computed and added to the verdict cache.",
		}, sum(func(sh *shard) uint64 { return sh.Data.misses })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "schoolgate_policy_verdict_cache_entries",
			Help: "Entries in the verdict cache.",
		}, sum(func(sh *shard) uint64 { return uint64(sh.LRU.Len()) })),
	}
	for _, v := range []struct {
		name  string
		extra *atomic.Uint64
		f     func(*shard) uint64
	}{
		{"allow", &e.allow, func(sh *shard) uint64 { return sh.Data.allow }},
		{"block", &e.block, func(sh *shard) uint64 { return sh.Data.block }},
	} {
		inShards := sum(v.f)
		extra := v.extra
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "schoolgate_policy_decisions_total",
			Help:        "Policy decisions by verdict.",
			ConstLabels: prometheus.Labels{"verdict": v.name},
		}, func() float64 { return inShards() + float64(extra.Load()) }))
	}
	for _, c := range cs {
		_ = reg.Register(c) // only fails for a duplicate: the first engine keeps them
	}
}

// Snapshot returns the snapshot in force.
func (e *Engine) Snapshot() *Snapshot { return e.snap.Load() }

// Swap installs s; decisions from now on use it (the cache keys on Gen).
// The old snapshot's cached verdicts are dropped to free their memory.
func (e *Engine) Swap(s *Snapshot) {
	if s == nil {
		return
	}
	e.snap.Store(s)
	e.cache.Purge()
}

// Decide decides with the current snapshot, from the cache when it can.
// The result is the same as Snapshot().Decide(a).
func (e *Engine) Decide(a Args) Decision { return e.DecideMemo(a, nil) }

// Memo remembers one verdict of the verdict cache beside a caller's own
// cached data (the DNS filter keeps one in each cached answer), so that
// a repeat of the same question is answered without hashing the key and
// looking it up in the cache. It holds exactly what the cache holds, the
// whole key beside the verdict, and is used only when the key is equal
// and the snapshot is the same one: a reload, a list refresh, a schedule
// opening or closing and another profile all miss it, as they miss the
// cache. The zero Memo is empty; it is safe for concurrent use.
type Memo struct{ p atomic.Pointer[memo] }

type memo struct {
	snap *Snapshot
	h    uint64 // the key's hash: the shard that counts the hit
	ent  cacheEntry
}

// DecideMemo is Decide, from m when m holds the verdict for a's key (m
// may be nil), and it leaves the verdict in m. Everything Decide does
// before the cache (the statutory lists, the classifier's memory, the
// system checks) runs as before; a hit on m counts as a cache hit.
func (e *Engine) DecideMemo(a Args, m *Memo) Decision {
	s := e.snap.Load()
	// The statutory lists come before everything, the classifier's memory
	// and the cache too: a cached verdict is keyed on the host (and the
	// path only under hosts with URL entries in the category database),
	// while a statutory URL entry may sit under any host.
	if len(s.statutory) > 0 {
		if d, ok := s.statutoryDecision(s.profileIndex(a.User, a.Profile, canonIP(a.IP)), a.Host, a.Path); ok {
			e.countOutside(d.Verdict)
			return d
		}
	}
	if d, ok := e.decideRemembered(s, a); ok {
		e.countOutside(d.Verdict)
		return d
	}
	if e.cache == nil {
		d := s.Decide(a)
		e.countOutside(d.Verdict)
		return d
	}
	ip := canonIP(a.IP)
	pi := s.profileIndex(a.User, a.Profile, ip)
	// The system checks are cheap and depend on the client address, which
	// the key leaves out: they run before the cache.
	if d, ok := s.systemDecision(pi, ip, a.Host); ok {
		e.countOutside(d.Verdict)
		return d
	}
	key := cacheKey{
		gen:     s.Gen,
		mask:    s.openMask(a.Time) & s.profiles[pi].schedMask,
		profile: pi,
		host:    a.Host,
		seen:    a.Seen,
	}
	if a.Path != "" && s.DB.HasURLEntries(a.Host) {
		key.path = a.Path
	}
	if m != nil {
		if mm := m.p.Load(); mm != nil && mm.snap == s && mm.ent.key == key {
			sh := e.cache.Shard(mm.h)
			sh.Lock()
			sh.Data.hits++
			sh.Data.count(mm.ent.d.Verdict)
			sh.Unlock()
			return mm.ent.d
		}
	}
	h := e.hash(&key)
	sh := e.cache.Shard(h)
	sh.Lock()
	if ent, ok := sh.LRU.Get(h); ok && ent.key == key {
		sh.Data.hits++
		sh.Data.count(ent.d.Verdict)
		sh.Unlock()
		if m != nil {
			m.p.Store(&memo{snap: s, h: h, ent: ent})
		}
		return ent.d
	}
	sh.Unlock()

	d := s.decide(pi, key.mask, key.host, key.path, key.seen)

	// The cache outlives the request: copy the strings so that an entry
	// never pins a caller's larger buffer (a host sliced from a request).
	key.host = strings.Clone(key.host)
	key.path = strings.Clone(key.path)
	sh.Lock()
	sh.Data.misses++
	sh.Data.count(d.Verdict)
	sh.LRU.Add(h, cacheEntry{key: key, d: d})
	sh.Unlock()
	if m != nil {
		m.p.Store(&memo{snap: s, h: h, ent: cacheEntry{key: key, d: d}})
	}
	return d
}

// hash returns a well-mixed 64-bit hash of the whole key; its low bits pick
// the shard.
func (e *Engine) hash(k *cacheKey) uint64 {
	h := maphash.String(e.seed, k.host)
	if k.path != "" {
		h ^= bits.RotateLeft64(maphash.String(e.seed, k.path), 31)
	}
	h ^= mix64(k.mask ^ bits.RotateLeft64(k.gen, 40) ^ uint64(k.profile)<<20 ^ bits.RotateLeft64(uint64(k.seen), 30))
	return mix64(h)
}

// mix64 is the finaliser of MurmurHash3: every input bit affects every
// output bit.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

func (st *shardStats) count(v Verdict) {
	if v == Block {
		st.block++
	} else {
		st.allow++
	}
}

func (e *Engine) countOutside(v Verdict) {
	if v == Block {
		e.block.Add(1)
	} else {
		e.allow.Add(1)
	}
}

// CacheStats reports the verdict cache's hits, misses and entries so far.
func (e *Engine) CacheStats() (hits, misses uint64, entries int) {
	e.cache.Each(func(sh *shardlru.Shard[uint64, cacheEntry, shardStats]) {
		hits += sh.Data.hits
		misses += sh.Data.misses
		entries += sh.LRU.Len()
	})
	return hits, misses, entries
}
