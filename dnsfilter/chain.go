package dnsfilter

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/logging"
	"github.com/schoolgate/schoolgate/policy"
)

// System rule names of the DNS filter (the `rule` field of its log lines).
const (
	RuleRateLimited = "rate_limited"
	RuleMalformed   = "malformed"
	RuleCanary      = "doh_canary"
	// RuleNotServed: CHAOS queries (version.bind and the like) and zone
	// transfers, refused here rather than passed on.
	RuleNotServed = "not_served"
	// RuleForwarded: a name in one of the school's own zones
	// (dns.forward), answered by the school's servers, never filtered.
	RuleForwarded = "forward"
)

// canaryName is Mozilla's canary domain: an NXDOMAIN for it tells Firefox
// that the network filters DNS, so it turns its built-in DoH off.
const canaryName = "use-application-dns.net"

// request is one query's state, filled in by the stages and logged once
// at the end.
type request struct {
	w     dns.ResponseWriter
	q     *dns.Msg   // nil when the UDP loop read the query itself (see udp.go)
	start time.Time  // from Options.Now: decisions, cache ages, the log's ts
	began time.Time  // wall clock, for the duration
	ip    netip.Addr // the packet's source
	tcp   bool
	// who is the client the query is for: ip, or the address a trusted
	// forwarder's ECS option names (see acl); policy and the log use it.
	// logIP is the address the log line names (who, or the forwarder's
	// when ECS names only a network).
	who, logIP netip.Addr
	trusted    bool         // from one of dns.trusted_forwarders
	ecs        netip.Prefix // the query's EDNS Client Subnet option, if any
	ecsUsed    bool         // ecs named the client: echoed in the answer
	fwd        *upstreams   // the servers of the dns.forward zone of the name, if any
	snap       *policy.Snapshot
	set        *settings

	// From the query's header (filled by parse, or by parseWire).
	id     uint16
	opcode int
	rd     bool
	qd     int // number of questions

	// inline: run by a UDP read loop, which must not wait; a stage that
	// would (an upstream query) sets deferred and the rest of the chain
	// runs on a goroutine of its own (see serve).
	inline, deferred bool

	hasQ     bool
	question dns.Question
	host     string // normalised question name, for policy and the log
	edns     bool
	do, cd   bool
	udpSize  int
	ednsVer  uint8
	badOPT   bool // two OPT records, or one not at the root or outside the additional section
	client   bool
	// mixedCase: the question name is not all lower case, so cached
	// answers must echo its spelling.
	mixedCase bool

	user, profile string
	named         string // the profile the identity table named for user, if any
	cats          categories.Set
	rule          string
	classified    string // the content classifier's note (policy.Decision.Classified)
	block         bool
	safeSearch    *policy.SafeSearch // the profile's lock for this engine host (policy.Decision.SafeSearch)
	ssApplied     bool               // answered with the lock's enforcing name

	// hit is the answer cache's entry for the question, looked up by the
	// policy stage (hitKey its key, looked true once it was): its verdict
	// memo saves the verdict cache's lookup, and resolve uses it rather
	// than looking again.
	hit    *entry
	hitKey cacheKey
	looked bool

	answered bool
	silent   bool // dropped on purpose: nothing sent, nothing logged
	finished bool // counted and logged
	rcode    int
	bytes    int
}

var requestPool = sync.Pool{New: func() any { return new(request) }}

type action bool

const (
	next action = false
	done action = true
)

type stage struct {
	name string
	run  func(*Server, *request) action
}

// chain is the DNS handler, stage by stage. The order matters; each line
// says why a stage sits where it does.
var chain = [...]stage{
	// parse first: reads the question and EDNS, answers nothing, so that
	// every later stage (and the log line) can use them.
	{"parse", (*Server).parse},
	// acl before anything that answers: a stranger gets at most a REFUSED
	// no bigger than its own query, so we are never an amplifier.
	{"acl", (*Server).acl},
	// rate limit next: cheap, and it shields everything below (policy,
	// log, upstreams) from one flooding device.
	{"ratelimit", (*Server).rateLimit},
	// sanity: the stages below need exactly one question of a standard query.
	{"sanity", (*Server).sanity},
	// identity: the profile and user are needed by every line from here on.
	{"identity", (*Server).identity},
	// portal before forward and policy: portal.hostname is answered here
	// for every client, never sent on and never blocked (portal.go).
	{"portal", (*Server).portal},
	// canary before policy: the answer is NXDOMAIN whatever the profile says.
	{"canary", (*Server).canary},
	// forward before policy: the school's own zones (dns.forward) are
	// never filtered, and are answered by the school's servers.
	{"forward", (*Server).forward},
	// policy: one decision on the name, the same as the proxy would make.
	{"policy", (*Server).decide},
	// block right after the decision: every query type of a blocked name
	// gets the blocked answer, whatever comes below.
	{"block", (*Server).blocked},
	// safe search after block (a blocked engine stays blocked) and before
	// the cache (its answer depends on the profile, the cache's does not).
	{"safesearch", (*Server).safeSearch},
	// ANY after the policy so that a blocked name is blocked for ANY too.
	{"any", (*Server).anyQuery},
	// resolve last: cache, else upstream; the response rewrite (ECH strip)
	// is applied to upstream answers before they are cached.
	{"resolve", (*Server).resolve},
}

// ServeDNS implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	r := requestPool.Get().(*request)
	*r = request{w: w, q: q, start: s.now(), began: time.Now()}
	r.set = s.set.Load()
	r.snap = s.engine.Snapshot()
	r.ip, r.tcp = remoteIP(w)
	s.serve(r, 0)
}

// serve runs the chain on r from stage from on, then counts and logs the
// query and puts r back in the pool, unless a stage deferred it (see
// request.inline): then the rest runs on a goroutine, from that stage.
func (s *Server) serve(r *request, from int) {
	handedOver := false
	defer func() {
		if p := recover(); p != nil {
			s.logger.Error("dns handler panic", zap.Any("panic", p), zap.Stack("stack"))
			if !r.answered && r.client && !r.silent {
				func() {
					defer func() { _ = recover() }() // never let a second panic take the server down
					s.writeMinimal(r, dns.RcodeServerFailure)
				}()
			}
		}
		if handedOver {
			return
		}
		*r = request{}
		requestPool.Put(r)
	}()
	for i := from; i < len(chain); i++ {
		if chain[i].run(s, r) == done {
			if r.deferred {
				handedOver = true
				s.handOver(r, i)
				return
			}
			break
		}
	}
	s.finish(r)
}

func remoteIP(w dns.ResponseWriter) (netip.Addr, bool) {
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap(), false
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func (s *Server) parse(r *request) action {
	r.id, r.opcode, r.rd, r.qd = r.q.Id, r.q.Opcode, r.q.RecursionDesired, len(r.q.Question)
	if len(r.q.Question) > 0 {
		r.hasQ = true
		r.question = r.q.Question[0]
		r.host = hostOf(r.question.Name)
	}
	if opt := r.q.IsEdns0(); opt != nil {
		r.edns, r.do, r.udpSize, r.ednsVer = true, opt.Do(), int(opt.UDPSize()), opt.Version()
		r.ecs = clientSubnet(opt)
	}
	r.badOPT = misplacedOPT(r.q)
	r.cd = r.q.CheckingDisabled
	return next
}

// misplacedOPT reports an OPT record the query must not have (RFC 6891
// §6.1.1): a second one, one whose owner is not the root, or one outside
// the additional section.
func misplacedOPT(q *dns.Msg) bool {
	n := 0
	for i, sec := range [...][]dns.RR{q.Answer, q.Ns, q.Extra} {
		for _, rr := range sec {
			if h := rr.Header(); h.Rrtype == dns.TypeOPT {
				n++
				if h.Name != "." || i != 2 {
					return true
				}
			}
		}
	}
	return n > 1
}

// hostOf returns the normalised form of a question name. Names that are
// not host names (SRV's _sip._tcp…, odd bytes) are still decided on, in
// lower case without the trailing dot.
func hostOf(name string) string {
	if h, ok := categories.NormalizeHost(name); ok {
		return h
	}
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// clientSubnet returns the EDNS Client Subnet option of a query (RFC
// 7871), or the zero Prefix when it has none, a malformed one, or one
// with source prefix 0 (a client opting out names nobody).
func clientSubnet(opt *dns.OPT) netip.Prefix {
	for _, o := range opt.Option {
		e, ok := o.(*dns.EDNS0_SUBNET)
		if !ok {
			continue
		}
		a, ok := netip.AddrFromSlice(e.Address)
		if !ok {
			return netip.Prefix{}
		}
		switch {
		case e.Family == 1 && a.Unmap().Is4():
			a = a.Unmap()
		case e.Family == 2 && a.Is6() && !a.Is4In6():
		default:
			return netip.Prefix{}
		}
		p, err := a.Prefix(int(e.SourceNetmask))
		if err != nil || e.SourceNetmask == 0 || int(e.SourceNetmask) > a.BitLen() {
			return netip.Prefix{}
		}
		return p
	}
	return netip.Prefix{}
}

func (s *Server) acl(r *request) action {
	r.who, r.logIP = r.ip, r.ip
	if r.snap.IsClient(r.ip) {
		r.client = true
		if len(r.set.trusted) > 0 && containsAddr(r.set.trusted, r.ip) {
			// One of the school's own DNS servers (dns.trusted_forwarders,
			// a client too): its ECS option names the client, an address
			// (its user and profile) or a network (its profile). ECS from
			// anyone else is ignored.
			r.trusted = true
			if r.ecs.IsValid() {
				r.ecsUsed = true
				r.who = r.ecs.Addr()
				if r.ecs.IsSingleIP() {
					r.logIP = r.who
				}
			}
		}
		return next
	}
	r.rule, r.block = policy.RuleNotAClient, true
	// A stranger's flood (or a spoofed one aimed at a victim) gets one
	// REFUSED and one log line a second.
	if !s.limiter.firstThisSecond(r.ip, 1, r.start.UnixNano()) {
		r.silent = true
		return done
	}
	s.writeMinimal(r, dns.RcodeRefused)
	return done
}

func (s *Server) rateLimit(r *request) action {
	// A trusted forwarder speaks for many clients: exempt, except that
	// a client its ECS names by address has a bucket of its own.
	bucket := r.ip
	if r.trusted {
		if !r.ecs.IsSingleIP() {
			return next
		}
		bucket = r.who
	}
	if r.set.qps == 0 || s.limiter.allow(bucket, r.set.qps, r.start.UnixNano()) {
		return next
	}
	s.m.rateLimited.Inc()
	r.rule, r.block = RuleRateLimited, true
	// The first query over the limit in each second is refused and
	// logged; the rest of the second's flood is dropped unlogged.
	if !s.limiter.firstThisSecond(bucket, r.set.qps, r.start.UnixNano()) {
		r.silent = true
		return done
	}
	s.writeMinimal(r, dns.RcodeRefused)
	return done
}

func (s *Server) sanity(r *request) action {
	rule, rcode := RuleMalformed, -1
	switch qt := r.question.Qtype; {
	case r.badOPT:
		rcode = dns.RcodeFormatError
	case r.ednsVer > 0:
		// RFC 6891 §6.1.3: we speak EDNS version 0 only.
		rcode = dns.RcodeBadVers
	case r.opcode != dns.OpcodeQuery:
		rcode = dns.RcodeNotImplemented
	case r.qd != 1:
		rcode = dns.RcodeFormatError
	case r.question.Qclass != dns.ClassINET:
		// CHAOS (version.bind, hostname.bind, id.server) and the rest:
		// nothing for upstreams to learn about us or to be asked by us.
		rule, rcode = RuleNotServed, dns.RcodeRefused
	case qt == dns.TypeAXFR || qt == dns.TypeIXFR:
		// We hold no zone to transfer.
		rule, rcode = RuleNotServed, dns.RcodeRefused
	case qt == dns.TypeMAILA || qt == dns.TypeMAILB:
		rcode = dns.RcodeNotImplemented
	case qt == dns.TypeOPT || qt == dns.TypeTSIG || qt == dns.TypeTKEY || qt >= 128 && qt < 256 && qt != dns.TypeANY || qt == 0:
		// Meta-types are not questions (RFC 6895 §3.1).
		rcode = dns.RcodeFormatError
	default:
		return next
	}
	r.rule = rule
	s.writeMinimal(r, rcode)
	return done
}

func (s *Server) identity(r *request) action {
	s.whoIs(r)
	return next
}

// whoIs names the user signed in at the querying address (the identity
// table: DNS carries no credentials) and the profile that applies to
// them, the same as their web requests get. An address named by ECS is
// only as a network is not looked up.
func (s *Server) whoIs(r *request) {
	if r.who == r.logIP {
		if e, ok := s.ids.Touch(r.who, r.start); ok {
			r.user, r.named = e.User, e.Profile
		}
	}
	r.profile = r.snap.ProfileOf(policy.Args{User: r.user, Profile: r.named, IP: r.who})
}

// forward notes the dns.forward zone the name is in, if any: the
// school's own zones are not decided on (rule forward, allowed) and go
// to the school's servers (see resolve).
func (s *Server) forward(r *request) action {
	if len(r.set.forwards) == 0 {
		return next
	}
	if r.fwd = r.set.forwardFor(r.question.Name); r.fwd != nil {
		r.rule = RuleForwarded
	}
	return next
}

func (s *Server) canary(r *request) action {
	if r.host != canaryName {
		return next
	}
	r.rule, r.block = RuleCanary, true
	m := s.reply(r)
	m.Rcode = dns.RcodeNameError
	m.Ns = []dns.RR{blockSOA(r.question.Name)}
	s.writeMsg(r, m)
	return done
}

func (s *Server) decide(r *request) action {
	if r.fwd != nil {
		return next
	}
	// The answer cache first: an answer cached for the name carries the
	// last verdict on it (entry.verdict).
	r.hitKey = r.cacheKey()
	r.hit, r.looked = r.set.cache.get(r.hitKey, r.start.Unix()), true
	var memo *policy.Memo
	if r.hit != nil {
		memo = &r.hit.verdict
	}
	d := s.engine.DecideMemo(policy.Args{User: r.user, Profile: r.named, IP: r.who, Host: r.host, Time: r.start}, memo)
	if d.Profile != "" {
		r.profile = d.Profile
	}
	r.cats, r.rule = d.Categories, d.Rule
	r.classified = d.Classified
	r.block = d.Verdict == policy.Block
	r.safeSearch = d.SafeSearch
	return next
}

func (s *Server) blocked(r *request) action {
	if !r.block {
		return next
	}
	s.writeBlocked(r)
	return done
}

// writeBlocked sends the blocked answer (dns.blocked_answer) for r.
func (s *Server) writeBlocked(r *request) {
	m := s.reply(r)
	qt := r.question.Qtype
	hdr := dns.RR_Header{Name: r.question.Name, Rrtype: qt, Class: dns.ClassINET, Ttl: blockTTL}
	switch {
	case r.set.null && qt == dns.TypeA:
		m.Answer = []dns.RR{&dns.A{Hdr: hdr, A: net.IPv4zero.To4()}}
	case r.set.null && qt == dns.TypeAAAA:
		m.Answer = []dns.RR{&dns.AAAA{Hdr: hdr, AAAA: net.IPv6zero}}
	case r.set.null:
		// NODATA, with an SOA so that the client caches it (RFC 2308).
		m.Ns = []dns.RR{blockSOA(r.question.Name)}
	default:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{blockSOA(r.question.Name)}
	}
	if r.edns {
		// RFC 8914 Extended DNS Error 15, "Blocked", says why.
		opt := r.opt()
		opt.Option = append(opt.Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeBlocked, ExtraText: "schoolgate: " + r.rule})
		m.Extra = append(m.Extra, opt)
	}
	s.writeMsg(r, m)
}

// blockTTL is how long clients may cache a blocked answer: short, so that
// an unblocked name (or a schedule opening) takes effect within a minute.
const blockTTL = 60

func blockSOA(name string) *dns.SOA {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: blockTTL},
		Ns:      "schoolgate.invalid.",
		Mbox:    "hostmaster.schoolgate.invalid.",
		Serial:  1,
		Refresh: 1800,
		Retry:   900,
		Expire:  604800,
		Minttl:  blockTTL,
	}
}

// safeSearch answers an engine's host name with a CNAME to its enforcing
// name (policy.SafeSearch, the table the proxy dials by too), and that
// name's addresses.
func (s *Server) safeSearch(r *request) action {
	p := r.safeSearch
	if p == nil || r.fwd != nil {
		return next
	}
	if r.inline {
		r.deferred = true // its lookup may go upstream
		return done
	}
	s.m.safeSearch.WithLabelValues(p.Engine).Inc()
	r.ssApplied = true
	target := dns.Fqdn(p.Target)
	m := s.reply(r)
	m.Answer = []dns.RR{&dns.CNAME{
		Hdr:    dns.RR_Header{Name: r.question.Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: safeSearchTTL},
		Target: target,
	}}
	if qt := r.question.Qtype; qt != dns.TypeCNAME && qt != dns.TypeANY {
		// The answer carries the target's addresses too, resolved (and
		// cached) like any other name, so the client needs no second query.
		key := cacheKey{name: target, qtype: qt, qclass: dns.ClassINET}
		tm, err := s.lookup(r, key)
		if err != nil {
			s.upstreamFailed(r, err)
			return done
		}
		m.Rcode = tm.Rcode
		m.Answer = append(m.Answer, tm.Answer...)
		if len(tm.Answer) == 0 {
			m.Ns = tm.Ns
		}
	}
	s.writeMsg(r, m)
	return done
}

// safeSearchTTL is the TTL of the synthesised CNAME.
const safeSearchTTL = 300

func (s *Server) anyQuery(r *request) action {
	if r.question.Qtype != dns.TypeANY {
		return next
	}
	if r.inline {
		r.deferred = true // its lookup may go upstream
		return done
	}
	// RFC 8482: a minimal answer instead of everything we know, but a
	// true one: the name's A lookup (cached like any other) says whether
	// it exists and whether it is an alias.
	key := cacheKey{name: strings.ToLower(r.question.Name), qtype: dns.TypeA, qclass: dns.ClassINET, do: r.do, cd: r.cd}
	tm, err := s.lookup(r, key)
	if err != nil {
		s.upstreamFailed(r, err)
		return done
	}
	m := s.reply(r)
	switch {
	case tm.Rcode == dns.RcodeNameError:
		m.Rcode, m.Ns = tm.Rcode, tm.Ns
	case tm.Rcode != dns.RcodeSuccess:
		s.writeMinimal(r, dns.RcodeServerFailure)
		return done
	case len(tm.Answer) > 0 && tm.Answer[0].Header().Rrtype == dns.TypeCNAME && strings.EqualFold(tm.Answer[0].Header().Name, key.name):
		c := tm.Answer[0].(*dns.CNAME)
		// An alias of a blocked name is blocked (CNAME cloaking).
		if r.fwd == nil {
			if d := s.engine.Decide(policy.Args{User: r.user, Profile: r.named, IP: r.who, Host: hostOf(c.Target), Time: r.start}); d.Verdict == policy.Block {
				r.block, r.rule, r.cats, r.classified = true, d.Rule, d.Categories, d.Classified
				s.writeBlocked(r)
				return done
			}
		}
		c.Hdr.Name = r.question.Name
		m.Answer = []dns.RR{c}
	default:
		m.Answer = []dns.RR{&dns.HINFO{
			Hdr: dns.RR_Header{Name: r.question.Name, Rrtype: dns.TypeHINFO, Class: dns.ClassINET, Ttl: 3600},
			Cpu: "RFC8482",
		}}
	}
	s.writeMsg(r, m)
	return done
}

// cacheKey is the answer cache's key for r's question.
func (r *request) cacheKey() cacheKey {
	return cacheKey{
		name:  strings.ToLower(r.question.Name),
		qtype: r.question.Qtype, qclass: r.question.Qclass,
		do: r.do, cd: r.cd,
	}
}

func (s *Server) resolve(r *request) action {
	var key cacheKey
	var e *entry
	now := r.start.Unix()
	if r.looked {
		// The policy stage looked (the same time, so the same entry);
		// a miss looks again on the worker, which an earlier one may
		// have filled meanwhile.
		key, e = r.hitKey, r.hit
		r.hit, r.looked = nil, false
	} else {
		key = r.cacheKey()
		e = r.set.cache.get(key, now)
	}
	r.mixedCase = key.name != r.question.Name
	if e != nil {
		s.m.cacheHits.Inc()
		s.answerEntry(r, e, now)
		return done
	}
	if r.inline {
		r.deferred = true // a miss goes upstream
		return done
	}
	s.m.cacheMisses.Inc()
	e, m, err := s.fetch(r.set, key, now)
	switch {
	case err != nil:
		s.upstreamFailed(r, err)
	case e != nil:
		s.answerEntry(r, e, now)
	default:
		// Not cacheable (SERVFAIL or REFUSED from every upstream): the
		// client hears SERVFAIL.
		s.logger.Debug("upstreams could not answer", zap.String("name", key.name), zap.Int("rcode", m.Rcode))
		s.writeMinimal(r, dns.RcodeServerFailure)
	}
	return done
}

// answerEntry sends a resolved answer, unless one of its CNAME targets is
// blocked: an allowed alias must not lead to a blocked name (CNAME
// cloaking), so the policy is asked about each target too, and the block
// is the target's (its rule and categories go in the log line).
func (s *Server) answerEntry(r *request, e *entry, now int64) {
	for _, target := range e.cnames {
		if r.fwd != nil {
			break // the school's own zone: not filtered
		}
		d := s.engine.Decide(policy.Args{User: r.user, Profile: r.named, IP: r.who, Host: target, Time: r.start})
		if d.Verdict == policy.Block {
			r.block, r.rule, r.cats, r.classified = true, d.Rule, d.Categories, d.Classified
			s.writeBlocked(r)
			return
		}
	}
	if s.o.Answers != nil {
		s.remember(r, e, now)
	}
	s.writeEntry(r, e, now)
}

func (s *Server) upstreamFailed(r *request, err error) {
	s.logger.Debug("upstream failed", zap.String("name", r.question.Name), zap.Error(err))
	s.writeMinimal(r, dns.RcodeServerFailure)
}

// fetch asks the upstreams for key, rewrites the answer (ECH) and caches
// it. It returns the cache entry, or when the answer cannot be cached,
// the message.
func (s *Server) fetch(set *settings, key cacheKey, now int64) (*entry, *dns.Msg, error) {
	// Concurrent misses for the same key share one upstream query.
	c, leader := s.flight.join(key)
	if !leader {
		<-c.done
		return c.e, c.m, c.err
	}
	defer s.flight.leave(key, c)
	q := &dns.Msg{
		MsgHdr:   dns.MsgHdr{Id: dns.Id(), RecursionDesired: true, CheckingDisabled: key.cd},
		Question: []dns.Question{{Name: key.name, Qtype: key.qtype, Qclass: key.qclass}},
	}
	q.SetEdns0(upstreamUDPSize, key.do)
	// The school's own zones (dns.forward) go to its servers and are
	// kept only as long as they say: no floor, so a changed record of
	// the AD domain shows at once.
	ups, floor := set.upstreams, uint32(minTTL)
	if f := set.forwardFor(key.name); f != nil {
		ups, floor = f, 0
	}
	m, err := ups.exchange(q)
	if err != nil {
		c.err = err
		return nil, nil, err
	}
	// Response rewrite: only what answers the question (scrub), and
	// the SNI kept readable (stripECH).
	scrub(m)
	stripECH(m)
	e, ok := newEntry(m, now, floor)
	if !ok {
		c.m = m
		return nil, m, nil
	}
	if e.expires > now {
		if s.o.Answers != nil {
			e.answered(key, m)
		}
		set.cache.put(key, e)
	}
	c.e = e
	return e, nil, nil
}

// remember tells Options.Answers the addresses of an A or AAAA answer
// given to the client r is for, valid as long as its cache entry: the
// client was told them until then. An address a forwarder's ECS names
// only as a network is no client's.
func (s *Server) remember(r *request, e *entry, now int64) {
	if len(e.addrs) == 0 || r.who != r.logIP {
		return
	}
	s.o.Answers.Saw(r.who, e.name, e.addrs, time.Unix(now, 0), time.Unix(e.expires, 0))
}

// answered notes in e (an upstream's answer m to key) the name and the
// addresses that Options.Answers is told of each client given e.
func (e *entry) answered(key cacheKey, m *dns.Msg) {
	if key.qtype != dns.TypeA && key.qtype != dns.TypeAAAA || m.Rcode != dns.RcodeSuccess {
		return
	}
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			if a, ok := netip.AddrFromSlice(rr.A.To4()); ok {
				e.addrs = append(e.addrs, a)
			}
		case *dns.AAAA:
			if a, ok := netip.AddrFromSlice(rr.AAAA.To16()); ok {
				e.addrs = append(e.addrs, a.Unmap())
			}
		}
	}
	e.name = strings.TrimSuffix(key.name, ".")
}

// flights deduplicates concurrent upstream queries for one key: a class
// opening the same new site costs one upstream query, not thirty.
type flights struct {
	mu sync.Mutex
	m  map[cacheKey]*flight
}

// flight is one upstream query in progress; its results are read-only
// once done is closed.
type flight struct {
	done chan struct{}
	e    *entry
	m    *dns.Msg
	err  error
}

func (f *flights) join(k cacheKey) (*flight, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.m[k]; ok {
		return c, false
	}
	if f.m == nil {
		f.m = make(map[cacheKey]*flight)
	}
	c := &flight{done: make(chan struct{})}
	f.m[k] = c
	return c, true
}

func (f *flights) leave(k cacheKey, c *flight) {
	f.mu.Lock()
	delete(f.m, k)
	f.mu.Unlock()
	close(c.done)
}

// lookup resolves key through the cache and upstreams and returns the
// answer as a message of its own (TTLs decremented), for answers built
// from others (safe search).
func (s *Server) lookup(r *request, key cacheKey) (*dns.Msg, error) {
	now := r.start.Unix()
	e := r.set.cache.get(key, now)
	if e == nil {
		var m *dns.Msg
		var err error
		e, m, err = s.fetch(r.set, key, now)
		if err != nil {
			return nil, err
		}
		if e == nil {
			return m, nil
		}
	}
	m := new(dns.Msg)
	if err := m.Unpack(e.wire); err != nil {
		return nil, err
	}
	elapsed := uint32(now - e.stored)
	for _, sec := range [...][]dns.RR{m.Answer, m.Ns} {
		for _, rr := range sec {
			h := rr.Header()
			h.Ttl -= min(h.Ttl, elapsed)
		}
	}
	return m, nil
}

// finish counts and logs the query, once.
func (s *Server) finish(r *request) {
	if r.silent || r.finished {
		return
	}
	r.finished = true
	if !r.logIP.IsValid() {
		r.who, r.logIP = r.ip, r.ip
	}
	if r.client && r.profile == "" {
		// Refused before the identity stage (rate limit, sanity).
		if !r.who.IsValid() {
			r.who, r.logIP = r.ip, r.ip
		}
		s.whoIs(r)
	}
	s.m.countQuery(r.block, r.question.Qtype, r.rcode)
	d := time.Since(r.began)
	s.m.duration.Observe(d.Seconds())
	if s.log == nil {
		return
	}
	verdict := "allow"
	if r.block {
		verdict = "block"
	}
	method := ""
	if r.hasQ {
		method = qtypeName(r.question.Qtype)
	}
	s.log.Log(&logging.Entry{
		Time: r.start, Src: "dns", User: r.user, IP: s.ipStr.get(r.logIP), Profile: r.profile,
		Method: method, Host: r.host, Categories: r.cats, Verdict: verdict, Rule: r.rule,
		Rcode: rcodeName(r.rcode), Bytes: int64(r.bytes), Duration: d,
		Classified: r.classified, SafeSearch: r.ssApplied,
	})
}

func qtypeName(t uint16) string {
	if n, ok := dns.TypeToString[t]; ok {
		return n
	}
	return dns.Type(t).String()
}

func rcodeName(rc int) string {
	if n, ok := dns.RcodeToString[rc]; ok {
		return n
	}
	return "RCODE" + strconv.Itoa(rc)
}
