package main

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/alerts"
	"github.com/schoolgate/schoolgate/policy"
)

// statutoryWatch says when a statutory list's copy in use is older than
// its max_age: in the program log, in metrics and to the alert sinks, once
// per copy. Blocking goes on with the old copy.
type statutoryWatch struct {
	engine  *policy.Engine
	logger  *zap.Logger
	alerter *alerts.Alerter
	age     *prometheus.GaugeVec
	maxAge  *prometheus.GaugeVec
	warned  map[string]time.Time // list → the copy (its time) already reported stale
}

func newStatutoryWatch(engine *policy.Engine, logger *zap.Logger, alerter *alerts.Alerter, reg prometheus.Registerer) *statutoryWatch {
	w := &statutoryWatch{
		engine: engine, logger: logger, alerter: alerter, warned: map[string]time.Time{},
		age: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "schoolgate_statutory_list_age_seconds",
			Help: "Age of the copy of each statutory list in use.",
		}, []string{"list"}),
		maxAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "schoolgate_statutory_list_max_age_seconds",
			Help: "Each statutory list's max_age: an older copy is reported.",
		}, []string{"list"}),
	}
	reg.MustRegister(w.age, w.maxAge)
	return w
}

// check looks at the lists of the snapshot in force at now.
func (w *statutoryWatch) check(now time.Time) {
	for _, st := range w.engine.Snapshot().StatutoryStats() {
		age := now.Sub(st.Modified)
		w.age.WithLabelValues(st.Name).Set(age.Seconds())
		w.maxAge.WithLabelValues(st.Name).Set(st.MaxAge.Seconds())
		if age <= st.MaxAge || w.warned[st.Name].Equal(st.Modified) {
			continue
		}
		w.warned[st.Name] = st.Modified
		text := fmt.Sprintf("statutory list %s is %s old (max_age %s): it still blocks, with the copy of %s; check how it is updated",
			st.Name, age.Round(time.Minute), st.MaxAge, st.Modified.Format(time.RFC3339))
		w.logger.Warn("statutory list is stale", zap.String("list", st.Name), zap.Duration("age", age.Round(time.Second)),
			zap.Duration("max_age", st.MaxAge), zap.String("file", st.File))
		w.alerter.Notice("statutory_list_stale", text)
	}
}

// run checks at once and then every minute until ctx ends.
func (w *statutoryWatch) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		w.check(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
