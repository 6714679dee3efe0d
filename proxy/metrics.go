package proxy

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/policy"
)

// Upstream error kinds: the fixed label set of upstream_errors_total.
const (
	kindRefused = "refused"
	kindDNS     = "dns"
	kindTimeout = "timeout"
	kindTLS     = "tls"
	kindDenied  = "denied"
	kindReset   = "reset"
	kindOther   = "other"
)

var upstreamKinds = []string{kindRefused, kindDNS, kindTimeout, kindTLS, kindDenied, kindReset, kindOther}

type metrics struct {
	requests        *prometheus.CounterVec // verdict, profile
	blockedByCat    *prometheus.CounterVec // category
	duration        prometheus.Histogram
	activeConns     prometheus.Gauge
	activeTunnels   prometheus.Gauge
	relayed         *prometheus.CounterVec // direction
	relayedUp       prometheus.Counter
	relayedDown     prometheus.Counter
	authFailures    prometheus.Counter
	upstreamErrors  *prometheus.CounterVec // kind
	refusedOverload prometheus.Counter
	connsRefused    *prometheus.CounterVec // reason
	connsRefusedBy  map[string]prometheus.Counter
	safeSearch      *prometheus.CounterVec // engine
	safeSearchBy    map[string]prometheus.Counter
	blockedCat      [32]prometheus.Counter // by category index, resolved once
	reqCat          [32]prometheus.Counter
	allCats         []categories.Category

	reqMu            sync.RWMutex
	requestsByKey    map[reqKey]prometheus.Counter
	upstreamByKind   map[string]prometheus.Counter
	requestsCategory *prometheus.CounterVec // category (every category of the request)
}

type reqKey struct {
	verdict policy.Verdict
	profile string
}

// newMetrics declares the proxy's metrics and registers them on reg. It
// is one table, a declaration for each metric (doc.go lists them): long
// because they are many, not because it does several things.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schoolgate_proxy_requests_total",
			Help: "Proxied requests and CONNECTs by verdict and profile.",
		}, []string{"verdict", "profile"}),
		requestsCategory: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schoolgate_proxy_requests_by_category_total",
			Help: "Proxied requests and CONNECTs, counted once for each category of the host (unclassified when none).",
		}, []string{"category"}),
		blockedByCat: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schoolgate_proxy_blocked_by_category_total",
			Help: "Blocked requests and CONNECTs, counted once for each category of the host (unclassified when none).",
		}, []string{"category"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "schoolgate_proxy_request_duration_seconds",
			Help:    "Time from reading a request to its end (for tunnels: the tunnel's life).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
		activeConns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "schoolgate_proxy_active_connections",
			Help: "Client connections open now.",
		}),
		activeTunnels: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "schoolgate_proxy_active_tunnels",
			Help: "CONNECT tunnels open now.",
		}),
		relayed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schoolgate_proxy_relayed_bytes_total",
			Help: "Bytes relayed through CONNECT tunnels, by direction (upstream: client to server; downstream: server to client).",
		}, []string{"direction"}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "schoolgate_proxy_auth_failures_total",
			Help: "Requests refused with 407 because credentials were missing or wrong.",
		}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schoolgate_proxy_upstream_errors_total",
			Help: "Failures to reach or hear from an upstream server, by kind (refused, dns, timeout, tls, denied, reset, other).",
		}, []string{"kind"}),
		refusedOverload: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "schoolgate_proxy_overload_refusals_total",
			Help: "CONNECTs refused with 503 because the tunnel limit was reached.",
		}),
		connsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schoolgate_proxy_connections_refused_total",
			Help: "Client connections answered 503 and closed at once, by the cap that was full (max_connections, per_client).",
		}, []string{"reason"}),
		connsRefusedBy: make(map[string]prometheus.Counter, 2),
		safeSearch: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schoolgate_proxy_safesearch_total",
			Help: "Requests and CONNECTs sent to an engine's SafeSearch servers (with its lock where readable), by engine.",
		}, []string{"engine"}),
		safeSearchBy:   make(map[string]prometheus.Counter, 4),
		upstreamByKind: make(map[string]prometheus.Counter, len(upstreamKinds)),
		requestsByKey:  make(map[reqKey]prometheus.Counter),
	}
	for _, r := range []string{refusedMaxConns, refusedPerClient, refusedNonClient} {
		m.connsRefusedBy[r] = m.connsRefused.WithLabelValues(r)
	}
	for _, e := range policy.SafeSearchEngines() {
		m.safeSearchBy[e] = m.safeSearch.WithLabelValues(e)
	}
	m.relayedUp = m.relayed.WithLabelValues("upstream")
	m.relayedDown = m.relayed.WithLabelValues("downstream")
	for _, k := range upstreamKinds {
		m.upstreamByKind[k] = m.upstreamErrors.WithLabelValues(k)
	}
	m.allCats = categories.All()
	for _, c := range m.allCats {
		m.blockedCat[c] = m.blockedByCat.WithLabelValues(c.String())
		m.reqCat[c] = m.requestsCategory.WithLabelValues(c.String())
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.requestsCategory, m.blockedByCat, m.duration, m.activeConns,
			m.activeTunnels, m.relayed, m.authFailures, m.upstreamErrors, m.refusedOverload, m.connsRefused, m.safeSearch)
	}
	return m
}

// observe counts one finished request.
func (m *metrics) observe(st *request) {
	k := reqKey{st.verdict, st.profile}
	m.reqMu.RLock()
	c, ok := m.requestsByKey[k]
	m.reqMu.RUnlock()
	if !ok {
		// Profiles are config names: a small set (a reload may add some).
		c = m.requests.WithLabelValues(st.verdict.String(), st.profile)
		m.reqMu.Lock()
		m.requestsByKey[k] = c
		m.reqMu.Unlock()
	}
	c.Inc()
	m.duration.Observe(st.elapsed.Seconds())
	if st.safeSearch && st.ss != nil {
		if c, ok := m.safeSearchBy[st.ss.Engine]; ok {
			c.Inc()
		}
	}
	cats := st.cats
	if cats.Empty() {
		cats = categories.SetOf(categories.Unclassified)
	}
	for _, cat := range m.allCats {
		if !cats.Has(cat) {
			continue
		}
		m.reqCat[cat].Inc()
		if st.verdict == policy.Block {
			m.blockedCat[cat].Inc()
		}
	}
}

func (m *metrics) upstreamError(kind string) {
	if c, ok := m.upstreamByKind[kind]; ok {
		c.Inc()
	}
}
