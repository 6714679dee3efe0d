package lists

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the lists' series (see the package doc).
type Metrics struct {
	entries, lastSuccess, interval *prometheus.GaugeVec
	failures                       *prometheus.CounterVec
}

// NewMetrics registers the lists' metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		entries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "schoolgate_lists_entries", Help: "Entries in the last good copy of each downloaded list.",
		}, []string{"list"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "schoolgate_lists_last_success_timestamp_seconds",
			Help: "When each downloaded list was last fetched or confirmed current.",
		}, []string{"list"}),
		interval: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "schoolgate_lists_refresh_interval_seconds", Help: "How often each downloaded list is refreshed.",
		}, []string{"list"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schoolgate_lists_refresh_failures_total",
			Help: "Refreshes refused or failed, by list and reason; the last good copy kept serving.",
		}, []string{"list", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.entries, m.lastSuccess, m.interval, m.failures)
	}
	return m
}

func (m *Metrics) observe(s Source, meta Meta) {
	if m == nil {
		return
	}
	m.entries.WithLabelValues(s.Name).Set(float64(meta.Entries))
	m.interval.WithLabelValues(s.Name).Set(s.Every.Seconds())
	if !meta.Success.IsZero() {
		m.lastSuccess.WithLabelValues(s.Name).Set(float64(meta.Success.UnixNano()) / 1e9)
	}
}

func (m *Metrics) failed(s Source, reason string) {
	if m != nil {
		m.failures.WithLabelValues(s.Name, reason).Inc()
	}
}
