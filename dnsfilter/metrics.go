package dnsfilter

import (
	"sync/atomic"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/schoolgate/schoolgate/policy"
)

// The label sets are small and fixed: a query type outside qtypeNames is
// counted as "other", and so is an rcode outside rcodeNames.
var (
	qtypeNames = [...]string{"A", "AAAA", "HTTPS", "SVCB", "CNAME", "MX", "TXT", "PTR", "SRV", "NS", "SOA", "ANY", "other"}
	qtypeCodes = [...]uint16{dns.TypeA, dns.TypeAAAA, dns.TypeHTTPS, dns.TypeSVCB, dns.TypeCNAME, dns.TypeMX, dns.TypeTXT, dns.TypePTR, dns.TypeSRV, dns.TypeNS, dns.TypeSOA, dns.TypeANY}
	rcodeNames = [...]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "other"}
)

func qtypeIndex(t uint16) int {
	for i, c := range qtypeCodes {
		if c == t {
			return i
		}
	}
	return len(qtypeNames) - 1
}

func rcodeIndex(rc int) int {
	if rc >= 0 && rc < len(rcodeNames)-1 {
		return rc
	}
	return len(rcodeNames) - 1
}

// Upstream error kinds (label values of upstream_errors_total).
const (
	errTimeout  = "timeout"  // no answer within the per-try timeout
	errNetwork  = "network"  // could not send or read
	errMismatch = "mismatch" // an answer to some other question, or not an answer
	errRcode    = "rcode"    // SERVFAIL or REFUSED from the upstream
)

var upstreamErrorKinds = [...]string{errTimeout, errNetwork, errMismatch, errRcode}

type metrics struct {
	queries        *prometheus.CounterVec
	queryCounters  [2][len(qtypeNames)][len(rcodeNames)]atomic.Pointer[prometheus.Counter]
	upstreamDur    *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec
	cacheHits      prometheus.Counter
	cacheMisses    prometheus.Counter
	safeSearch     *prometheus.CounterVec
	rateLimited    prometheus.Counter
	malformed      prometheus.Counter
	duration       prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, cacheEntries func() float64) *metrics {
	m := &metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schoolgate_dnsfilter_queries_total",
			Help: "DNS queries answered (or dropped), by verdict, query type and rcode.",
		}, []string{"verdict", "qtype", "rcode"}),
		upstreamDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "schoolgate_dnsfilter_upstream_duration_seconds",
			Help:    "Time for an upstream to answer one query (successful tries).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"upstream"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schoolgate_dnsfilter_upstream_errors_total",
			Help: "Failed upstream tries, by upstream and kind (timeout, network, mismatch, rcode).",
		}, []string{"upstream", "kind"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "schoolgate_dnsfilter_cache_hits_total",
			Help: "Queries answered from the DNS cache.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "schoolgate_dnsfilter_cache_misses_total",
			Help: "Queries that had to go to an upstream.",
		}),
		safeSearch: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schoolgate_dnsfilter_safesearch_rewrites_total",
			Help: "Queries answered with a provider's SafeSearch or restricted-mode name, by provider.",
		}, []string{"provider"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "schoolgate_dnsfilter_rate_limited_total",
			Help: "Queries refused or dropped because the client was over dns.rate_limit.",
		}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "schoolgate_dnsfilter_malformed_total",
			Help: "Packets that could not be parsed as DNS messages.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "schoolgate_dnsfilter_request_duration_seconds",
			Help:    "Time from receiving a query to sending its answer.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
	}
	for _, name := range policy.SafeSearchEngines() {
		m.safeSearch.WithLabelValues(name)
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.queries, m.upstreamDur, m.upstreamErrors, m.cacheHits, m.cacheMisses,
		m.safeSearch, m.rateLimited, m.malformed, m.duration,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "schoolgate_dnsfilter_cache_entries",
			Help: "Answers held in the DNS cache.",
		}, cacheEntries))
	return m
}

// countQuery counts one query; the counters are resolved once per label
// combination so that the hot path does no label lookup.
func (m *metrics) countQuery(block bool, qtype uint16, rcode int) {
	v := 0
	if block {
		v = 1
	}
	qi, ri := qtypeIndex(qtype), rcodeIndex(rcode)
	slot := &m.queryCounters[v][qi][ri]
	c := slot.Load()
	if c == nil {
		verdict := "allow"
		if block {
			verdict = "block"
		}
		cc := m.queries.WithLabelValues(verdict, qtypeNames[qi], rcodeNames[ri])
		c = &cc
		slot.Store(c)
	}
	(*c).Inc()
}
