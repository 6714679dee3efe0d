package proxy

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/categories/classify"
	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/policy"
)

// ContentOptions configures content classification (issue 6): pages of
// hosts the category database does not know. (Host names are read by the
// policy itself, with content.host_names, so every caller agrees.)
type ContentOptions struct {
	// Off turns content classification off: no page is sniffed, no host
	// name read.
	Off bool
	// Classifier scores pages (nil: the policy snapshot's, built from the
	// embedded lists and the config's content.phrase_files).
	Classifier *classify.Classifier
	// Memory remembers classified hosts (nil: 10000 hosts for the config's
	// content.remember_hours).
	// The proxy hands it to the policy engine, so the DNS filter blocks a
	// classified host too.
	Memory *classify.Memory
	// SniffLimit is how much of a page body is read before deciding
	// (default classify.DefaultSniffLimit, 64 KiB).
	SniffLimit int
	// ScoreEveryPage scores every HTML page of an unclassified host. By
	// default a host's first contentFirstPages pages are scored and, once
	// they were clean, one page in contentSampleEvery for the next
	// contentWatch: a scored page costs about twice the CPU of proxying it
	// (BenchmarkProxyHTMLClassifyOnEveryPage against …Off: ~2.5–3×; most
	// of it is x/net/html's tokenizer, see classify's
	// BenchmarkTokenizerOnlyMarkup40KiB), and a host is what the
	// classifier remembers anyway. Sampled, the proxy stays within the
	// benchmarks' noise of classification off.
	ScoreEveryPage bool
}

// The sampling of a clean host's pages (see ContentOptions.ScoreEveryPage).
const (
	contentFirstPages  = 4
	contentSampleEvery = 32
	contentWatch       = 30 * time.Minute
)

// watched is a host whose pages have been scored clean.
type watched struct {
	since time.Time
	pages int // pages seen since
	clean int // pages scored clean
}

// content is the proxy's content classifier.
type content struct {
	cl     *classify.Classifier
	mem    *classify.Memory
	limit  int
	every  bool
	hostMu sync.Mutex
	watch  *simplelru.LRU[string, *watched] // guarded by hostMu

	pages   *prometheus.CounterVec // result: clean, unsure, blocked, classified, unscorable, sampled_out
	seconds prometheus.Histogram
	// pages' counters, looked up once
	nClean, nUnsure, nBlocked, nClassified, nUnscorable, nSampledOut prometheus.Counter
	// nShaped counts pages with clear evidence not remembered because the
	// visitor may have shaped them (a query, or the category in the
	// request's own input).
	nShaped prometheus.Counter
}

// newContent returns nil when classification is off. Without a Memory of
// its own it keeps one in the log folder (classify.JournalName), so that a
// restart remembers and `schoolgate check` shows classified hosts.
func newContent(o ContentOptions, engine *policy.Engine, reg prometheus.Registerer, cfg *config.Config, logger *zap.Logger) *content {
	if o.Off {
		return nil
	}
	c := &content{cl: o.Classifier, mem: o.Memory, limit: o.SniffLimit, every: o.ScoreEveryPage}
	if c.mem == nil {
		ttl := time.Duration(0)
		if cfg != nil {
			ttl = time.Duration(cfg.Content.RememberHours) * time.Hour
		}
		c.mem = classify.NewMemory(0, ttl)
		if cfg != nil && cfg.Log.Dir != "" {
			path := classify.JournalPath(cfg.Log.Dir)
			if err := c.mem.Journal(path, time.Now()); err != nil {
				logger.Warn("content classifier: classified hosts are not kept on disk", zap.Error(err))
			}
		}
	}
	if c.limit <= 0 {
		c.limit = classify.DefaultSniffLimit
	}
	c.watch, _ = simplelru.NewLRU[string, *watched](8192, nil)
	engine.SetRemembered(c.mem)

	c.pages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "schoolgate_proxy_classified_pages_total",
		Help: "HTML pages of unclassified hosts seen by the content classifier, by result (clean, unsure, blocked, classified, unscorable, sampled_out).",
	}, []string{"result"})
	c.nShaped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "schoolgate_proxy_classified_pages_not_remembered_total",
		Help: "Pages with clear evidence the content classifier did not remember because the visitor may have shaped them: asked for with a query, or the category in the request's own path, Referer or cookies.",
	})
	c.seconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "schoolgate_proxy_classify_seconds",
		Help:    "Time to sniff and score a page prefix.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .05},
	})
	c.nClean = c.pages.WithLabelValues("clean")
	c.nUnsure = c.pages.WithLabelValues("unsure")
	c.nBlocked = c.pages.WithLabelValues("blocked")
	c.nClassified = c.pages.WithLabelValues("classified")
	c.nUnscorable = c.pages.WithLabelValues("unscorable")
	c.nSampledOut = c.pages.WithLabelValues("sampled_out")
	if reg != nil {
		for _, col := range []prometheus.Collector{c.pages, c.seconds, c.nShaped} {
			_ = reg.Register(col) // a duplicate keeps the first proxy's
		}
	}
	return c
}

// apply decides the request again as if its host had cats, recording the
// classifier's note; a block becomes the request's outcome.
func (c *content) apply(st *request, path string, cats categories.Set, note string) error {
	d := st.snap.DecideAs(policy.Args{User: st.user, Profile: st.named, IP: st.ip, Host: st.host, Path: path, Time: st.start}, cats)
	st.cats, st.classified = cats, note
	if d.Verdict != policy.Block {
		return nil
	}
	st.verdict = policy.Block
	return &BlockedError{
		Rule:   "classifier:" + note,
		Reason: "the content classifier put this site in " + cats.String() + " (" + note + "); " + d.Reason + " (rule " + d.Rule + ")",
	}
}

// candidate reports whether the response to req will be sniffed: an
// allowed GET of an unclassified host.
func (c *content) candidate(req *http.Request, st *request) bool {
	return c != nil && st != nil && req.Method == http.MethodGet && st.verdict == policy.Allow && st.cats.Empty() && c.enabled(st)
}

// enabled reports whether the config in force (content.enabled) wants
// classification; a reload can turn it on and off.
func (c *content) enabled(st *request) bool {
	return st.snap == nil || st.snap.Config == nil || st.snap.Config.Content.Enabled
}

// classifier is the one to score with: the options', else the snapshot's
// (which follows content.phrase_files across reloads), else the embedded.
func (c *content) classifier(st *request) *classify.Classifier {
	switch {
	case c.cl != nil:
		return c.cl
	case st.snap != nil && st.snap.Classifier != nil:
		return st.snap.Classifier
	}
	return classify.Default()
}

// prepare asks the upstream of a candidate request for an encoding the
// classifier can read: gzip and deflate stay, br and zstd go.
func (c *content) prepare(req *http.Request, st *request) {
	if !c.candidate(req, st) {
		return
	}
	ae := req.Header.Values("Accept-Encoding")
	if len(ae) == 0 {
		return
	}
	var keep []string
	for _, v := range ae {
		for f := range strings.SplitSeq(v, ",") {
			f = strings.TrimSpace(f)
			name, _, _ := strings.Cut(f, ";")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "gzip", "x-gzip", "deflate", "identity":
				keep = append(keep, f)
			}
		}
	}
	if len(keep) == 0 {
		req.Header.Del("Accept-Encoding")
		return
	}
	req.Header.Set("Accept-Encoding", strings.Join(keep, ", "))
}

// inspect sniffs a candidate HTML response: above the profile's threshold
// in a category it blocks, the response is replaced by the block page;
// otherwise it passes on untouched, the sniffed prefix replayed.
func (c *content) inspect(p *Proxy, req *http.Request, resp *http.Response, st *request) *http.Response {
	if !c.candidate(req, st) || resp.StatusCode != http.StatusOK || !classify.Scorable(resp.Header.Get("Content-Type")) {
		return resp
	}
	if !c.shouldScore(st.host, st.start) {
		c.nSampledOut.Inc()
		return resp
	}
	t0 := time.Now()
	res, body, err := c.classifier(st).Sniff(resp.Body, resp.Header.Get("Content-Encoding"), resp.Header.Get("Content-Type"), c.limit)
	resp.Body = body
	c.seconds.Observe(time.Since(t0).Seconds())
	if err != nil {
		c.nUnscorable.Inc()
		return resp
	}
	threshold := st.snap.ContentThreshold(policy.Args{User: st.user, Profile: st.named, IP: st.ip})
	sure, unsure := res.Judge(threshold)
	if sure.Empty() {
		if c.nearMiss(st, unsure, res) {
			c.nUnsure.Inc()
		} else {
			c.nClean.Inc()
			c.scoredClean(st.host)
		}
		return resp
	}
	c.remember(req, st, res, threshold)
	best, score := bestOf(res, sure)
	path := req.URL.EscapedPath()
	if req.URL.RawQuery != "" {
		path += "?" + req.URL.RawQuery
	}
	berr := c.apply(st, path, sure, classify.Note(best, score))
	if berr == nil {
		c.nClassified.Inc()
		return resp
	}
	c.nBlocked.Inc()
	resp.Body.Close()
	return p.blockResponse(req, st, berr)
}

// bestOf returns the best scoring category of set in res.
func bestOf(res *classify.Result, set categories.Set) (categories.Category, float64) {
	best, score := categories.Unclassified, 0.0
	for _, cs := range res.ScoresOf() {
		if set.Has(cs.Category) && cs.Score > score {
			best, score = cs.Category, cs.Score
		}
	}
	return best, score
}

// nearMiss handles a page the classifier is unsure about (unsure: at or
// above the profile's threshold, below clear evidence): it is allowed,
// never remembered, and when the profile would have blocked it the log
// line says so with the score (`classified: "unsure:gambling=0.68"`), for
// the report's near misses.
func (c *content) nearMiss(st *request, unsure categories.Set, res *classify.Result) bool {
	if unsure.Empty() {
		return false
	}
	var blocked categories.Set
	for cat := categories.Category(0); cat < categories.Unclassified; cat++ {
		if unsure.Has(cat) && st.snap.DecideAs(policy.Args{User: st.user, Profile: st.named, IP: st.ip, Host: st.host, Time: st.start}, categories.SetOf(cat)).Verdict == policy.Block {
			blocked = blocked.Add(cat)
		}
	}
	if blocked.Empty() {
		return false
	}
	best, score := bestOf(res, blocked)
	st.classified = unsurePrefix + classify.Note(best, score)
	return true
}

// unsurePrefix starts the classified note of a near miss.
const unsurePrefix = "unsure:"

// remember hands a page with clear evidence to the memory, unless the
// visitor may have shaped it: never a page asked for with a query, and
// never its score in a category the request's own input speaks for, or
// whose matched phrases use a word of that input (path, Referer, cookies:
// a page may echo any of them). The memory remembers the page itself, and
// its host only once several pages and visitors agree.
func (c *content) remember(req *http.Request, st *request, res *classify.Result, threshold float64) {
	if req.URL.RawQuery != "" || req.URL.ForceQuery {
		c.nShaped.Inc()
		return
	}
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	inputs := append([]string{path}, req.Header.Values("Referer")...)
	inputs = append(inputs, req.Header.Values("Cookie")...)
	tainted := c.classifier(st).InputCategories(inputs...) | res.Echoes(inputs...)
	clear := classify.ClearEvidence(threshold)
	var keep []classify.CategoryScore
	sure := false
	for _, cs := range res.ScoresOf() {
		if tainted.Has(cs.Category) {
			continue
		}
		keep = append(keep, cs)
		sure = sure || cs.Score >= clear
	}
	if !sure {
		c.nShaped.Inc()
		return
	}
	visitor := "user:" + st.user
	if st.user == "" {
		visitor = "ip:" + st.ip.String()
	}
	c.mem.Page(classify.PageVisit{Host: st.host, Path: path, Visitor: visitor, Scores: keep}, st.start)
}

// blockResponse is the block page as a response, for an outcome decided
// after the request went upstream.
func (p *Proxy) blockResponse(req *http.Request, st *request, err error) *http.Response {
	p.recordOutcome(st, err)
	return pageResponse(req, st.status, p.page(st, err))
}

// shouldScore decides whether this page of host is scored (see
// ContentOptions.ScoreEveryPage).
func (c *content) shouldScore(host string, now time.Time) bool {
	if c.every {
		return true
	}
	c.hostMu.Lock()
	defer c.hostMu.Unlock()
	w, ok := c.watch.Get(host)
	if !ok || now.Sub(w.since) >= contentWatch {
		w = &watched{since: now}
		c.watch.Add(host, w)
	}
	w.pages++
	return w.clean < contentFirstPages || w.pages%contentSampleEvery == 0
}

func (c *content) scoredClean(host string) {
	c.hostMu.Lock()
	if w, ok := c.watch.Get(host); ok {
		w.clean++
	}
	c.hostMu.Unlock()
}
