package report

import (
	"container/heap"
	"sort"

	"github.com/schoolgate/schoolgate/categories"
)

// topK counts keys in bounded memory with the Space-Saving algorithm
// (Metwally, Agrawal, El Abbadi 2005): it tracks at most cap keys; a new
// key when full replaces the key with the smallest count and inherits that
// count (recorded as its possible over-estimate, err). Counts are exact
// while fewer than cap distinct keys have been seen, and any key whose
// true count exceeds total/cap is guaranteed to be tracked.
type topK struct {
	cap   int
	items map[string]*tkItem
	h     tkHeap
}

type tkItem struct {
	key   string
	count int64
	err   int64 // count may exceed the true count by at most err
	extra categories.Set
	idx   int
}

type tkHeap []*tkItem

func (h tkHeap) Len() int           { return len(h) }
func (h tkHeap) Less(i, j int) bool { return h[i].count < h[j].count }
func (h tkHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].idx = i; h[j].idx = j }
func (h *tkHeap) Push(x any)        { it := x.(*tkItem); it.idx = len(*h); *h = append(*h, it) }
func (h *tkHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

func newTopK(capacity int) *topK {
	return &topK{cap: capacity, items: make(map[string]*tkItem, min(capacity, 1024))}
}

// add counts one occurrence of key (a byte slice that need not outlive the
// call); extra (the host's categories) is kept with the key, set when the
// key enters.
func (t *topK) add(key []byte, extra categories.Set) {
	if it, ok := t.items[string(key)]; ok {
		it.count++
		heap.Fix(&t.h, it.idx)
		return
	}
	ex := extra
	if len(t.items) < t.cap {
		it := &tkItem{key: string(key), count: 1, extra: ex}
		t.items[it.key] = it
		heap.Push(&t.h, it)
		return
	}
	it := t.h[0]
	delete(t.items, it.key)
	it.key = string(key)
	it.err = it.count
	it.count++
	it.extra = ex
	t.items[it.key] = it
	heap.Fix(&t.h, 0)
}

// top returns the n keys with the highest counts, highest first (ties by key).
func (t *topK) top(n int) []tkItem {
	out := make([]tkItem, 0, len(t.items))
	for _, it := range t.items {
		out = append(out, *it)
	}
	return highest(out, n, func(it tkItem) (int64, string) { return it.count, it.key })
}

// highest sorts items by count, highest first (ties by key), and keeps
// the first n. Keys are distinct, so the order is total.
func highest[T any](items []T, n int, countKey func(T) (int64, string)) []T {
	sort.Slice(items, func(i, j int) bool {
		ci, ki := countKey(items[i])
		cj, kj := countKey(items[j])
		if ci != cj {
			return ci > cj
		}
		return ki < kj
	})
	if len(items) > n {
		items = items[:n]
	}
	return items
}
