package classify

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/schoolgate/schoolgate/categories"
)

// Memory remembers hosts the classifier put in a category, for a while, so
// that their next requests and DNS queries are decided without rescoring.
// It is bounded (the oldest entries go first) and entries expire. Lookups
// are cheap when it is empty, which is the common case on the hot path.
type Memory struct {
	ttl   time.Duration
	n     atomic.Int64 // entries, for the empty fast path
	mu    sync.RWMutex
	lru   *simplelru.LRU[string, Remembered]
	added atomic.Uint64
}

// Remembered is what the classifier learned about one host.
type Remembered struct {
	Categories categories.Set
	// Note says what decided it, for the log and `check`: "gambling=0.83"
	// (page content) or "host:gambling=0.78" (host name).
	Note    string
	Expires time.Time
}

// DefaultMemoryTTL is how long a classified host is remembered.
const DefaultMemoryTTL = 6 * time.Hour

// NewMemory returns a memory of at most size hosts (default 10000),
// each kept for ttl (default DefaultMemoryTTL).
func NewMemory(size int, ttl time.Duration) *Memory {
	if size <= 0 {
		size = 10000
	}
	if ttl <= 0 {
		ttl = DefaultMemoryTTL
	}
	l, _ := simplelru.NewLRU[string, Remembered](size, nil) // fails only for size <= 0
	return &Memory{ttl: ttl, lru: l}
}

// Remember records host (normalised) as in cats from now on.
func (m *Memory) Remember(host string, cats categories.Set, note string, now time.Time) {
	if m == nil || host == "" || cats.Empty() {
		return
	}
	m.mu.Lock()
	m.lru.Add(host, Remembered{Categories: cats, Note: note, Expires: now.Add(m.ttl)})
	m.n.Store(int64(m.lru.Len()))
	m.mu.Unlock()
	m.added.Add(1)
}

// Lookup returns what is remembered about host at now.
func (m *Memory) Lookup(host string, now time.Time) (Remembered, bool) {
	if m == nil || m.n.Load() == 0 {
		return Remembered{}, false
	}
	m.mu.RLock()
	r, ok := m.lru.Peek(host)
	m.mu.RUnlock()
	if !ok {
		return Remembered{}, false
	}
	if !now.Before(r.Expires) {
		m.mu.Lock()
		if cur, ok := m.lru.Peek(host); ok && !now.Before(cur.Expires) {
			m.lru.Remove(host)
			m.n.Store(int64(m.lru.Len()))
		}
		m.mu.Unlock()
		return Remembered{}, false
	}
	return r, true
}

// Forget drops host.
func (m *Memory) Forget(host string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.lru.Remove(host)
	m.n.Store(int64(m.lru.Len()))
	m.mu.Unlock()
}

// Len returns how many hosts are remembered (expired ones included until
// they are looked up or pushed out).
func (m *Memory) Len() int {
	if m == nil {
		return 0
	}
	return int(m.n.Load())
}

// Added returns how many hosts were ever remembered.
func (m *Memory) Added() uint64 {
	if m == nil {
		return 0
	}
	return m.added.Load()
}

// Note formats a classifier note: "gambling=0.83".
func Note(cat categories.Category, score float64) string {
	return cat.String() + "=" + strconv.FormatFloat(score, 'f', 2, 64)
}
