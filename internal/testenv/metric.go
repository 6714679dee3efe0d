package testenv

import dto "github.com/prometheus/client_model/go"

// MetricValue reads a counter or a gauge (any collector that writes one
// metric, such as a vector's WithLabelValues); -1 when it cannot be read.
func MetricValue(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.GetGauge().GetValue()
}
