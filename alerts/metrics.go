package alerts

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	sent     *prometheus.CounterVec
	failures *prometheus.CounterVec
	dropped  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schoolgate_alerts_sent_total", Help: "Safeguarding alerts delivered, by sink (webhook, file).",
		}, []string{"sink"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schoolgate_alerts_failures_total", Help: "Failed alert delivery attempts (each retry counts), by sink.",
		}, []string{"sink"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "schoolgate_alerts_dropped_total",
			Help: "Attempts or alerts lost: queue full, or delivery given up after the retries.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.sent, m.failures, m.dropped)
	}
	return m
}
