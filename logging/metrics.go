package logging

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	lines       prometheus.Counter
	bytes       prometheus.Counter
	queueFull   prometheus.Counter
	writeErrors prometheus.Counter
	dropped     prometheus.Counter
	queueLen    prometheus.GaugeFunc
	flush       prometheus.Histogram
}

func newMetrics(queueLen func() float64) *metrics {
	m := &metrics{
		lines: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "schoolgate_logging_lines_total", Help: "Access-log lines written.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "schoolgate_logging_bytes_total", Help: "Bytes of access-log lines written.",
		}),
		queueFull: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "schoolgate_logging_queue_full_total",
			Help: "Times a caller had to wait because the access-log queue was full.",
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "schoolgate_logging_write_errors_total",
			Help: "Failed writes, syncs or opens of access-log files (lines are kept and retried).",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "schoolgate_logging_dropped_lines_total",
			Help: "Access-log lines lost because writing failed for longer than the retry buffer holds, or logged after Close.",
		}),
		queueLen: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "schoolgate_logging_queue_length", Help: "Entries waiting for the access-log writer.",
		}, queueLen),
		flush: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "schoolgate_logging_flush_duration_seconds",
			Help:    "Time to make written access-log lines durable (fsync and sidecar), per sync.",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5},
		}),
	}
	return m
}

// register registers the metrics; a nil reg is allowed.
func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.lines, m.bytes, m.queueFull, m.writeErrors, m.dropped, m.queueLen, m.flush} {
		if err := reg.Register(c); err != nil {
			if errors.As(err, new(prometheus.AlreadyRegisteredError)) {
				return errors.New("registering access-log metrics: another access-log writer uses this registry")
			}
			return fmt.Errorf("registering access-log metrics: %w", err)
		}
	}
	return nil
}
