package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/categories/classify"
	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/internal/lines"
	"github.com/schoolgate/schoolgate/logging"
	"github.com/schoolgate/schoolgate/policy"
)

// Serious is the default set of categories whose blocked attempts are
// incidents: the ones a designated safeguarding lead wants to hear about.
var Serious = []string{"adult", "self-harm", "extremism", "hate", "violence", "drugs",
	"proxy-avoidance", "doh", "hacking", "malware"}

// Bounds on what the report keeps, so that memory stays bounded whatever
// the log holds (a host name is attacker-chosen, so distinct hosts are not
// bounded by the school's size).
const (
	maxUsers      = 200000 // beyond: counted under one "(other users)" row
	maxDevices    = 32     // per user
	maxAllDevices = 500000
	maxIncidents  = 20000 // incident groups
	maxSearches   = 5000  // distinct (user, term)
	hostSlots     = 5000  // Space-Saving slots for top hosts
	maxLineBytes  = 1 << 20
	repeatWindow  = 10 * time.Minute
	repeatCount   = 3
)

// Options says what to report on.
type Options struct {
	Dir      string         // the access-log folder (config log.dir)
	From, To time.Time      // first and last local day, inclusive (only the date is used)
	Location *time.Location // the config's timezone; nil means UTC
	// SchoolHours are the windows outside which activity is "out of hours";
	// empty means config.DefaultSchoolHours.
	SchoolHours []config.Schedule
	// Serious lists the incident categories; nil means Serious.
	Serious []string
	// Title names the school on the report (block_page.organisation); may be "".
	Title string
	// Now stamps the report; nil means time.Now.
	Now func() time.Time
}

// catIndex maps a category name to its categories.Category without allocating.
var catIndex = func() map[string]categories.Category {
	m := make(map[string]categories.Category)
	for _, c := range categories.All() {
		m[c.String()] = c
	}
	return m
}()

const numCats = int(categories.Unclassified) + 1

// Aggregator folds access-log lines into a Report. It keeps bounded state;
// feed it with Read (or ReadFile) and then call Report.
type Aggregator struct {
	loc     *time.Location
	hours   []config.Schedule
	serious categories.Set
	p       parser
	l       line

	r        Report
	users    map[string]*UserSummary
	devices  map[string]struct{}
	incIdx   map[string]*Incident
	srchIdx  map[string]*Search
	blocked  *topK
	allowed  *topK
	overblk  *topK
	near     *topK              // near misses by host
	nearBest map[string]nearTop // the highest score seen per near-miss host
	days     map[string]*DayCount
	internal []byte // scratch for keys

	// the last line's local date, formatted once per day rather than per line
	lastY   int
	lastM   time.Month
	lastD   int
	lastDay string
	lastDC  *DayCount
}

// NewAggregator returns an empty aggregator for o (only Location,
// SchoolHours and Serious are used).
func NewAggregator(o Options) (*Aggregator, error) {
	a := &Aggregator{
		loc:      o.Location,
		hours:    o.SchoolHours,
		users:    make(map[string]*UserSummary),
		devices:  make(map[string]struct{}),
		incIdx:   make(map[string]*Incident),
		srchIdx:  make(map[string]*Search),
		blocked:  newTopK(hostSlots),
		allowed:  newTopK(hostSlots),
		overblk:  newTopK(hostSlots / 5),
		near:     newTopK(hostSlots / 5),
		nearBest: make(map[string]nearTop),
		days:     make(map[string]*DayCount),
	}
	if len(a.hours) == 0 {
		a.hours = []config.Schedule{config.DefaultSchoolHours}
	}
	if a.loc == nil {
		a.loc = time.UTC
	}
	names := o.Serious
	if names == nil {
		names = Serious
	}
	for _, n := range names {
		c, ok := categories.Parse(n)
		if !ok {
			return nil, fmt.Errorf("unknown serious category %q", n)
		}
		a.serious = a.serious.Add(c)
	}
	return a, nil
}

// Run reads every day's log in o and returns the report. Days without a
// file are listed in Report.MissingDays; a period with no log at all gives
// an empty report with DaysRead 0, not an error (the command refuses to
// write that one).
func Run(o Options) (*Report, error) {
	a, err := NewAggregator(o)
	if err != nil {
		return nil, err
	}
	loc := a.loc
	from := time.Date(o.From.Year(), o.From.Month(), o.From.Day(), 0, 0, 0, 0, loc)
	to := time.Date(o.To.Year(), o.To.Month(), o.To.Day(), 0, 0, 0, 0, loc)
	if to.Before(from) {
		return nil, fmt.Errorf("the last day %s is before the first %s", to.Format(time.DateOnly), from.Format(time.DateOnly))
	}
	if to.Sub(from) > 370*24*time.Hour {
		return nil, errors.New("a report covers at most a year")
	}
	var missing []string
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		path := logging.PathFor(o.Dir, d)
		err := a.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, d.Format(time.DateOnly))
			continue
		}
		if err != nil {
			return nil, err
		}
		a.r.DaysRead++
		// A file the writer found damaged was set aside and a new chain
		// started; its lines still happened that day.
		damaged, _ := filepath.Glob(path + ".damaged-*")
		for _, p := range damaged {
			if err := a.ReadFile(p); err != nil {
				return nil, err
			}
			a.r.DamagedFiles = append(a.r.DamagedFiles, filepath.Base(p))
		}
	}
	r := a.Report()
	r.From, r.To = from, to
	r.MissingDays = missing
	r.LogDir = o.Dir
	r.Title = o.Title
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	r.Generated = now().In(loc)
	return r, nil
}

// ReadFile feeds one log file to the aggregator (its .gz when the day
// was compressed).
func (a *Aggregator) ReadFile(path string) error {
	f, err := logging.OpenDay(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := a.Read(f, filepath.Base(path)); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}

// Read feeds log lines from r; name labels malformed lines in the report.
// Malformed lines are skipped and counted, never fatal; only a read error is.
func (a *Aggregator) Read(r io.Reader, name string) error {
	return lines.EachFit(r, 256<<10, func(n int, b []byte) {
		if len(bytes.TrimSpace(b)) == 0 {
			return
		}
		if perr := a.p.parse(b, &a.l); perr != nil {
			a.malformed(name, n)
		} else {
			a.add(&a.l)
		}
	}, func(n int) {
		a.malformed(name, n) // an over-long line
	})
}

func (a *Aggregator) malformed(name string, n int) {
	a.r.Malformed++
	if len(a.r.MalformedAt) < 5 {
		a.r.MalformedAt = append(a.r.MalformedAt, fmt.Sprintf("%s:%d", name, n))
	}
}

// Rules of log lines that are neither a visit to a site nor a block of
// content (see add).
const (
	ruleSignIn    = "proxy_auth" // the proxy's 407: it asks for a password
	ruleCanary    = "doh_canary" // use-application-dns.net, answered NXDOMAIN on purpose
	ruleIntercept = "intercept"  // an intercepted tunnel: its requests are logged one by one
)

// The sign-in page's rules: a redirect to it, its sign-ins and sign-outs;
// counted with the sign-in prompts.
const (
	rulePortalRequired = "portal_required"
	rulePortalSignIn   = "portal_signin"
	rulePortalSignOut  = "portal_signout"
)

// add folds one parsed line in.
func (a *Aggregator) add(l *line) {
	if string(l.src) == "log" {
		return // the writer's own gap records, not requests
	}
	r := &a.r
	r.Lines++
	if string(l.src) == "dns" {
		r.DNS++
	} else {
		r.Proxy++
	}
	if a.countedApart(l) {
		return
	}
	lt := l.ts.In(a.loc)
	blocked := string(l.verdict) == "block"
	var cats categories.Set
	for _, c := range l.categories {
		if k, ok := catIndex[string(c)]; ok {
			cats = cats.Add(k)
		}
	}
	ooh := !a.inSchoolHours(lt)
	dayKey := a.addTotals(lt, cats, blocked, ooh)
	a.addDevice(l.ip)
	u := a.user(l, lt)
	u.add(l, lt, cats, blocked, ooh)
	a.addOutcome(l, lt, dayKey, u, cats, blocked, ooh)
	if len(l.url) > 0 {
		a.search(l, lt, u, blocked)
	}
}

// countedApart counts the lines that are not requests, blocks or
// over-blocking, and reports whether l was one: a sign-in prompt is the
// proxy asking who is there, the DoH canary is answered on purpose, an
// intercepted tunnel's requests have lines of their own (a blocked host's
// tunnel would otherwise top the allowed sites), and a statutory list's
// contents never appear in the report (its blocks are counted, with no
// site, address or search; the access log keeps them for whoever
// investigates).
func (a *Aggregator) countedApart(l *line) bool {
	r := &a.r
	switch string(l.rule) {
	case ruleSignIn, rulePortalRequired, rulePortalSignIn, rulePortalSignOut:
		r.SignInPrompts++
		return true
	case ruleCanary:
		if string(l.src) == "dns" {
			r.OnPurpose++
			return true
		}
	case ruleIntercept:
		if string(l.method) == "CONNECT" {
			r.Tunnels++
			return true
		}
	}
	if bytes.HasPrefix(l.rule, []byte(policy.RuleStatutoryPrefix)) {
		r.Statutory++
		return true
	}
	return false
}

// addTotals counts a request in the report's totals, its hour and its day,
// and returns the day's key.
func (a *Aggregator) addTotals(lt time.Time, cats categories.Set, blocked, ooh bool) string {
	r := &a.r
	r.Requests++
	h := lt.Hour()
	if blocked {
		r.Blocked++
		r.Hours[h].Blocked++
		for c := 0; c < numCats; c++ {
			if cats.Has(categories.Category(c)) {
				r.CatBlocked[c]++
			}
		}
		if cats.Empty() {
			r.CatBlocked[categories.Unclassified]++
		}
	} else {
		r.Hours[h].Allowed++
	}
	if r.First.IsZero() || lt.Before(r.First) {
		r.First = lt
	}
	if lt.After(r.Last) {
		r.Last = lt
	}
	y, mo, dd := lt.Date()
	if y != a.lastY || mo != a.lastM || dd != a.lastD || a.lastDC == nil {
		a.lastY, a.lastM, a.lastD = y, mo, dd
		a.lastDay = lt.Format(time.DateOnly)
		a.lastDC = a.days[a.lastDay]
		if a.lastDC == nil {
			a.lastDC = &DayCount{Day: a.lastDay}
			a.days[a.lastDay] = a.lastDC
		}
	}
	a.lastDC.Requests++
	if blocked {
		a.lastDC.Blocked++
	}
	if ooh {
		r.OutOfHours++
	}
	return a.lastDay
}

// addDevice counts a device address, up to maxAllDevices.
func (a *Aggregator) addDevice(ip []byte) {
	if _, ok := a.devices[string(ip)]; !ok {
		if len(a.devices) < maxAllDevices {
			a.devices[string(ip)] = struct{}{}
		} else {
			a.r.DevicesCapped = true
		}
	}
}

// user returns l's row: per user, and for a line without one per device
// address; past maxUsers rows, one row for the others.
func (a *Aggregator) user(l *line, lt time.Time) *UserSummary {
	key := a.internal[:0]
	if len(l.user) > 0 {
		key = append(key, 'u')
		key = append(key, l.user...)
	} else {
		key = append(key, 'i')
		key = append(key, l.ip...)
	}
	a.internal = key
	u := a.users[string(key)]
	if u == nil {
		if len(a.users) >= maxUsers {
			key = append(key[:0], "x"...)
			u = a.users[string(key)]
		}
		if u == nil {
			u = &UserSummary{User: string(l.user), devices: map[string]struct{}{}}
			if len(l.user) == 0 {
				u.IP = string(l.ip)
			}
			if string(key) == "x" {
				u.User = "(other users)"
			}
			u.First = lt
			a.users[string(key)] = u
		}
	}
	return u
}

// add counts a request in the user's row.
func (u *UserSummary) add(l *line, lt time.Time, cats categories.Set, blocked, ooh bool) {
	u.sawProfile(l.profile)
	u.Requests++
	if lt.Before(u.First) {
		u.First = lt
	}
	if lt.After(u.Last) {
		u.Last = lt
	}
	if _, ok := u.devices[string(l.ip)]; !ok {
		if len(u.devices) < maxDevices {
			u.devices[string(l.ip)] = struct{}{}
		} else {
			u.moreDevices = true
		}
	}
	if ooh {
		u.OutOfHours++
	}
	for c := 0; c < numCats; c++ {
		if cats.Has(categories.Category(c)) {
			u.catReq[c]++
			if blocked {
				u.catBlocked[c]++
			}
		}
	}
	if cats.Empty() {
		u.catReq[categories.Unclassified]++
		if blocked {
			u.catBlocked[categories.Unclassified]++
		}
	}
	if blocked {
		u.Blocked++
	}
}

// addOutcome puts the site among the blocked or allowed ones, with what a
// block may mean: a possible over-block, an incident, a near miss. A block
// the content classifier made (no list names the site) may be an
// over-block; one from its memory of the host was not even what this
// person asked for, so it is never their incident.
func (a *Aggregator) addOutcome(l *line, lt time.Time, dayKey string, u *UserSummary, cats categories.Set, blocked, ooh bool) {
	if !blocked {
		a.allowed.add(l.host, cats)
		if bytes.HasPrefix(l.classified, []byte(unsurePrefix)) {
			a.nearMiss(l)
		}
		return
	}
	byClassifier := bytes.HasPrefix(l.rule, []byte("classifier"))
	fromMemory := classify.FromMemory(string(l.rule))
	a.blocked.add(l.host, cats)
	// Only a profile's rule can over-block; the gateway's own refusals
	// (not_a_client, bad_request, tls_required, ...) are not about the
	// site's category.
	if ((cats.Empty() || cats.Has(categories.Education) || cats.Has(categories.Unclassified)) && profileRule(l.rule)) || byClassifier {
		a.overblk.add(l.host, cats)
	}
	if fromMemory {
		a.r.MemoryBlocks++
	}
	if cats.Intersects(a.serious) && !fromMemory {
		u.Incidents++
		a.r.IncidentAttempts++
		a.incident(l, lt, dayKey, cats, ooh)
	}
}

// profileRule reports whether rule is a profile's (PROFILE#N,
// PROFILE#default) or the content classifier's, not a system refusal.
func profileRule(rule []byte) bool {
	return bytes.IndexByte(rule, '#') > 0 || bytes.HasPrefix(rule, []byte("classifier:"))
}

// unsurePrefix starts the classified note of a page the content
// classifier was unsure about and allowed (docs/classifier.md).
const unsurePrefix = "unsure:"

// nearTop is the highest score seen for a near-miss host.
type nearTop struct {
	score float64
	note  string // "gambling=0.68"
	url   string
}

// nearMiss counts an allowed page the classifier was unsure about
// ("unsure:gambling=0.68"): the near misses of possible over-blocking.
func (a *Aggregator) nearMiss(l *line) {
	note := string(l.classified[len(unsurePrefix):])
	name, num, ok := strings.Cut(note, "=")
	cat, okc := catIndex[name]
	score, err := strconv.ParseFloat(num, 64)
	if !ok || !okc || err != nil {
		return
	}
	a.near.add(l.host, categories.SetOf(cat))
	r := &a.r
	r.NearMissPages++
	best, seen := a.nearBest[string(l.host)]
	if !seen && len(a.nearBest) >= hostSlots {
		return
	}
	if !seen || score > best.score {
		a.nearBest[string(l.host)] = nearTop{score: score, note: note, url: ellipsize(string(l.url), 200)}
	}
}

func (a *Aggregator) incident(l *line, lt time.Time, day string, cats categories.Set, ooh bool) {
	key := a.internal[:0]
	key = append(key, day...)
	key = append(key, 0)
	key = append(key, l.user...)
	key = append(key, 0)
	key = append(key, l.ip...)
	key = append(key, 0)
	key = append(key, l.host...)
	a.internal = key
	in := a.incIdx[string(key)]
	if in == nil {
		if len(a.incIdx) >= maxIncidents {
			a.r.IncidentsDropped++
			return
		}
		in = &Incident{Day: day, User: string(l.user), IP: string(l.ip), Host: string(l.host),
			Rule: string(l.rule), First: lt, Last: lt}
		a.incIdx[string(key)] = in
	}
	in.Count++
	in.Categories |= cats & a.serious
	if in.URL == "" && len(l.url) > 0 {
		in.URL = ellipsize(string(l.url), 200)
	}
	if string(l.src) == "dns" {
		in.DNS++
	}
	if ooh {
		in.OutOfHours++
	}
	if lt.Before(in.First) {
		in.First = lt
	}
	if lt.After(in.Last) {
		in.Last = lt
	}
	// Repeated: repeatCount attempts within repeatWindow. The log is in
	// time order, so the last repeatCount-1 times are enough.
	if in.nrecent == repeatCount-1 && lt.Sub(in.recent[0]) <= repeatWindow && !lt.Before(in.recent[0]) {
		in.Repeated = true
	}
	if in.nrecent < repeatCount-1 {
		in.recent[in.nrecent] = lt
		in.nrecent++
	} else {
		copy(in.recent[:], in.recent[1:])
		in.recent[repeatCount-2] = lt
	}
}

// searchParams names the query parameter of the search engines a school
// sees most; the host must be the engine or a subdomain of it.
var searchEngines = []struct{ host, path, param, name string }{
	{"google.", "/search", "q", "Google"},
	{"bing.com", "/search", "q", "Bing"},
	{"duckduckgo.com", "/", "q", "DuckDuckGo"},
	{"youtube.com", "/results", "search_query", "YouTube"},
	{"search.yahoo.com", "/search", "p", "Yahoo"},
	{"ecosia.org", "/search", "q", "Ecosia"},
}

func (a *Aggregator) search(l *line, lt time.Time, u *UserSummary, blocked bool) {
	host := l.host
	engine := -1
	for i, e := range searchEngines {
		if e.host == "google." {
			if bytes.HasPrefix(host, []byte("www.google.")) || bytes.HasPrefix(host, []byte("google.")) {
				engine = i
			}
		} else if string(host) == e.host || bytes.HasSuffix(host, []byte("."+e.host)) {
			engine = i
		}
		if engine >= 0 {
			break
		}
	}
	if engine < 0 {
		return
	}
	e := searchEngines[engine]
	pu, err := url.Parse(string(l.url))
	if err != nil || !strings.HasPrefix(pu.Path, e.path) {
		return
	}
	term := strings.TrimSpace(pu.Query().Get(e.param))
	if term == "" {
		return
	}
	term = ellipsize(strings.Join(strings.Fields(strings.ToLower(term)), " "), 120)
	who := u.Name()
	k := who + "\x00" + term
	s := a.srchIdx[k]
	if s == nil {
		if len(a.srchIdx) >= maxSearches {
			a.r.SearchesDropped++
			return
		}
		s = &Search{Who: who, Term: term, Engine: e.name, First: lt}
		a.srchIdx[k] = s
	}
	s.Count++
	if blocked {
		s.Blocked = true
	}
	if !a.inSchoolHours(lt) {
		s.OutOfHours = true
	}
}

// ellipsize shortens s to n characters (runes) and an ellipsis, for
// people reading the report.
func ellipsize(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// inSchoolHours reports whether lt falls in one of the school-hours
// windows, by the policy's own schedule rule.
func (a *Aggregator) inSchoolHours(lt time.Time) bool {
	for _, s := range a.hours {
		if policy.ScheduleOpen(s, lt) {
			return true
		}
	}
	return false
}

func (a *Aggregator) hoursDesc() string {
	var parts []string
	for _, s := range a.hours {
		parts = append(parts, fmt.Sprintf("%s %02d:%02d–%02d:%02d", dayRanges(s.Days),
			s.From/60, s.From%60, s.To/60, s.To%60))
	}
	return "school hours (" + strings.Join(parts, "; ") + ")"
}

// dayRanges writes sorted days with runs of three or more as ranges:
// "Mon–Fri", "Mon Wed Fri", "Sat Sun".
func dayRanges(days []time.Weekday) string {
	var out []string
	for i := 0; i < len(days); {
		j := i
		for j+1 < len(days) && days[j+1] == days[j]+1 {
			j++
		}
		if j-i >= 2 {
			out = append(out, days[i].String()[:3]+"–"+days[j].String()[:3])
		} else {
			for k := i; k <= j; k++ {
				out = append(out, days[k].String()[:3])
			}
		}
		i = j + 1
	}
	return strings.Join(out, " ")
}

// Report finishes the aggregation. The aggregator must not be fed afterwards.
func (a *Aggregator) Report() *Report {
	r := a.r
	r.Devices = len(a.devices)
	r.SeriousCategories = a.serious.Names()
	r.SchoolHours = a.hoursDesc()
	r.Users, r.DistinctUsers = a.sortedUsers()
	r.Incidents = a.sortedIncidents()
	r.Searches = a.rankedSearches(r.Users)
	r.TopBlocked = hostCounts(a.blocked.top(20))
	r.TopAllowed = hostCounts(a.allowed.top(15))
	r.OverBlocking = hostCounts(a.overblk.top(10))
	for _, it := range a.near.top(10) {
		best := a.nearBest[it.key]
		r.NearMisses = append(r.NearMisses, NearMiss{HostCount: HostCount{Host: it.key, Count: it.count, Approx: it.err > 0,
			Categories: it.extra.String()}, Best: best.note, URL: best.url})
	}
	for _, d := range a.days {
		r.Days = append(r.Days, *d)
	}
	sort.Slice(r.Days, func(i, j int) bool { return r.Days[i].Day < r.Days[j].Day })
	for h, c := range r.Hours {
		if c.Allowed+c.Blocked > r.Hours[r.BusiestHour].Allowed+r.Hours[r.BusiestHour].Blocked {
			r.BusiestHour = h
		}
	}
	return &r
}

// sortedUsers returns the rows, named users first by name, then devices by
// address, and how many are named users.
func (a *Aggregator) sortedUsers() (users []*UserSummary, named int) {
	for _, u := range a.users {
		u.finish()
		users = append(users, u)
		if u.User != "" {
			named++
		}
	}
	sort.Slice(users, func(i, j int) bool {
		ui, uj := users[i], users[j]
		if (ui.User == "") != (uj.User == "") {
			return ui.User != ""
		}
		if ui.User != uj.User {
			return ui.User < uj.User
		}
		return ui.IP < uj.IP
	})
	return users, named
}

// sortedIncidents returns the incidents by person (named first), device,
// time and site.
func (a *Aggregator) sortedIncidents() []*Incident {
	var out []*Incident
	for _, in := range a.incIdx {
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool {
		x, y := out[i], out[j]
		if x.User != y.User {
			if (x.User == "") != (y.User == "") {
				return x.User != ""
			}
			return x.User < y.User
		}
		if x.IP != y.IP {
			return x.IP < y.IP
		}
		if !x.First.Equal(y.First) {
			return x.First.Before(y.First)
		}
		return x.Host < y.Host
	})
	return out
}

// rankedSearches returns the searches worth a look first: blocked ones,
// those by people with incidents, out-of-hours ones; then the most
// repeated.
func (a *Aggregator) rankedSearches(users []*UserSummary) []*Search {
	var out []*Search
	for _, s := range a.srchIdx {
		out = append(out, s)
	}
	incUser := map[string]bool{}
	for _, u := range users {
		if u.Incidents > 0 {
			incUser[u.Name()] = true
		}
	}
	rank := func(s *Search) int {
		n := 0
		if s.Blocked {
			n += 4
		}
		if incUser[s.Who] {
			n += 2
		}
		if s.OutOfHours {
			n++
		}
		return n
	}
	sort.Slice(out, func(i, j int) bool {
		x, y := out[i], out[j]
		if rx, ry := rank(x), rank(y); rx != ry {
			return rx > ry
		}
		if x.Count != y.Count {
			return x.Count > y.Count
		}
		if x.Who != y.Who {
			return x.Who < y.Who
		}
		return x.Term < y.Term
	})
	return out
}

func hostCounts(items []tkItem) []HostCount {
	out := make([]HostCount, len(items))
	for i, it := range items {
		out[i] = HostCount{Host: it.key, Count: it.count, Approx: it.err > 0, Categories: it.extra.String()}
	}
	return out
}

// Report is a summary of one or more days of the access log.
type Report struct {
	Title             string
	From, To          time.Time // local days covered
	Generated         time.Time
	MissingDays       []string
	LogDir            string    // where the logs were looked for
	DamagedFiles      []string  // access-DATE.jsonl.damaged-TIME files also read
	First, Last       time.Time // first and last line seen (local)
	Lines             int64     // every line read (Proxy + DNS), the three below included
	SignInPrompts     int64     // the proxy's 407 asking for a password: not blocks
	OnPurpose         int64     // DNS answers given on purpose (use-application-dns.net): not blocks
	Tunnels           int64     // intercepted tunnels (CONNECT lines): their requests count one by one
	Statutory         int64     // blocked by a statutory list (IWF, CTIRU): counted, never named
	Requests          int64     // visits to sites: Lines without the three above
	Blocked           int64
	DaysRead          int // days of the period that had a log file
	Proxy, DNS        int64
	OutOfHours        int64
	Devices           int  // distinct client addresses
	DevicesCapped     bool // more than maxAllDevices: Devices is a lower bound
	DistinctUsers     int  // named users (not counting unknown-user devices)
	Hours             [24]HourCount
	BusiestHour       int
	Days              []DayCount
	CatBlocked        [numCats]int64 // blocked lines by category (a line counts in each of its categories)
	Users             []*UserSummary
	Incidents         []*Incident
	Searches          []*Search
	TopBlocked        []HostCount
	TopAllowed        []HostCount
	OverBlocking      []HostCount
	NearMisses        []NearMiss // allowed pages the classifier was unsure about, by host
	NearMissPages     int64      // how many such pages in all
	MemoryBlocks      int64      // blocks decided from the classifier's memory of a host (never incidents)
	Malformed         int64
	MalformedAt       []string // up to five FILE:LINE
	SchoolHours       string   // what "out of hours" means, for people
	SeriousCategories []string // the incident categories, sorted
	IncidentAttempts  int64
	IncidentsDropped  int64
	SearchesDropped   int64
}

// HourCount is one local hour of the day (summed over the days covered).
type HourCount struct{ Allowed, Blocked int64 }

// DayCount is one local day's totals.
type DayCount struct {
	Day               string
	Requests, Blocked int64
}

// HostCount is a host with its count; Approx when the bounded counter may
// over-count it (only after more distinct hosts than it has slots).
type HostCount struct {
	Host       string
	Count      int64
	Approx     bool
	Categories string
}

// NearMiss is a host whose pages the content classifier was unsure about:
// at or above the profile's threshold, below clear evidence, so allowed
// (docs/classifier.md). Count is how many such pages were asked for.
type NearMiss struct {
	HostCount
	Best string // the highest score seen, "gambling=0.68"
	URL  string // the page it was seen on, when the log has full URLs
}

// UserSummary is one user's (or, for an unknown user, one device's) day.
type UserSummary struct {
	User        string // "" for an unknown user: IP names the device
	IP          string
	Profile     string // every profile the user was seen under, sorted, space-separated
	Requests    int64
	Blocked     int64
	Incidents   int64 // blocked attempts on serious categories
	OutOfHours  int64
	First       time.Time
	Last        time.Time
	Devices     []string // sorted
	MoreDevices bool

	TopBlocked []CatCount // most blocked categories, most first
	TopCats    []CatCount // most requested categories, most first

	devices     map[string]struct{}
	moreDevices bool
	profiles    []string
	catReq      [numCats]int64
	catBlocked  [numCats]int64
}

// CatCount is a category with a count.
type CatCount struct {
	Category string
	Count    int64
}

// Name is how the report names the user: the user name, or
// "(unknown) ADDRESS" for traffic not tied to a user.
func (u *UserSummary) Name() string {
	if u.User != "" {
		return u.User
	}
	return "(unknown) " + u.IP
}

// maxProfiles bounds the profiles kept per user (a school has a handful).
const maxProfiles = 8

// sawProfile notes a profile the user was seen under.
func (u *UserSummary) sawProfile(p []byte) {
	if len(p) == 0 {
		return
	}
	for _, q := range u.profiles {
		if q == string(p) {
			return
		}
	}
	if len(u.profiles) < maxProfiles {
		u.profiles = append(u.profiles, string(p))
	}
}

func (u *UserSummary) finish() {
	sort.Strings(u.profiles)
	u.Profile = strings.Join(u.profiles, " ")
	for d := range u.devices {
		u.Devices = append(u.Devices, d)
	}
	sort.Strings(u.Devices)
	u.MoreDevices = u.moreDevices
	u.TopBlocked = topCats(&u.catBlocked, 3)
	u.TopCats = topCats(&u.catReq, 3)
}

func topCats(c *[numCats]int64, n int) []CatCount {
	var out []CatCount
	for i, v := range c {
		if v > 0 {
			out = append(out, CatCount{categories.Category(i).String(), v})
		}
	}
	return highest(out, n, func(c CatCount) (int64, string) { return c.Count, c.Category })
}

// Incident is a group of blocked attempts on serious categories by one
// user from one device on one host on one day.
type Incident struct {
	Day        string
	User       string
	IP         string
	Host       string
	URL        string // the first full URL seen, if any
	Categories categories.Set
	Rule       string
	First      time.Time
	Last       time.Time
	Count      int64
	DNS        int64 // of Count, how many were DNS queries
	OutOfHours int64 // of Count, how many were outside school hours
	Repeated   bool  // at least 3 attempts within 10 minutes

	recent  [repeatCount - 1]time.Time
	nrecent int
}

// Search is a search term seen in a search engine URL.
type Search struct {
	Who        string
	Term       string
	Engine     string
	First      time.Time
	Count      int64
	Blocked    bool // at least one of the searches was blocked
	OutOfHours bool // at least one was made outside school hours
}
