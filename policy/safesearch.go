package policy

import (
	"net/url"
	"slices"
	"strings"
)

// SafeSearch is how one engine's SafeSearch (or YouTube's restricted mode)
// is locked on, for every path a request can take: the DNS filter answers
// the engine's host names with a CNAME to Target, the proxy dials Target
// instead of the host (so a CONNECT tunnel ends at the enforcing servers),
// and a request the proxy can read also carries the engine's own lock,
// Param=Value in the query and Header: HeaderValue, replacing any the
// client sent. The values are Google's, Microsoft's, DuckDuckGo's and
// YouTube's documented ones for networks that enforce SafeSearch.
type SafeSearch struct {
	Engine      string // google, bing, duckduckgo, youtube (a metric label)
	Target      string // the enforcing host name, no trailing dot
	Param       string // query parameter locked on ("" for none)
	Value       string
	Header      string // request header locked on ("" for none)
	HeaderValue string
}

// LockQuery returns rawQuery with every Param the client sent removed
// (whatever its case and escaping) and Param=Value appended; the other
// parameters keep their order and bytes. Without a Param it returns
// rawQuery.
func (ss *SafeSearch) LockQuery(rawQuery string) string {
	if ss.Param == "" {
		return rawQuery
	}
	var b strings.Builder
	b.Grow(len(rawQuery) + len(ss.Param) + len(ss.Value) + 2)
	for part := range strings.SplitSeq(rawQuery, "&") {
		if part == "" {
			continue
		}
		key, _, _ := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(key); err == nil && strings.EqualFold(strings.TrimSpace(k), ss.Param) ||
			strings.EqualFold(key, ss.Param) {
			continue
		}
		b.WriteString(part)
		b.WriteByte('&')
	}
	b.WriteString(ss.Param)
	b.WriteByte('=')
	b.WriteString(ss.Value)
	return b.String()
}

// The engines. For YouTube the profile picks strict (the default: the
// strictest documented setting for pupils) or moderate (youtube_restrict).
var (
	ssGoogle     = SafeSearch{Engine: "google", Target: "forcesafesearch.google.com", Param: "safe", Value: "active"}
	ssBing       = SafeSearch{Engine: "bing", Target: "strict.bing.com", Param: "adlt", Value: "strict"}
	ssDuckDuckGo = SafeSearch{Engine: "duckduckgo", Target: "safe.duckduckgo.com", Param: "kp", Value: "1"}
	ssYouTube    = SafeSearch{Engine: "youtube", Target: "restrict.youtube.com",
		Header: "YouTube-Restrict", HeaderValue: "Strict"}
	ssYouTubeModerate = SafeSearch{Engine: "youtube", Target: "restrictmoderate.youtube.com",
		Header: "YouTube-Restrict", HeaderValue: "Moderate"}
)

// SafeSearchEngines returns the engines' names, for metric labels.
func SafeSearchEngines() []string { return []string{"google", "bing", "duckduckgo", "youtube"} }

// SafeSearchTargets returns every enforcing host name, once each.
func SafeSearchTargets() []string {
	return []string{ssGoogle.Target, ssBing.Target, ssDuckDuckGo.Target, ssYouTube.Target, ssYouTubeModerate.Target}
}

// googleDomains is Google's list of search domains
// (https://www.google.com/supported_domains); each is enforced bare and
// with www.
const googleDomains = `google.com google.ad google.ae google.com.af google.com.ag google.al
google.am google.co.ao google.com.ar google.as google.at google.com.au google.az google.ba
google.com.bd google.be google.bf google.bg google.com.bh google.bi google.bj google.com.bn
google.com.bo google.com.br google.bs google.bt google.co.bw google.by google.com.bz google.ca
google.cd google.cf google.cg google.ch google.ci google.co.ck google.cl google.cm google.cn
google.com.co google.co.cr google.com.cu google.cv google.com.cy google.cz google.de google.dj
google.dk google.dm google.com.do google.dz google.com.ec google.ee google.com.eg google.es
google.com.et google.fi google.com.fj google.fm google.fr google.ga google.ge google.gg
google.com.gh google.com.gi google.gl google.gm google.gr google.com.gt google.gy google.com.hk
google.hn google.hr google.ht google.hu google.co.id google.ie google.co.il google.im
google.co.in google.iq google.is google.it google.je google.com.jm google.jo google.co.jp
google.co.ke google.com.kh google.ki google.kg google.co.kr google.com.kw google.kz google.la
google.com.lb google.li google.lk google.co.ls google.lt google.lu google.lv google.com.ly
google.co.ma google.md google.me google.mg google.mk google.ml google.com.mm google.mn
google.com.mt google.mu google.mv google.mw google.com.mx google.com.my google.co.mz
google.com.na google.com.ng google.com.ni google.ne google.nl google.no google.com.np google.nr
google.nu google.co.nz google.com.om google.com.pa google.com.pe google.com.pg google.com.ph
google.com.pk google.pl google.pn google.com.pr google.ps google.pt google.com.py google.com.qa
google.ro google.ru google.rw google.com.sa google.com.sb google.sc google.se google.com.sg
google.sh google.si google.sk google.com.sl google.sn google.so google.sm google.sr google.st
google.com.sv google.td google.tg google.co.th google.com.tj google.tl google.tm google.tn
google.to google.com.tr google.tt google.com.tw google.co.tz google.com.ua google.co.ug
google.co.uk google.com.uy google.co.uz google.com.vc google.co.ve google.co.vi google.com.vn
google.vu google.ws google.rs google.co.za google.co.zm google.co.zw google.cat`

// safeSearchHosts maps a normalised host to its engine (YouTube's strict
// entry; SafeSearchFor turns it moderate where the profile says so).
var safeSearchHosts = func() map[string]*SafeSearch {
	m := make(map[string]*SafeSearch, 512)
	for _, d := range strings.Fields(googleDomains) {
		m[d] = &ssGoogle
		m["www."+d] = &ssGoogle
	}
	for _, h := range []string{"bing.com", "www.bing.com"} {
		m[h] = &ssBing
	}
	for _, h := range []string{"duckduckgo.com", "www.duckduckgo.com", "start.duckduckgo.com"} {
		m[h] = &ssDuckDuckGo
	}
	// Google's documented list of YouTube names for restricted mode.
	for _, h := range []string{"www.youtube.com", "m.youtube.com", "youtubei.googleapis.com",
		"youtube.googleapis.com", "www.youtube-nocookie.com"} {
		m[h] = &ssYouTube
	}
	return m
}()

// SafeSearchHosts returns every host name the engines' locks apply to
// (tests and docs; Decide is how the locks are given out).
func SafeSearchHosts() []string {
	out := make([]string, 0, len(safeSearchHosts))
	for h := range safeSearchHosts {
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}

// SafeSearchFor returns the lock for a normalised host under a profile
// with safe_search (YouTube moderate instead of strict when youtubeModerate),
// nil for a host of no engine. Decide gives it out in Decision.SafeSearch.
func SafeSearchFor(host string, youtubeModerate bool) *SafeSearch {
	ss := safeSearchHosts[host]
	if ss == &ssYouTube && youtubeModerate {
		return &ssYouTubeModerate
	}
	return ss
}
