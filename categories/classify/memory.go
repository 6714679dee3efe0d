package classify

import (
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/schoolgate/schoolgate/categories"
)

// Memory remembers hosts the classifier put in a category, for a while, so
// that their next requests and DNS queries are decided without rescoring.
// It keeps each host's scores, not a verdict: profiles have their own
// thresholds, so a strict profile's low threshold never blocks a host for
// a lenient one. It is bounded (the oldest entries go first) and entries
// expire. Lookups are cheap when it is empty, the common case on the hot
// path.
type Memory struct {
	ttl   time.Duration
	n     atomic.Int64 // entries, for the empty fast path
	mu    sync.RWMutex
	lru   *simplelru.LRU[string, Remembered]
	added atomic.Uint64

	jmu sync.Mutex
	j   *journal // nil: not kept on disk
}

// CategoryScore is one category's score.
type CategoryScore struct {
	Category categories.Category
	Score    float64
}

// Remembered is what the classifier learned about one host.
type Remembered struct {
	Scores  []CategoryScore // best first
	Via     string          // "" for page content, "host" for the host name
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

// Remember records a host's (normalised) category scores from now on;
// via is "" for a page's content, "host" for a host-name signal. Scores
// of 0 are dropped; nothing is remembered when none is left.
func (m *Memory) Remember(host string, scores []CategoryScore, via string, now time.Time) {
	if m == nil || host == "" {
		return
	}
	var keep []CategoryScore
	for _, cs := range scores {
		if cs.Score > 0 && cs.Category < categories.Unclassified {
			keep = append(keep, cs)
		}
	}
	if len(keep) == 0 {
		return
	}
	m.add(host, keep, via, now.Add(m.ttl), true)
}

func (m *Memory) add(host string, scores []CategoryScore, via string, expires time.Time, journal bool) {
	if len(scores) == 0 {
		return
	}
	sort.Slice(scores, func(i, j int) bool { return scores[i].Score > scores[j].Score })
	r := Remembered{Scores: scores, Via: via, Expires: expires}
	m.mu.Lock()
	m.lru.Add(host, r)
	m.n.Store(int64(m.lru.Len()))
	m.mu.Unlock()
	m.added.Add(1)
	if journal {
		m.writeJournal(host, r)
	}
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

// Has reports whether host is remembered at now: the cheap first question
// on the hot path.
func (m *Memory) Has(host string, now time.Time) bool {
	_, ok := m.Lookup(host, now)
	return ok
}

// Classified returns the categories host scored at or above threshold
// (0: DefaultThreshold) and a note naming the best of them
// ("gambling=0.83", "host:gambling=0.78"). It is what the policy engine
// asks (policy.ClassifiedHosts).
func (m *Memory) Classified(host string, threshold float64, now time.Time) (categories.Set, string, bool) {
	r, ok := m.Lookup(host, now)
	if !ok {
		return 0, "", false
	}
	if threshold <= 0 {
		threshold = DefaultThreshold
	}
	var set categories.Set
	note := ""
	for _, cs := range r.Scores {
		if cs.Score >= threshold {
			if set.Empty() {
				note = Note(cs.Category, cs.Score)
				if r.Via != "" {
					note = r.Via + ":" + note
				}
			}
			set = set.Add(cs.Category)
		}
	}
	return set, note, !set.Empty()
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

// ScoresOf returns a result's non-zero scores, for Remember.
func (r *Result) ScoresOf() []CategoryScore {
	var out []CategoryScore
	for i, v := range r.Scores {
		if v > 0 {
			out = append(out, CategoryScore{categories.Category(i), v})
		}
	}
	return out
}
