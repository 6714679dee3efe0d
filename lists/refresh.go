package lists

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/policy"
)

// retryAfterFailure is the longest wait after a failed refresh before the
// next try (a list refreshed more often waits its own period).
const retryAfterFailure = 30 * time.Minute

// Refresher keeps a set of sources current, each on its own schedule, and
// calls onChange after a round that changed any copy.
type Refresher struct {
	f        *Fetcher
	logger   *zap.Logger
	m        *Metrics
	onChange func()
	now      func() time.Time

	mu      sync.Mutex
	loc     *time.Location
	sources []Source
	next    map[string]time.Time // by source name
	seen    map[string]time.Time // by source name: the copy (its meta's Changed) the snapshot in force loaded
	kick    chan struct{}
}

// NewRefresher returns a refresher using f; m may be nil (no metrics).
func NewRefresher(f *Fetcher, m *Metrics, logger *zap.Logger, onChange func()) *Refresher {
	if logger == nil {
		logger = zap.NewNop()
	}
	_, _, _, _, _, now := f.defaults()
	return &Refresher{f: f, m: m, logger: logger, onChange: onChange, now: now,
		next: map[string]time.Time{}, seen: map[string]time.Time{}, kick: make(chan struct{}, 1)}
}

// SetSources installs the sources of the config in force (at start and
// after each reload). A source with a copy is next due its period after
// its last success (with jitter); one with none, at once.
func (r *Refresher) SetSources(cfg *config.Config) {
	srcs := Sources(cfg)
	now := r.now()
	r.mu.Lock()
	next := make(map[string]time.Time, len(srcs))
	for _, s := range srcs {
		if t, ok := r.next[s.Name]; ok {
			next[s.Name] = t
			continue
		}
		meta := ReadMeta(s.Path)
		r.seen[s.Name] = meta.Changed
		r.m.observe(s, meta)
		switch {
		case !hasCopy(s.Path) || meta.URL != s.URL:
			next[s.Name] = now
		default:
			next[s.Name] = meta.Success.Add(s.Every + jitter(s.Every))
		}
	}
	r.sources, r.next, r.loc = srcs, next, cfg.Location
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// jitter spreads refreshes of many gateways (and lists) over a tenth of
// the period, at most an hour.
func jitter(every time.Duration) time.Duration {
	span := min(every/10, time.Hour)
	if span <= 0 {
		return 0
	}
	return rand.N(span)
}

// Run refreshes sources as they fall due until ctx ends.
func (r *Refresher) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		changed := false
		for _, s := range r.due() {
			res := r.refresh(ctx, s)
			changed = changed || res.Changed
		}
		if changed && r.onChange != nil && ctx.Err() == nil {
			r.onChange()
		}
		timer.Reset(r.untilNext())
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-timer.C:
		}
	}
}

// due returns the sources whose time has come, inside their window.
func (r *Refresher) due() []Source {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Source
	for _, s := range r.sources {
		t := r.next[s.Name]
		if now.Before(t) {
			continue
		}
		if s.Window != nil && !inWindow(s.Window, now.In(r.loc)) {
			r.next[s.Name] = nextWindow(s.Window, now.In(r.loc))
			continue
		}
		out = append(out, s)
	}
	return out
}

func (r *Refresher) untilNext() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	wait := time.Hour
	now := r.now()
	for _, t := range r.next {
		wait = min(wait, t.Sub(now))
	}
	return max(wait, time.Second)
}

// refresh runs one source and schedules its next refresh.
func (r *Refresher) refresh(ctx context.Context, s Source) Result {
	res := r.f.Refresh(ctx, s)
	r.report(s, res)
	// A copy stored by someone else (`schoolgate lists update`) is news
	// to the snapshot in force even when the server now says 304.
	changed := ReadMeta(s.Path).Changed
	r.mu.Lock()
	if changed.After(r.seen[s.Name]) {
		r.seen[s.Name], res.Changed = changed, true
	}
	r.mu.Unlock()
	next := r.now().Add(s.Every + jitter(s.Every))
	if res.Err != nil {
		next = r.now().Add(min(s.Every, retryAfterFailure))
	}
	r.mu.Lock()
	if _, ok := r.next[s.Name]; ok {
		r.next[s.Name] = next
	}
	r.mu.Unlock()
	return res
}

// report logs a result and counts it.
func (r *Refresher) report(s Source, res Result) {
	r.m.observe(s, ReadMeta(s.Path))
	switch {
	case res.Err != nil:
		r.m.failed(s, res.Reason)
		r.logger.Warn("list refresh refused; the last good copy keeps serving", zap.String("list", s.Name),
			zap.String("reason", res.Reason), zap.Error(res.Err), zap.Int("entries", res.Before))
	case res.Changed:
		r.logger.Info("list refreshed", zap.String("list", s.Name), zap.Int("entries_before", res.Before),
			zap.Int("entries", res.After))
	default:
		r.logger.Debug("list unchanged", zap.String("list", s.Name))
	}
}

// RefreshAll refreshes every source of cfg now, whatever its schedule,
// and returns the results in order (`schoolgate lists update`).
func (r *Refresher) RefreshAll(ctx context.Context, cfg *config.Config) []Result {
	var out []Result
	for _, s := range Sources(cfg) {
		res := r.f.Refresh(ctx, s)
		r.report(s, res)
		out = append(out, res)
	}
	return out
}

// inWindow reports whether lt is inside the refresh window, by the
// policy's schedule rule (every day of the week).
func inWindow(w *config.Refresh, lt time.Time) bool {
	return policy.ScheduleOpen(config.Schedule{Days: allDays, From: w.From, To: w.To}, lt)
}

var allDays = []time.Weekday{0, 1, 2, 3, 4, 5, 6}

// nextWindow is when the window next opens after lt.
func nextWindow(w *config.Refresh, lt time.Time) time.Time {
	t := lt.Truncate(time.Minute)
	for i := 0; i < 48*60; i++ {
		t = t.Add(time.Minute)
		if inWindow(w, t) {
			return t
		}
	}
	return lt.Add(time.Hour)
}
