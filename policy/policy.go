package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/bits"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/categories/classify"
	"github.com/schoolgate/schoolgate/config"
)

// Verdict is allow or block.
type Verdict uint8

const (
	Allow Verdict = iota
	Block
)

func (v Verdict) String() string {
	if v == Block {
		return "block"
	}
	return "allow"
}

// System rule names, used where no profile rule decided.
const (
	RuleNotAClient       = "not_a_client"
	RuleDenyDestinations = "deny_destinations"
)

// Args is what a decision is made on. Add fields rather than parameters.
type Args struct {
	User string     // authenticated user (or "" )
	IP   netip.Addr // client address (zero when unknown, as in `check` without -ip)
	Host string     // normalised host (categories.NormalizeHost)
	Path string     // URL path and query for a full-URL decision, "" for host-only
	Time time.Time  // when; converted to the config's timezone
	// Seen holds the pseudo-categories the caller observed of the
	// connection (ip-literal, ech: see Hidden); they join the host's
	// categories.
	Seen categories.Set
	// Profile is the profile the user's identity source named (a
	// directory group's; identity.Entry.Profile), "" when none. It applies
	// when User is not in the users file, before the address's network.
	Profile string
}

// Decision is the outcome of Decide.
type Decision struct {
	Profile    string
	Categories categories.Set // the host's categories; empty = unclassified
	Verdict    Verdict
	Rule       string // "PROFILE#N", "PROFILE#default" or a system rule
	Reason     string // for a person: "category gambling is blocked for staff"
	// Classified is the content classifier's note when Categories came
	// from it rather than from a list ("gambling=0.83"); see remembered.go.
	Classified string
	// SafeSearch is the engine lock to apply to an allowed request when
	// the profile has safe_search and the host is a search engine's or
	// YouTube's (safesearch.go); nil otherwise.
	SafeSearch *SafeSearch
	// Path is the reading of the request's path the decision was made on
	// when it is not the path as sent (categories.OriginPath: an origin
	// that decodes %2F reads /%2Fiplayer as /iplayer); "" otherwise.
	Path string
}

// ListStat is what loading one entry of `lists:` took and skipped, for the
// program log.
type ListStat struct {
	Source   string // "inline", or the file or UT1 folder loaded
	Category string // "" for a UT1 tree (its folders name the categories)
	Line     int    // line of the entry in the config file
	// Pending is a downloaded list with no copy yet: nothing was loaded.
	Pending bool
	categories.Stats
}

// Snapshot is one compiled, immutable configuration: config, category
// database, users, compiled profiles and schedules. Gen is unique per
// snapshot so that caches can key on it.
type Snapshot struct {
	Config *config.Config
	DB     *categories.DB
	Gen    uint64
	// ListStats has one element per entry of cfg.Lists (Build only).
	ListStats []ListStat
	// Classifier scores pages with the embedded phrase lists and the
	// config's content.phrase_files (Build only; see remembered.go).
	Classifier *classify.Classifier
	// hostNames reads the words of host names no list knows (Build only,
	// with content.host_names): a name that reads confidently as a category
	// gets it, so the proxy, the DNS filter and `check` agree on it.
	hostNames *classify.HostClassifier
	// Warnings are things a technician should hear about that do not stop
	// the snapshot from serving, e.g. a users file that does not exist yet
	// (no user can authenticate, so the proxy fails closed) or a user with
	// an unknown profile (that user cannot sign in).
	Warnings []string

	loc            *time.Location
	profiles       []profile // sorted by name
	profileIdx     map[string]int
	defaultProfile int
	users          map[string]config.User
	networks       []route // most specific prefix first
	clients        []netip.Prefix
	deny           []netip.Prefix
	schedules      []schedule
	statutory      []statutoryList // decided before everything (statutory.go)
}

type route struct {
	prefix  netip.Prefix
	profile int
}

type profile struct {
	name string
	// safe_search, and YouTube's moderate mode instead of strict.
	safeSearch, youtubeModerate bool
	rules                       []rule
	defBlock                    bool
	defRule                     string
	defReason                   string
	schedMask                   uint64 // every schedule its rules name
}

type rule struct {
	name     string // "staff#2"
	block    bool
	matchAll bool // names neither categories nor domains
	cats     categories.Set
	domains  map[string]string // normalised domain → reason
	when     uint64
	whenNot  uint64

	catReason     []string // indexed by Category: the reason when exactly that category matched
	allReason     string
	verb          string // "allowed" / "blocked"
	outsideSuffix string // " outside school-hours" when when_not is set
}

type schedule struct {
	name     string
	days     uint8 // bit per time.Weekday on which a window opens
	from, to int   // minutes after midnight; to <= from: closes the next day
	during   string
}

var generation atomic.Uint64

// Build loads everything the config names (embedded database, lists,
// users file) and compiles it into a snapshot. It does not touch any
// running snapshot, so a failed reload leaves the old one serving.
func Build(cfg *config.Config) (*Snapshot, error) {
	if cfg == nil {
		return nil, errors.New("building policy: no config")
	}
	b := categories.NewBuilder()
	b.AddEmbedded()
	var (
		stats []ListStat
		probs config.Problems
	)
	for _, l := range cfg.Lists {
		st, err := loadList(b, cfg, l)
		if err != nil {
			probs = append(probs, config.Problem{File: configName(cfg), Line: l.Line, Msg: err.Error()})
			continue
		}
		stats = append(stats, st)
	}
	cl, clProbs := buildClassifier(cfg)
	probs = append(probs, clProbs...)
	statutory, stWarnings, stProbs := buildStatutory(cfg)
	probs = append(probs, stProbs...)
	if len(probs) > 0 {
		return nil, probs
	}
	db := b.Build()

	var (
		users    []config.User
		warnings []string
	)
	if cfg.Users.File != "" {
		path := cfg.Users.File // resolved by config, as every path
		var err error
		switch users, err = config.LoadUsers(path); {
		case errors.Is(err, fs.ErrNotExist):
			warnings = append(warnings, fmt.Sprintf("users file %s does not exist: no user can sign in to the proxy", path))
		case err != nil:
			return nil, fmt.Errorf("loading users file %s: %w", path, err)
		}
	}
	s, err := Compile(cfg, db, users)
	if err != nil {
		return nil, err
	}
	s.ListStats = stats
	for _, st := range stats {
		if st.Pending {
			warnings = append(warnings, fmt.Sprintf("list at line %d has not been downloaded yet (%s): it blocks nothing until the first download", st.Line, st.Source))
		}
	}
	s.Classifier = cl
	s.statutory = statutory
	warnings = append(warnings, stWarnings...)
	for _, l := range statutory {
		if l.stat.Skipped > 0 {
			warnings = append(warnings, fmt.Sprintf("statutory list %s: %d of its lines are not entries and were skipped", l.name, l.stat.Skipped))
		}
	}
	if cfg.Content.Enabled && cfg.Content.HostNames {
		s.hostNames = classify.DefaultHost()
	}
	s.Warnings = append(warnings, s.Warnings...)
	return s, nil
}

func loadList(b *categories.Builder, cfg *config.Config, l config.List) (ListStat, error) {
	if l.Downloaded() {
		// A downloaded list serves from its last good copy in state_dir;
		// before the first download there is none, and the gateway starts
		// without it rather than not at all.
		path := l.CopyPath(cfg.StateDir)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return ListStat{Source: path, Category: l.Category, Line: l.Line, Pending: true}, nil
		}
		if l.UT1URL != "" {
			l.UT1 = path
		} else {
			l.File = path
		}
	}
	if l.UT1 != "" {
		dir := l.UT1
		st, err := b.LoadUT1(dir)
		if err != nil {
			return ListStat{}, err // names the tree already
		}
		return ListStat{Source: dir, Line: l.Line, Stats: st}, nil
	}
	c, ok := categories.Parse(l.Category)
	if !ok || c == categories.Unclassified {
		return ListStat{}, fmt.Errorf("list: unknown category %q", l.Category)
	}
	if l.File != "" {
		path := l.File
		st, err := b.LoadFile(path, l.Format, c)
		if err != nil {
			return ListStat{}, err // names the file already
		}
		return ListStat{Source: path, Category: c.String(), Line: l.Line, Stats: st}, nil
	}
	st := ListStat{Source: "inline", Category: c.String(), Line: l.Line}
	add := func(e string) {
		if b.Add(e, c) {
			st.Added++
			return
		}
		st.Skipped++
		if len(st.SkippedExamples) < 5 {
			st.SkippedExamples = append(st.SkippedExamples, e)
		}
	}
	for _, d := range l.Domains {
		add(d)
	}
	for _, u := range l.URLs {
		// A school may paste a URL with its scheme; an entry is host/path.
		u = strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
		add(u)
	}
	return st, nil
}

func configName(cfg *config.Config) string {
	if cfg.Path == "" {
		return "(embedded config)"
	}
	return cfg.Path
}

// Compile builds a snapshot from a config that config validated, an
// already built category database and the users (nil when there is no
// users file). Build uses it; tests and tools that build their own
// database may call it directly. It trusts the config: every problem a
// user can make is reported by config, with its line; what Compile refuses
// is a config that did not come through it.
func Compile(cfg *config.Config, db *categories.DB, users []config.User) (*Snapshot, error) {
	if cfg == nil || cfg.Location == nil || len(cfg.Profiles) == 0 {
		return nil, errors.New("compiling policy: the config was not loaded by config (no timezone or no profiles)")
	}
	if db == nil {
		db = categories.NewBuilder().Build()
	}
	s := &Snapshot{
		Config: cfg,
		DB:     db,
		Gen:    generation.Add(1),
		loc:    cfg.Location,
	}
	schedIdx := s.compileSchedules(cfg.Schedules)
	s.compileProfiles(cfg, schedIdx)
	s.compileNetworks(cfg)
	s.compileUsers(cfg.Users.File, users)
	return s, nil
}

// compileSchedules compiles the schedules in name order, so that bit i of
// a mask is stable for a given config, and returns name → bit.
func (s *Snapshot) compileSchedules(scheds map[string]config.Schedule) map[string]int {
	names := slices.Sorted(maps.Keys(scheds))
	idx := make(map[string]int, len(names))
	for i, name := range names {
		idx[name] = i
		s.schedules = append(s.schedules, compileSchedule(name, scheds[name]))
	}
	return idx
}

func compileSchedule(name string, sc config.Schedule) schedule {
	cs := schedule{name: name, from: int(sc.From), to: int(sc.To), during: " during " + name}
	for _, d := range sc.Days {
		cs.days |= 1 << d
	}
	return cs
}

// ScheduleOpen reports whether sc is open at lt (a local wall-clock time),
// by the rule every decision uses; for readers of the log (the report)
// that ask what a schedule meant at a past moment.
func ScheduleOpen(sc config.Schedule, lt time.Time) bool {
	cs := compileSchedule("", sc)
	h, m, _ := lt.Clock()
	return cs.open(lt.Weekday(), h*60+m)
}

// compileProfiles compiles the profiles in name order.
func (s *Snapshot) compileProfiles(cfg *config.Config, schedIdx map[string]int) {
	names := slices.Sorted(maps.Keys(cfg.Profiles))
	s.profileIdx = make(map[string]int, len(names))
	for i, name := range names {
		s.profileIdx[name] = i
		s.profiles = append(s.profiles, compileProfile(name, cfg.Profiles[name], schedIdx, s.schedules))
	}
	s.defaultProfile = s.profileIdx[cfg.DefaultProfile]
}

// compileNetworks orders the networks most specific first (equal lengths
// keep file order) and unmaps every prefix, so that they match the
// unmapped addresses Decide works with.
func (s *Snapshot) compileNetworks(cfg *config.Config) {
	for _, n := range cfg.Networks {
		s.networks = append(s.networks, route{prefix: unmapPrefix(n.Prefix), profile: s.profileIdx[n.Profile]})
	}
	sort.SliceStable(s.networks, func(i, j int) bool {
		return s.networks[i].prefix.Bits() > s.networks[j].prefix.Bits()
	})
	for _, p := range cfg.Clients {
		s.clients = append(s.clients, unmapPrefix(p))
	}
	for _, p := range cfg.Proxy.DenyDestinations {
		s.deny = append(s.deny, unmapPrefix(p))
	}
}

// compileUsers keeps the users whose profile exists. One user with a
// mistyped profile must not stop the gateway (or a reload) for everyone:
// that user cannot sign in, and a warning says why.
func (s *Snapshot) compileUsers(file string, users []config.User) {
	if file == "" {
		file = "(users)"
	}
	s.users = make(map[string]config.User, len(users))
	for _, u := range users {
		if _, ok := s.profileIdx[u.Profile]; !ok {
			s.Warnings = append(s.Warnings, config.Problem{File: file, Line: u.Line,
				Msg: fmt.Sprintf("user %q has unknown profile %q: the user cannot sign in", u.Name, u.Profile)}.String())
			continue
		}
		s.users[u.Name] = u
	}
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix into its IPv4 form, so that
// it matches the unmapped addresses Decide works with.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	p = p.Masked()
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

func compileProfile(name string, p config.Profile, schedIdx map[string]int, scheds []schedule) profile {
	cp := profile{name: name, defRule: name + "#default", defBlock: p.Default == "block",
		safeSearch: p.SafeSearch, youtubeModerate: p.YouTubeRestrict == "moderate"}
	cp.defReason = "no rule matched; " + name + " allows by default"
	if cp.defBlock {
		cp.defReason = "no rule matched; " + name + " blocks by default"
	}
	for i, r := range p.Rules {
		cp.rules = append(cp.rules, compileRule(name, i, r, schedIdx, scheds))
		cp.schedMask |= cp.rules[i].when | cp.rules[i].whenNot
	}
	return cp
}

// compileRule compiles rule i of profile name, with its reasons written
// once here rather than per decision.
func compileRule(name string, i int, r config.Rule, schedIdx map[string]int, scheds []schedule) rule {
	cr := rule{name: name + "#" + strconv.Itoa(i+1), block: r.Action == "block", verb: "allowed"}
	if cr.block {
		cr.verb = "blocked"
	}
	for _, cn := range r.Categories {
		if c, ok := categories.Parse(cn); ok {
			cr.cats = cr.cats.Add(c)
		}
	}
	for _, d := range r.Domains {
		if h, ok := categories.NormalizeHost(d); ok {
			if cr.domains == nil {
				cr.domains = make(map[string]string, len(r.Domains))
			}
			cr.domains[h] = "domain " + h + " is " + cr.verb + " for " + name
		}
	}
	cr.matchAll = len(r.Categories) == 0 && len(r.Domains) == 0
	for _, sn := range r.When {
		cr.when |= 1 << schedIdx[sn]
	}
	var outside []string
	for _, sn := range r.WhenNot {
		j := schedIdx[sn]
		cr.whenNot |= 1 << j
		outside = append(outside, scheds[j].name)
	}
	if len(outside) > 0 {
		cr.outsideSuffix = " outside " + strings.Join(outside, " and ")
	}
	nCats := len(categories.All())
	cr.catReason = make([]string, nCats)
	for c := categories.Category(0); int(c) < nCats; c++ {
		if cr.cats.Has(c) {
			cr.catReason[c] = "category " + c.String() + " is " + cr.verb + " for " + name
		}
	}
	cr.allReason = "every request is " + cr.verb + " for " + name
	return cr
}

// Decide is the decision function. Pure. The statutory lists come first,
// for everyone; then the system rules; then the profile's.
func (s *Snapshot) Decide(a Args) Decision {
	ip := canonIP(a.IP)
	pi := s.profileIndex(a.User, a.Profile, ip)
	if d, ok := s.statutoryDecision(pi, a.Host, a.Path); ok {
		return d
	}
	if d, ok := s.systemDecision(pi, ip, a.Host); ok {
		return d
	}
	return s.decide(pi, s.openMask(a.Time), a.Host, a.Path, a.Seen)
}

// systemDecision applies the checks that come before any profile rule:
// clients, then deny_destinations.
func (s *Snapshot) systemDecision(pi int, ip netip.Addr, host string) (Decision, bool) {
	if ip.IsValid() && !containsAddr(s.clients, ip) {
		return Decision{
			Profile:    s.profiles[pi].name,
			Categories: s.DB.Lookup(host, ""),
			Verdict:    Block,
			Rule:       RuleNotAClient,
			Reason:     "client " + ip.String() + " is not in clients: it may not use schoolgate",
		}, true
	}
	if dst, ok := hostAddr(host); ok && containsAddr(s.deny, dst) {
		return Decision{
			Profile: s.profiles[pi].name,
			Verdict: Block,
			Rule:    RuleDenyDestinations,
			Reason:  "destination " + dst.String() + " is in proxy.deny_destinations",
		}, true
	}
	return Decision{}, false
}

// hostAddr parses host as an IP literal. A host name never ends in a digit
// in practice (TLDs are alphabetic), so names skip the parse and its error.
func hostAddr(host string) (netip.Addr, bool) {
	if host == "" {
		return netip.Addr{}, false
	}
	last := host[len(host)-1]
	if (last < '0' || last > '9') && strings.IndexByte(host, ':') < 0 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return canonIP(a), true
}

func containsAddr(ps []netip.Prefix, ip netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// decide runs the profile's rules. mask holds (at least) the profile's
// schedules that are open at the request time.
//
// A path is decided on every reading an origin may serve: as sent, and as
// an origin that decodes %2F and its kind reads it (categories.OriginPath).
// The readings differ only under hosts with URL entries; when one of them
// is blocked, the request is, and Decision.Path names that reading.
func (s *Snapshot) decide(pi int, mask uint64, host, path string, seen categories.Set) Decision {
	d := s.decideOn(pi, mask, host, path, seen)
	if path == "" || d.Verdict == Block || !s.DB.HasURLEntries(host) {
		return d
	}
	reading, changed := categories.OriginPath(path)
	if !changed {
		return d
	}
	if rd := s.decideOn(pi, mask, host, reading, seen); rd.Verdict == Block {
		rd.Path = reading
		rd.Reason += " (the path as an origin that decodes %2F reads it: " + reading + ")"
		return rd
	}
	return d
}

// decideOn decides one reading of a request.
func (s *Snapshot) decideOn(pi int, mask uint64, host, path string, seen categories.Set) Decision {
	cats := s.DB.Lookup(host, path)
	if cats.Empty() {
		if c, note, ok := s.hostSignal(pi, host); ok {
			d := s.decideCats(pi, mask, host, c, seen)
			d.Classified = note
			d.Reason += " (the host name reads as " + c.String() + ": " + note + ")"
			return d
		}
	}
	return s.decideCats(pi, mask, host, cats, seen)
}

// hostSignal reads the words of a host no list names: a name that reads as
// a category at or above both the host classifier's own confidence and the
// profile's content threshold is put in it. It never overrides a list.
func (s *Snapshot) hostSignal(pi int, host string) (categories.Set, string, bool) {
	if s.hostNames == nil || host == "" {
		return 0, "", false
	}
	if _, isAddr := hostAddr(host); isAddr {
		return 0, "", false // an address has no words
	}
	r := s.hostNames.Classify(host)
	if r.Category == categories.Unclassified || r.Score < classify.HostThreshold {
		return 0, "", false
	}
	threshold := s.Config.Profiles[s.profiles[pi].name].ContentThreshold
	if threshold <= 0 {
		threshold = classify.DefaultThreshold
	}
	if r.Score < threshold {
		return 0, "", false
	}
	return categories.SetOf(r.Category), "host:" + classify.Note(r.Category, r.Score), true
}

// decideCats runs the profile's rules for a host with the categories cats
// (from the database, or from the content classifier: DecideAs) and the
// pseudo-categories seen of the connection (Args.Seen). A host with no
// categories is unclassified, whatever was seen.
func (s *Snapshot) decideCats(pi int, mask uint64, host string, cats, seen categories.Set) Decision {
	p := &s.profiles[pi]
	req := cats
	if req.Empty() {
		req = categories.SetOf(categories.Unclassified)
	}
	req |= seen
	cats |= seen
	for i := range p.rules {
		r := &p.rules[i]
		if r.when != 0 && mask&r.when == 0 {
			continue
		}
		if mask&r.whenNot != 0 {
			continue
		}
		var reason string
		switch {
		case r.matchAll:
			reason = r.allReason
		default:
			if dr, ok := r.matchDomain(host); ok {
				reason = dr
			} else if hit := r.cats & req; !hit.Empty() {
				if hit.Len() == 1 {
					reason = r.catReason[bits.TrailingZeros32(uint32(hit))]
				} else {
					reason = "categories " + hit.String() + " are " + r.verb + " for " + p.name
				}
			} else {
				continue
			}
		}
		if r.when != 0 {
			reason += s.schedules[bits.TrailingZeros64(mask&r.when)].during
		}
		reason += r.outsideSuffix
		if r.block {
			return Decision{Profile: p.name, Categories: cats, Verdict: Block, Rule: r.name, Reason: reason}
		}
		return Decision{Profile: p.name, Categories: cats, Verdict: Allow, Rule: r.name, Reason: reason,
			SafeSearch: p.lock(host)}
	}
	if p.defBlock {
		return Decision{Profile: p.name, Categories: cats, Verdict: Block, Rule: p.defRule, Reason: p.defReason}
	}
	return Decision{Profile: p.name, Categories: cats, Verdict: Allow, Rule: p.defRule, Reason: p.defReason,
		SafeSearch: p.lock(host)}
}

// lock returns the SafeSearch lock for an allowed request to host, nil
// when the profile has no safe_search or host is no engine's.
func (p *profile) lock(host string) *SafeSearch {
	if !p.safeSearch {
		return nil
	}
	return SafeSearchFor(host, p.youtubeModerate)
}

// matchDomain reports whether host is one of the rule's domains or a
// subdomain of one, with the reason naming that domain.
func (r *rule) matchDomain(host string) (string, bool) {
	if len(r.domains) == 0 {
		return "", false
	}
	for h := host; ; {
		if reason, ok := r.domains[h]; ok {
			return reason, true
		}
		i := strings.IndexByte(h, '.')
		if i < 0 {
			return "", false
		}
		h = h[i+1:]
	}
}

// openMask returns the set of schedules open at t (bit i: schedule i).
func (s *Snapshot) openMask(t time.Time) uint64 {
	if len(s.schedules) == 0 {
		return 0
	}
	lt := t.In(s.loc)
	wd := lt.Weekday()
	h, m, _ := lt.Clock()
	minute := h*60 + m
	var mask uint64
	for i := range s.schedules {
		if s.schedules[i].open(wd, minute) {
			mask |= 1 << i
		}
	}
	return mask
}

// open reports whether the window is open on weekday wd at minute (local
// wall clock). A window belongs to the day it opens: an overnight window
// is open after midnight when the day before is listed.
func (sc *schedule) open(wd time.Weekday, minute int) bool {
	today := sc.days&(1<<wd) != 0
	if sc.from < sc.to {
		return today && minute >= sc.from && minute < sc.to
	}
	yesterday := sc.days&(1<<((wd+6)%7)) != 0
	return (today && minute >= sc.from) || (yesterday && minute < sc.to)
}

// OpenSchedules returns the names of the schedules open at t, sorted.
func (s *Snapshot) OpenSchedules(t time.Time) []string {
	mask := s.openMask(t)
	var out []string
	for i := range s.schedules {
		if mask&(1<<i) != 0 {
			out = append(out, s.schedules[i].name)
		}
	}
	return out
}

// profileIndex picks the profile: the user's if the user is known, else
// the most specific network holding ip, else default_profile.
func (s *Snapshot) profileIndex(user, named string, ip netip.Addr) int {
	if user != "" {
		if u, ok := s.users[user]; ok {
			return s.profileIdx[u.Profile]
		}
		if i, ok := s.profileIdx[named]; ok && named != "" {
			return i
		}
	}
	if ip.IsValid() {
		for i := range s.networks {
			if s.networks[i].prefix.Contains(ip) {
				return s.networks[i].profile
			}
		}
	}
	return s.defaultProfile
}

// Profile returns the profile for a user (if known) else the source
// address's network, else default_profile.
func (s *Snapshot) Profile(user string, ip netip.Addr) string {
	return s.profiles[s.profileIndex(user, "", canonIP(ip))].name
}

// ProfileOf returns the profile Decide gives a: the users file's for
// a.User, else a.Profile (named by the identity source) when it exists,
// else the address's network's, else default_profile.
func (s *Snapshot) ProfileOf(a Args) string {
	return s.profiles[s.profileIndex(a.User, a.Profile, canonIP(a.IP))].name
}

// HasProfile reports whether the config defines the named profile.
func (s *Snapshot) HasProfile(name string) bool {
	_, ok := s.profileIdx[name]
	return ok
}

// User returns a user of the users file.
func (s *Snapshot) User(name string) (config.User, bool) {
	u, ok := s.users[name]
	return u, ok
}

// Location returns the timezone schedules are evaluated in.
func (s *Snapshot) Location() *time.Location { return s.loc }

// IsClient reports whether ip may use the proxy and DNS (`clients`).
func (s *Snapshot) IsClient(ip netip.Addr) bool { return containsAddr(s.clients, canonIP(ip)) }

// DeniedDestination reports whether the proxy must never connect to ip
// (`proxy.deny_destinations`).
func (s *Snapshot) DeniedDestination(ip netip.Addr) bool {
	return containsAddr(s.deny, canonIP(ip))
}

// canonIP is the form prefixes are matched against: IPv4-mapped addresses
// as IPv4, and no IPv6 zone (netip.Prefix.Contains never matches a zoned
// address, and a link-local client's address carries its interface).
func canonIP(ip netip.Addr) netip.Addr {
	if ip.Zone() != "" {
		ip = ip.WithZone("")
	}
	return ip.Unmap()
}
