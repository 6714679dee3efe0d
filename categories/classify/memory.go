package classify

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/schoolgate/schoolgate/categories"
)

// Memory remembers what the content classifier found, for a while, so that
// later requests (and, for a whole host, DNS queries) are decided without
// rescoring. A page a visitor shaped must never condemn its host, so it
// remembers at two levels:
//
//   - a page (host and path, never a query): remembered from one scoring
//     of it (Page), it decides only later requests for that same page;
//   - a host: remembered only when HostPages distinct pages of it,
//     requested by HostVisitors distinct visitors, agree in a category
//     (never from one visitor alone, whatever the number of pages); then
//     every request and DNS query for the host is decided from it, and the
//     policy says so (MemoryRulePrefix), so that nobody is reported for a
//     page they did not ask for.
//
// It keeps scores, not verdicts: profiles have their own thresholds, so a
// strict profile's low threshold never blocks a page for a lenient one.
// It is bounded (the least recently remembered hosts go first, and each
// host keeps at most maxSitePages pages) and entries expire. Lookups are
// cheap when it is empty, the common case on the hot path.
type Memory struct {
	ttl   time.Duration
	n     atomic.Int64 // hosts with anything remembered, for the empty fast path
	mu    sync.RWMutex
	sites *simplelru.LRU[string, *site]
	added atomic.Uint64

	jmu sync.Mutex
	j   *journal // nil: not kept on disk
}

// Agreement a host needs before it is remembered as a whole: HostPages
// distinct pages of it scoring in a category, requested by at least
// HostVisitors distinct visitors (users, or client addresses where there
// is no user). Three of each: one pupil, or two working together, cannot
// get a site blocked for the school by visiting it, and a real gambling
// or adult site is still visited by more than that in a day; until then
// each of its pages is scored and blocked as served.
const (
	HostPages    = 3
	HostVisitors = 3
)

// maxSitePages bounds the pages remembered per host (the oldest to expire
// go first): enough to reach agreement, small enough that a host with
// endless paths costs little.
const maxSitePages = 16

// site is what is remembered about one host. Its fields change only with
// Memory.mu held for writing; the slices they hold are never changed in
// place, so a reader may keep them after unlocking.
type site struct {
	host  *Remembered // the host as a whole (agreed, or its name); nil: pages only
	pages []pageMemory
}

// without is a copy of s (nil: an empty site) with the host kept and the
// pages that keep accepts, less the one at path: a site in the LRU is
// never changed in place, so a reader holding it sees it whole.
func (s *site) without(path string, keep func(pageMemory) bool) *site {
	ns := &site{}
	if s != nil {
		ns.host = s.host
		for _, q := range s.pages {
			if q.path != path && keep(q) {
				ns.pages = append(ns.pages, q)
			}
		}
	}
	return ns
}

type pageMemory struct {
	path    string
	visitor string
	scores  []CategoryScore
	expires time.Time
}

// CategoryScore is one category's score.
type CategoryScore struct {
	Category categories.Category
	Score    float64
}

// Remembered is what the classifier learned about one host or page.
type Remembered struct {
	Scores  []CategoryScore // best first
	Via     string          // see the Via constants
	Expires time.Time
}

// Where a remembered score came from (Remembered.Via), and the prefix of
// the note that says so.
const (
	ViaPage  = ""      // the page's own content
	ViaPages = "pages" // the host, from agreeing pages and visitors
	ViaHost  = "host"  // the host's name
)

// DefaultMemoryTTL is how long a classification is remembered.
const DefaultMemoryTTL = 6 * time.Hour

// MemoryRulePrefix starts the rule of a block decided from a host's memory
// ("classifier-memory:pages:gambling=0.83"): the person asked for another
// page of the host (or only looked its name up), so the decision is the
// classifier's, not what they asked for. The report and the alerts do not
// count such a block as the person's incident.
const MemoryRulePrefix = "classifier-memory:"

// FromMemory reports whether an access-log rule is a block decided from a
// host's memory (MemoryRulePrefix).
func FromMemory(rule string) bool { return strings.HasPrefix(rule, MemoryRulePrefix) }

// When unsure, allow and say so. A score at or above a profile's threshold
// is not enough to block: it must be clear evidence, ClearMargin above the
// threshold (or halfway from the threshold to 1, when that is nearer).
// Between the two the page is allowed and logged with its score as a near
// miss (the proxy's `classified: "unsure:…"`). An over-block costs more
// than a miss: a page a child is taught with must not be blocked on a
// doubt.
const ClearMargin = 0.15

// ClearEvidence returns the score that is clear evidence for a profile's
// content threshold (0: DefaultThreshold). It is the one place that says
// what "clear" is: the proxy blocks from it, and the memory recalls from it.
func ClearEvidence(threshold float64) float64 {
	if threshold <= 0 {
		threshold = DefaultThreshold
	}
	return min(threshold+ClearMargin, (1+threshold)/2)
}

// Judge splits a page's categories for a profile's threshold (0: the
// default): sure holds those with clear evidence (ClearEvidence), which
// may be blocked; unsure those at or above the threshold but below clear
// evidence, which are allowed and reported.
func (r *Result) Judge(threshold float64) (sure, unsure categories.Set) {
	if threshold <= 0 {
		threshold = DefaultThreshold
	}
	clear := ClearEvidence(threshold)
	for i, v := range r.Scores {
		switch {
		case v <= 0:
		case v >= clear:
			sure = sure.Add(categories.Category(i))
		case v >= threshold:
			unsure = unsure.Add(categories.Category(i))
		}
	}
	return sure, unsure
}

// NewMemory returns a memory of at most size hosts (default 10000),
// each kept for ttl (default DefaultMemoryTTL).
func NewMemory(size int, ttl time.Duration) *Memory {
	if size <= 0 {
		size = 10000
	}
	if ttl <= 0 {
		ttl = DefaultMemoryTTL
	}
	l, _ := simplelru.NewLRU[string, *site](size, nil) // fails only for size <= 0
	return &Memory{ttl: ttl, sites: l}
}

// keepScores returns the scores worth keeping: above 0, of a real
// category, best first.
func keepScores(scores []CategoryScore) []CategoryScore {
	var keep []CategoryScore
	for _, cs := range scores {
		if cs.Score > 0 && cs.Score <= 1 && cs.Category < categories.Unclassified {
			keep = append(keep, cs)
		}
	}
	sort.Slice(keep, func(i, j int) bool { return keep[i].Score > keep[j].Score })
	return keep
}

// Remember records a signal about a host as a whole, from now on: via is
// ViaHost for its name. It is not for a page's content, which could be
// the visitor's own words echoed back: that goes through Page, and a host
// is remembered from pages only when several pages and visitors agree.
// Scores of 0 are dropped; nothing is remembered when none is left.
func (m *Memory) Remember(host string, scores []CategoryScore, via string, now time.Time) {
	if m == nil || host == "" {
		return
	}
	keep := keepScores(scores)
	if len(keep) == 0 {
		return
	}
	m.setHost(host, Remembered{Scores: keep, Via: via, Expires: now.Add(m.ttl)}, true)
}

// PageVisit is one scored page the classifier may remember.
type PageVisit struct {
	Host string
	// Path is the page's path, as requested; a path with a query is never
	// remembered (the query is the visitor's input).
	Path string
	// Visitor says who asked: "user:NAME", or "ip:ADDR" where there is no
	// user. Pages from an unknown visitor ("") count for no visitor.
	Visitor string
	Scores  []CategoryScore
}

// Page remembers a scored page from now on, and the host as a whole once
// its remembered pages agree (HostPages pages from HostVisitors
// visitors). It reports whether the host is remembered as a whole after
// this page. The caller must not pass a page whose scores could be the
// visitor's own input echoed back (see Classifier.InputCategories).
func (m *Memory) Page(v PageVisit, now time.Time) bool {
	if m == nil || v.Host == "" || !strings.HasPrefix(v.Path, "/") || strings.ContainsAny(v.Path, "?#") {
		return false
	}
	keep := keepScores(v.Scores)
	if len(keep) == 0 {
		return false
	}
	p := pageMemory{path: v.Path, visitor: v.Visitor, scores: keep, expires: now.Add(m.ttl)}
	agreed, ok := m.addPage(v.Host, p, now)
	m.writeJournal(encodePage(v.Host, p))
	if ok {
		m.writeJournal(encodeHost(v.Host, agreed))
	}
	return ok
}

// addPage adds (or replaces) a page and works out the host's agreement.
func (m *Memory) addPage(host string, p pageMemory, now time.Time) (Remembered, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, _ := m.sites.Get(host)
	ns := s.without(p.path, func(q pageMemory) bool { return now.Before(q.expires) })
	for len(ns.pages) >= maxSitePages {
		ns.pages = dropOne(ns.pages)
	}
	ns.pages = append(ns.pages, p)
	var agreed Remembered
	ok := false
	if scores := agreement(ns.pages); len(scores) > 0 {
		agreed = Remembered{Scores: scores, Via: ViaPages, Expires: now.Add(m.ttl)}
		if ns.host == nil || ns.host.Via == ViaPages || !now.Before(ns.host.Expires) {
			ns.host = &agreed
			if s == nil || s.host == nil || s.host.Via != ViaPages || !now.Before(s.host.Expires) {
				m.added.Add(1)
			}
			ok = true
		}
	}
	m.sites.Add(host, ns)
	m.n.Store(int64(m.sites.Len()))
	return agreed, ok
}

// dropOne makes room in a full site: the oldest page of the visitor with
// the most pages goes, so that one visitor's many pages cannot push out
// the others' (and delay the agreement they would give).
func dropOne(pages []pageMemory) []pageMemory {
	count := map[string]int{}
	most := ""
	for _, p := range pages {
		count[p.visitor]++
		if count[p.visitor] > count[most] || (count[p.visitor] == count[most] && p.visitor < most) {
			most = p.visitor
		}
	}
	drop := -1
	for i, p := range pages {
		if p.visitor == most && (drop < 0 || p.expires.Before(pages[drop].expires)) {
			drop = i
		}
	}
	out := make([]pageMemory, 0, len(pages))
	out = append(out, pages[:drop]...)
	return append(out, pages[drop+1:]...)
}

// agreement returns a host's scores from its pages: for each category,
// the highest score s such that HostPages of the pages score s or more in
// it and those pages were asked for by HostVisitors visitors or more.
// So the host scores no higher than the weakest of the pages that agree.
func agreement(pages []pageMemory) []CategoryScore {
	if len(pages) < HostPages {
		return nil
	}
	type vote struct {
		score   float64
		visitor string
	}
	var out []CategoryScore
	var votes []vote
	for c := categories.Category(0); c < categories.Unclassified; c++ {
		votes = votes[:0]
		for _, p := range pages {
			for _, cs := range p.scores {
				if cs.Category == c {
					votes = append(votes, vote{cs.Score, p.visitor})
				}
			}
		}
		if len(votes) < HostPages {
			continue
		}
		sort.Slice(votes, func(i, j int) bool { return votes[i].score > votes[j].score })
		var seen []string
		for i, v := range votes {
			if v.visitor != "" && !containsString(seen, v.visitor) {
				seen = append(seen, v.visitor)
			}
			if i+1 >= HostPages && len(seen) >= HostVisitors {
				out = append(out, CategoryScore{c, v.score})
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	return out
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// setHost records a host as a whole.
func (m *Memory) setHost(host string, r Remembered, journal bool) {
	m.mu.Lock()
	s, _ := m.sites.Get(host)
	ns := &site{host: &r}
	if s != nil {
		ns.pages = s.pages
	}
	m.sites.Add(host, ns)
	m.n.Store(int64(m.sites.Len()))
	m.mu.Unlock()
	m.added.Add(1)
	if journal {
		m.writeJournal(encodeHost(host, r))
	}
}

// loadPage adds a page read from the journal (the host's agreement was
// journaled on its own line).
func (m *Memory) loadPage(host string, p pageMemory) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, _ := m.sites.Get(host)
	ns := s.without(p.path, func(pageMemory) bool { return true })
	if len(ns.pages) >= maxSitePages {
		return
	}
	ns.pages = append(ns.pages, p)
	m.sites.Add(host, ns)
	m.n.Store(int64(m.sites.Len()))
}

// Lookup returns what is remembered about host as a whole at now (not its
// pages: see Recall).
func (m *Memory) Lookup(host string, now time.Time) (Remembered, bool) {
	s, ok := m.live(host, now)
	if !ok || s.host == nil {
		return Remembered{}, false
	}
	return *s.host, true
}

// live returns host's site with what has expired at now dropped (and
// drops the site when nothing is left).
func (m *Memory) live(host string, now time.Time) (*site, bool) {
	if m == nil || m.n.Load() == 0 {
		return nil, false
	}
	m.mu.RLock()
	s, ok := m.sites.Peek(host)
	m.mu.RUnlock()
	if !ok {
		return nil, false
	}
	if s.fresh(now) {
		return s, true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok = m.sites.Peek(host)
	if !ok {
		return nil, false
	}
	if s.fresh(now) {
		return s, true
	}
	ns := &site{}
	if s.host != nil && now.Before(s.host.Expires) {
		ns.host = s.host
	}
	for _, p := range s.pages {
		if now.Before(p.expires) {
			ns.pages = append(ns.pages, p)
		}
	}
	if ns.host == nil && len(ns.pages) == 0 {
		m.sites.Remove(host)
		m.n.Store(int64(m.sites.Len()))
		return nil, false
	}
	m.sites.Add(host, ns)
	return ns, true
}

// fresh reports whether nothing in s has expired at now.
func (s *site) fresh(now time.Time) bool {
	if s.host != nil && !now.Before(s.host.Expires) {
		return false
	}
	for _, p := range s.pages {
		if !now.Before(p.expires) {
			return false
		}
	}
	return true
}

// Has reports whether anything is remembered about host (as a whole or
// any of its pages) at now: the cheap first question on the hot path.
func (m *Memory) Has(host string, now time.Time) bool {
	_, ok := m.live(host, now)
	return ok
}

// Recall is what the memory says about one request.
type Recall struct {
	// Categories are those with clear evidence for the profile's
	// threshold (ClearEvidence).
	Categories categories.Set
	// Note names the best of them, with where it came from:
	// "gambling=0.83" (this page), "pages:gambling=0.80" (the host, from
	// agreeing pages), "host:gambling=0.78" (the host's name).
	Note string
	// Host is true when the host's memory decided, not this page's own:
	// the person did not ask for the page that was classified.
	Host bool
}

// Classified returns what is remembered for a request of path (as sent,
// with any query; "" for a host-only decision: a DNS query, a CONNECT) on
// host, for a profile's content threshold (0: DefaultThreshold): the
// page's own memory when the path (without a query) is remembered, else
// the host's. It is what the policy engine asks (policy.RememberedPages).
func (m *Memory) Classified(host, path string, threshold float64, now time.Time) (Recall, bool) {
	s, ok := m.live(host, now)
	if !ok {
		return Recall{}, false
	}
	clear := ClearEvidence(threshold)
	if path != "" && !strings.ContainsAny(path, "?#") {
		for _, p := range s.pages {
			if p.path == path {
				if set, note := over(p.scores, clear); !set.Empty() {
					return Recall{Categories: set, Note: note}, true
				}
				break
			}
		}
	}
	if s.host != nil {
		if set, note := over(s.host.Scores, clear); !set.Empty() {
			if s.host.Via != "" {
				note = s.host.Via + ":" + note
			}
			return Recall{Categories: set, Note: note, Host: true}, true
		}
	}
	return Recall{}, false
}

// over returns the categories of scores (best first) at or above clear,
// and a note naming the best.
func over(scores []CategoryScore, clear float64) (categories.Set, string) {
	var set categories.Set
	note := ""
	for _, cs := range scores {
		if cs.Score >= clear {
			if set.Empty() {
				note = Note(cs.Category, cs.Score)
			}
			set = set.Add(cs.Category)
		}
	}
	return set, note
}

// Forget drops host and its pages.
func (m *Memory) Forget(host string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.sites.Remove(host)
	m.n.Store(int64(m.sites.Len()))
	m.mu.Unlock()
}

// Len returns how many hosts have something remembered (expired ones
// included until they are looked up or pushed out).
func (m *Memory) Len() int {
	if m == nil {
		return 0
	}
	return int(m.n.Load())
}

// Added returns how many hosts were ever remembered as a whole.
func (m *Memory) Added() uint64 {
	if m == nil {
		return 0
	}
	return m.added.Load()
}

// Note formats a classifier note: "gambling=0.83".
func Note(cat categories.Category, score float64) string {
	return cat.String() + "=" + strconv.FormatFloat(score, 'f', 2, 64)
}

// ScoresOf returns a result's non-zero scores, for Remember and Page.
func (r *Result) ScoresOf() []CategoryScore {
	var out []CategoryScore
	for i, v := range r.Scores {
		if v > 0 {
			out = append(out, CategoryScore{categories.Category(i), v})
		}
	}
	return out
}

// Echoes returns the categories whose evidence in the page uses a word of
// the visitor's input (decoded as InputCategories decodes it): a phrase
// the page matched that contains one of the input's words may have been
// completed by the echo ("Results for online casino" from q=online on a
// page that says "casino"). Together with InputCategories it is how the
// proxy tells whether a page may have been shaped by its visitor; both
// err on the side of not remembering.
func (r *Result) Echoes(inputs ...string) categories.Set {
	if r == nil || len(r.Matches) == 0 {
		return 0
	}
	words := map[string]bool{}
	for _, w := range inputWords(inputs) {
		words[w] = true
	}
	if len(words) == 0 {
		return 0
	}
	var set categories.Set
	for _, m := range r.Matches {
		if m.Effect <= 0 || set.Has(m.Category) {
			continue
		}
		for _, w := range strings.Fields(m.Phrase) {
			if words[w] {
				set = set.Add(m.Category)
				break
			}
		}
	}
	return set
}

// inputWords returns the normalised words of a request's input, each
// part decoded as a page would show it.
func inputWords(inputs []string) []string {
	var words []string
	for _, in := range inputs {
		if len(words) > maxInputWords {
			break
		}
		if dec, err := url.QueryUnescape(in); err == nil {
			in = dec // '+' and %XX as a page would show them
		} else if dec, err := url.PathUnescape(in); err == nil {
			in = dec
		}
		words = append(words, Words(in)...)
	}
	return words
}

// Bounds on the request input InputCategories reads: it runs only for a
// page with clear evidence that could be remembered (a few hundred
// microseconds at most), but the input is the visitor's and may be long.
// Input longer than maxInputWords cannot be vetted and counts as speaking
// for every category: a bound must never let the end of it through.
const (
	maxInputWords  = 256
	maxInputWindow = 4
)

// InputCategories returns the categories the visitor's own input speaks
// for: the words of the decoded path, query, Referer and cookies a
// request carried (the caller passes them as they were sent). A page may
// echo any of it back (search results, "you searched for", a 404 page
// that repeats its path, "welcome back, NAME"), so the page's evidence in
// these categories may be the visitor's, not the site's, and must never
// be remembered. It does not look for the words in the page: whether they
// are echoed or not, the visitor supplied words of the category. Each
// run of up to maxInputWindow words is scored on its own as well as the
// whole, so that context words in the input cannot hide a category's
// phrase.
func (c *Classifier) InputCategories(inputs ...string) categories.Set {
	words := inputWords(inputs)
	if len(words) > maxInputWords {
		var all categories.Set
		for c := categories.Category(0); c < categories.Unclassified; c++ {
			all = all.Add(c)
		}
		return all
	}
	var set categories.Set
	add := func(ws []string) {
		r := c.Score([]byte(strings.Join(ws, " ")))
		for i, v := range r.Scores {
			if v > 0 {
				set = set.Add(categories.Category(i))
			}
		}
	}
	if len(words) == 0 {
		return 0
	}
	add(words)
	for i := range words {
		for n := 1; n <= maxInputWindow && i+n <= len(words); n++ {
			add(words[i : i+n])
		}
	}
	return set
}
