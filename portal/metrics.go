package portal

import "github.com/prometheus/client_golang/prometheus"

// Results of schoolgate_portal_signins_total.
const (
	resultOK          = "ok"          // signed in
	resultFailed      = "failed"      // wrong password or unknown user
	resultLimited     = "limited"     // too many failures for the account or address
	resultUnavailable = "unavailable" // the directory cannot be reached
	resultRefused     = "refused"     // a forged or expired form, or a device outside clients
)

type metrics struct {
	signin   *prometheus.CounterVec
	signouts prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		signin: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schoolgate_portal_signins_total",
			Help: "Sign-in attempts at the portal, by result (ok, failed, limited, unavailable, refused).",
		}, []string{"result"}),
		signouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "schoolgate_portal_signouts_total",
			Help: "Sign-outs at the portal.",
		}),
	}
	for _, r := range []string{resultOK, resultFailed, resultLimited, resultUnavailable, resultRefused} {
		m.signin.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.signin, m.signouts)
	}
	return m
}

func (m *metrics) signins(result string) { m.signin.WithLabelValues(result).Inc() }
