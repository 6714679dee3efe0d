package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/schoolgate/schoolgate/categories"
)

// top decodes the root mapping: one table of the top-level keys, each
// beside its decoder, read as the config reference reads; the sections
// with more than a line or two have functions of their own.
func (d *decoder) top(n *yaml.Node) {
	c := d.cfg
	d.mapping(n, "", []field{
		{"timezone", func(_, v *yaml.Node) {
			d.line.timezone = deref(v).Line
			if s, ok := d.str(v, "timezone"); ok {
				c.Timezone = strings.TrimSpace(s)
			}
		}},
		{"run_as", func(k, v *yaml.Node) {
			c.RunAsLine = k.Line
			if s, ok := d.str(v, "run_as"); ok {
				s = strings.TrimSpace(s)
				if s != "" && !userNameRE.MatchString(s) {
					d.addf(deref(v).Line, "run_as: %q is not a user name", s)
					return
				}
				c.RunAs = s
			}
		}},
		{"state_dir", func(k, v *yaml.Node) {
			c.StateDirLine = k.Line
			if s, ok := d.str(v, "state_dir"); ok {
				if strings.TrimSpace(s) == "" {
					d.addf(deref(v).Line, "state_dir is empty")
					return
				}
				c.StateDir = strings.TrimSpace(s)
			}
		}},
		{"listen", func(_, v *yaml.Node) { d.listen(v) }},
		{"admin", func(_, v *yaml.Node) {
			d.mapping(v, "admin", []field{
				{"allow", func(_, v *yaml.Node) { c.Admin.Allow = d.prefixes(v, "admin.allow") }},
			})
		}},
		{"clients", func(_, v *yaml.Node) {
			c.Clients = d.prefixes(v, "clients")
			if isEmptyList(v) {
				d.addf(deref(v).Line, "clients is empty: no client could use the proxy or the DNS")
			}
		}},
		{"proxy", func(_, v *yaml.Node) { d.proxy(v) }},
		{"dns", func(_, v *yaml.Node) { d.dns(v) }},
		{"users", func(_, v *yaml.Node) { d.users(v) }},
		{"networks", func(_, v *yaml.Node) { d.networks(v) }},
		{"default_profile", func(_, v *yaml.Node) {
			d.line.defaultProfile = deref(v).Line
			if s, ok := d.str(v, "default_profile"); ok {
				c.DefaultProfile = strings.TrimSpace(s)
			}
		}},
		{"schedules", func(_, v *yaml.Node) { d.schedules(v) }},
		{"lists", func(_, v *yaml.Node) { d.lists(v) }},
		{"profiles", func(k, v *yaml.Node) {
			d.line.profiles = k.Line
			d.profiles(v)
		}},
		{"log", func(_, v *yaml.Node) { d.log(v) }},
		{"cache", func(_, v *yaml.Node) { d.cache(v) }},
		{"alerts", func(k, v *yaml.Node) {
			d.line.alerts = k.Line
			d.alerts(v)
		}},
		{"content", func(_, v *yaml.Node) { d.content(v) }},
		{"statutory", func(_, v *yaml.Node) { d.statutory(v) }},
		{"lists_refresh", func(k, v *yaml.Node) { d.refresh(k, v) }},
		{"identity", func(_, v *yaml.Node) { d.identity(v) }},
		{"portal", func(k, v *yaml.Node) { d.portal(k, v) }},
	})
}

// users decodes `users:`.
func (d *decoder) users(n *yaml.Node) {
	c := d.cfg
	d.mapping(n, "users", []field{
		{"file", func(k, v *yaml.Node) {
			c.Users.File, _ = d.str(v, "users.file")
			c.Users.FileLine = k.Line
		}},
		{"require_auth", func(k, v *yaml.Node) {
			d.line.requireAuth = k.Line
			c.Users.RequireAuth, _ = d.boolean(v, "users.require_auth")
		}},
		{"ldap", func(k, v *yaml.Node) { d.ldap(k, v) }},
	})
}

// log decodes `log:`.
func (d *decoder) log(n *yaml.Node) {
	c := d.cfg
	d.mapping(n, "log", []field{
		{"dir", func(_, v *yaml.Node) {
			if s, ok := d.str(v, "log.dir"); ok {
				if strings.TrimSpace(s) == "" {
					d.addf(deref(v).Line, "log.dir is empty")
					return
				}
				c.Log.Dir = s
				c.Log.DirLine = deref(v).Line
			}
		}},
		d.countField("retention_days", "log.retention_days", false, &c.Log.RetentionDays),
		d.countField("checkpoint_minutes", "log.checkpoint_minutes", true, &c.Log.CheckpointMinutes),
	})
}

// cache decodes `cache:`.
func (d *decoder) cache(n *yaml.Node) {
	c := d.cfg
	d.mapping(n, "cache", []field{
		d.countField("verdicts", "cache.verdicts", true, &c.Cache.Verdicts),
		d.countField("dns", "cache.dns", true, &c.Cache.DNS),
	})
}

func (d *decoder) listen(n *yaml.Node) {
	l := &d.cfg.Listen
	one := func(name string, dst *string) field {
		return field{name, func(_, v *yaml.Node) {
			s, ok := d.listenAddr(v, "listen."+name)
			if !ok {
				return
			}
			*dst = s
			d.line.listen[name] = deref(v).Line
		}}
	}
	d.mapping(n, "listen", []field{
		one("proxy", &l.Proxy),
		one("dns", &l.DNS),
		one("admin", &l.Admin),
		one("transparent_http", &l.TransparentHTTP),
		one("transparent_https", &l.TransparentHTTPS),
	})
}

// listenAddr decodes a listen address (host:port; "" for off) at where:
// trimmed, and false when it is not a string or not an address (the
// problem is recorded).
func (d *decoder) listenAddr(v *yaml.Node, where string) (string, bool) {
	s, ok := d.str(v, where)
	if !ok {
		return "", false
	}
	s = strings.TrimSpace(s)
	if s != "" {
		if err := checkListen(s); err != nil {
			d.addf(deref(v).Line, "%s: %v", where, err)
			return "", false
		}
	}
	return s, true
}

// prefixes decodes a list of networks.
func (d *decoder) prefixes(n *yaml.Node, where string) []netip.Prefix {
	items := d.strList(n, where)
	out := make([]netip.Prefix, 0, len(items))
	for _, it := range items {
		p, err := parsePrefix(it.val, where)
		if err != nil {
			d.addf(it.line, "%v", err)
			continue
		}
		out = append(out, p)
	}
	return out
}

func (d *decoder) proxy(n *yaml.Node) {
	p := &d.cfg.Proxy
	d.mapping(n, "proxy", []field{
		{"connect_ports", func(_, v *yaml.Node) {
			nodes, _ := d.list(v, "proxy.connect_ports")
			p.ConnectPorts = []int{}
			for _, c := range nodes {
				port, ok := d.integer(c, "proxy.connect_ports")
				if !ok {
					continue
				}
				if port < 1 || port > 65535 {
					d.addf(c.Line, "port %d out of range (1-65535) in proxy.connect_ports", port)
					continue
				}
				p.ConnectPorts = append(p.ConnectPorts, port)
			}
		}},
		{"deny_destinations", func(_, v *yaml.Node) {
			p.DenyDestinations = d.prefixes(v, "proxy.deny_destinations")
			p.DenyDestinationsSet = true
		}},
		d.countField("max_connections", "proxy.max_connections", true, &p.MaxConnections),
		{"block_page", func(_, v *yaml.Node) {
			d.mapping(v, "proxy.block_page", []field{
				{"organisation", func(_, v *yaml.Node) { p.BlockPage.Organisation, _ = d.str(v, "proxy.block_page.organisation") }},
				{"contact", func(_, v *yaml.Node) { p.BlockPage.Contact, _ = d.str(v, "proxy.block_page.contact") }},
			})
		}},
		{"intercept", func(k, v *yaml.Node) {
			if isNull(deref(v)) {
				return
			}
			ic := &Intercept{}
			d.mapping(v, "proxy.intercept", []field{
				{"ca_cert", func(k, v *yaml.Node) {
					ic.CACert, _ = d.str(v, "proxy.intercept.ca_cert")
					ic.CACertLine = k.Line
				}},
				{"ca_key", func(k, v *yaml.Node) {
					ic.CAKey, _ = d.str(v, "proxy.intercept.ca_key")
					ic.CAKeyLine = k.Line
				}},
				{"domains", func(k, v *yaml.Node) {
					ic.DomainsLine = k.Line
					ic.Domains = d.domains(v, "proxy.intercept.domains", false)
				}},
				{"categories", func(_, v *yaml.Node) {
					ic.Categories = d.categoryList(v, "proxy.intercept.categories", true)
				}},
			})
			if strings.TrimSpace(ic.CACert) == "" || strings.TrimSpace(ic.CAKey) == "" {
				d.addf(k.Line, "proxy.intercept needs both ca_cert and ca_key (the school's CA, PEM files)")
			}
			p.Intercept = ic
		}},
	})
}

func (d *decoder) dns(n *yaml.Node) {
	c := &d.cfg.DNS
	d.mapping(n, "dns", []field{
		{"upstreams", func(_, v *yaml.Node) {
			c.Upstreams = []string{}
			for _, it := range d.strList(v, "dns.upstreams") {
				u, err := parseUpstream(it.val)
				if err != nil {
					d.addf(it.line, "%v", err)
					continue
				}
				c.Upstreams = append(c.Upstreams, u)
			}
			if isEmptyList(v) {
				d.addf(deref(v).Line, "dns.upstreams is empty: the DNS filter needs at least one upstream")
			}
		}},
		{"blocked_answer", func(_, v *yaml.Node) {
			s, ok := d.str(v, "dns.blocked_answer")
			if !ok {
				return
			}
			if r := deref(v); isNull(r) && strings.EqualFold(r.Value, "null") {
				s = "null" // YAML reads a bare null as no value; the school meant the answer
			}
			switch a := strings.ToLower(strings.TrimSpace(s)); a {
			case "nxdomain", "null":
				c.BlockedAnswer = a
			default:
				d.addf(deref(v).Line, "bad blocked_answer %q (want nxdomain or null)", s)
			}
		}},
		d.countField("rate_limit", "dns.rate_limit", false, &c.RateLimit),
		{"forward", func(_, v *yaml.Node) { d.dnsForward(v) }},
		{"trusted_forwarders", func(_, v *yaml.Node) {
			c.TrustedForwarders = d.prefixes(v, "dns.trusted_forwarders")
			c.TrustedForwardersLine = deref(v).Line
		}},
	})
}

// dnsForward decodes dns.forward: zone → list of servers. A zone may be
// given as a network (10.0.0.0/8, 2001:db8::/32): its reverse zone.
func (d *decoder) dnsForward(n *yaml.Node) {
	seen := make(map[string]int)
	for _, kv := range d.namedMapping(n, "dns.forward") {
		zone, err := parseForwardZone(kv.key)
		if err != nil {
			d.addf(kv.k.Line, "%v", err)
			continue
		}
		if first, dup := seen[zone]; dup {
			d.addf(kv.k.Line, "dns.forward zone %s is listed twice (first at line %d)", zone, first)
			continue
		}
		seen[zone] = kv.k.Line
		f := Forward{Zone: zone, Line: kv.k.Line}
		items := d.strList(kv.v, "dns.forward."+kv.key)
		for _, it := range items {
			u, err := parseUpstream(it.val)
			if err != nil {
				d.addf(it.line, "dns.forward.%s: %v", kv.key, err)
				continue
			}
			f.Servers = append(f.Servers, u)
		}
		if len(items) == 0 {
			d.addf(kv.k.Line, "dns.forward.%s has no server: list the address of at least one (a domain controller, say)", kv.key)
			continue
		}
		if len(f.Servers) == 0 {
			continue // each bad one said why
		}
		d.cfg.DNS.Forward = append(d.cfg.DNS.Forward, f)
	}
}

func (d *decoder) networks(n *yaml.Node) {
	seen := make(map[netip.Prefix]int)
	for _, kv := range d.namedMapping(n, "networks") {
		p, err := parsePrefix(kv.key, "networks")
		if err != nil {
			d.addf(kv.k.Line, "%v", err)
			continue
		}
		if first, dup := seen[p]; dup {
			d.addf(kv.k.Line, "network %s is listed twice (first at line %d)", p, first)
			continue
		}
		seen[p] = kv.k.Line
		name, ok := d.str(kv.v, "networks."+kv.key)
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		line := deref(kv.v).Line
		d.later = append(d.later, func() { d.checkProfileRef(name, line) })
		d.cfg.Networks = append(d.cfg.Networks, Network{Prefix: p, Profile: name, Line: kv.k.Line})
	}
}

// MaxSchedules is how many schedules a config may define: the policy keeps
// the open ones at a given time as the bits of one word.
const MaxSchedules = 64

func (d *decoder) schedules(n *yaml.Node) {
	kvs := d.namedMapping(n, "schedules")
	if len(kvs) > MaxSchedules {
		d.addf(deref(n).Line, "%d schedules defined; at most %d are supported", len(kvs), MaxSchedules)
		return
	}
	for _, kv := range kvs {
		name := kv.key
		where := "schedules." + name
		if strings.TrimSpace(name) == "" {
			d.addf(kv.k.Line, "a schedule needs a name")
			continue
		}
		s := Schedule{Line: kv.k.Line}
		var hasDays, hasFrom, hasTo bool
		d.mapping(kv.v, where, []field{
			{"days", func(_, v *yaml.Node) {
				hasDays = true
				if isEmptyList(v) {
					d.addf(deref(v).Line, "schedule %q has no days: it would never be open", name)
				}
				seen := make(map[time.Weekday]bool)
				for _, it := range d.strList(v, where+".days") {
					day, err := parseDay(it.val)
					if err != nil {
						d.addf(it.line, "%v", err)
						continue
					}
					if !seen[day] {
						seen[day] = true
						s.Days = append(s.Days, day)
					}
				}
			}},
			{"from", func(_, v *yaml.Node) {
				hasFrom = true
				d.clock(v, where+".from", false, &s.From)
			}},
			{"to", func(_, v *yaml.Node) {
				hasTo = true
				d.clock(v, where+".to", true, &s.To)
			}},
		})
		var missing []string
		if !hasDays {
			missing = append(missing, "days")
		}
		if !hasFrom {
			missing = append(missing, "from")
		}
		if !hasTo {
			missing = append(missing, "to")
		}
		if len(missing) > 0 && deref(kv.v).Kind == yaml.MappingNode {
			d.addf(kv.k.Line, "schedule %q needs %s", name, strings.Join(missing, ", "))
		}
		sort.Slice(s.Days, func(i, j int) bool { return s.Days[i] < s.Days[j] })
		d.cfg.Schedules[name] = s
	}
}

func (d *decoder) clock(v *yaml.Node, where string, end bool, dst *Clock) {
	s, ok := d.str(v, where)
	if !ok {
		return
	}
	c, err := parseClock(s, end)
	if err != nil {
		d.addf(deref(v).Line, "%v", err)
		return
	}
	*dst = c
}

// lists decodes `lists:`, one listItem for each entry.
func (d *decoder) lists(n *yaml.Node) {
	nodes, _ := d.list(n, "lists")
	for i, v := range nodes {
		it := listItem{d: d, where: fmt.Sprintf("lists[%d]", i+1), l: List{Line: v.Line}, catLine: v.Line}
		d.mapping(v, it.where, it.fields())
		if v.Kind != yaml.MappingNode {
			continue
		}
		d.checkListEntry(&it.l, it.sources, it.hasCategory, it.hasFormat, it.catLine)
		d.cfg.Lists = append(d.cfg.Lists, it.l)
	}
}

// listItem is one entry of `lists:` while its keys are decoded: the
// list, and what checkListEntry needs to check across the keys.
type listItem struct {
	d     *decoder
	where string
	l     List

	sources                []string // the source keys, in order
	hasCategory, hasFormat bool
	catLine                int
}

// fields is the table of a list entry's keys, each beside its decoder.
func (it *listItem) fields() []field {
	d, where, l := it.d, it.where, &it.l
	return []field{
		{"category", it.category},
		{"domains", func(_, v *yaml.Node) {
			it.addSource("domains", "urls")
			l.Domains = d.domains(v, where+".domains", true)
		}},
		{"urls", it.urls},
		{"file", func(_, v *yaml.Node) {
			it.addSource("file", "")
			l.File = it.nonEmpty(v, "file")
		}},
		{"format", it.format},
		{"url", func(_, v *yaml.Node) {
			it.addSource("url", "")
			l.URL = d.downloadURL(v, where+".url")
		}},
		{"ut1_url", func(_, v *yaml.Node) {
			it.addSource("ut1_url", "")
			l.UT1URL = d.downloadURL(v, where+".ut1_url")
		}},
		{"ut1_md5_url", func(_, v *yaml.Node) { l.UT1MD5URL = d.downloadURL(v, where+".ut1_md5_url") }},
		{"name", it.name},
		{"refresh", func(_, v *yaml.Node) {
			if dur, ok := d.duration(v, where+".refresh", time.Second); ok {
				l.Refresh = dur
			}
		}},
		{"allow_shrink", func(_, v *yaml.Node) {
			if b, ok := d.boolean(v, where+".allow_shrink"); ok {
				l.AllowShrink = b
			}
		}},
		{"ut1", func(_, v *yaml.Node) {
			it.addSource("ut1", "")
			l.UT1 = it.nonEmpty(v, "ut1")
		}},
	}
}

// addSource notes a source key. domains and urls given together are one
// source (a list of both), so the second of them is not counted again.
func (it *listItem) addSource(key, pairedWith string) {
	if pairedWith != "" && len(it.sources) > 0 && it.sources[len(it.sources)-1] == pairedWith {
		return
	}
	it.sources = append(it.sources, key)
}

// nonEmpty decodes a string key that must not be blank, trimmed.
func (it *listItem) nonEmpty(v *yaml.Node, key string) string {
	s, ok := it.d.str(v, it.where+"."+key)
	if !ok {
		return ""
	}
	s = strings.TrimSpace(s)
	if s == "" {
		it.d.addf(deref(v).Line, "%s.%s is empty", it.where, key)
	}
	return s
}

func (it *listItem) category(_, v *yaml.Node) {
	it.hasCategory = true
	it.catLine = deref(v).Line
	s, ok := it.d.str(v, it.where+".category")
	if !ok {
		return
	}
	c, err := checkCategory(strings.TrimSpace(s), false)
	if err != nil {
		it.d.addf(it.catLine, "%v", err)
		return
	}
	it.l.Category = c
}

func (it *listItem) urls(_, v *yaml.Node) {
	it.addSource("urls", "domains")
	for _, e := range it.d.strList(v, it.where+".urls") {
		u, err := normURL(e.val)
		if err != nil {
			it.d.addf(e.line, "%v", err)
			continue
		}
		it.d.listEntry(u, e.line)
		it.l.URLs = append(it.l.URLs, u)
	}
}

func (it *listItem) format(_, v *yaml.Node) {
	it.hasFormat = true
	s, ok := it.d.str(v, it.where+".format")
	if !ok {
		return
	}
	switch f := strings.ToLower(strings.TrimSpace(s)); f {
	case "domains", "hosts", "adblock":
		it.l.Format = f
	case "", "auto":
	default:
		it.d.addf(deref(v).Line, "unknown list format %q (want domains, hosts or adblock; leave it out to detect it)", s)
	}
}

func (it *listItem) name(_, v *yaml.Node) {
	s, ok := it.d.str(v, it.where+".name")
	if !ok {
		return
	}
	if s = strings.TrimSpace(s); !listNameRE.MatchString(s) {
		it.d.addf(deref(v).Line, "%s.name %q: use lower-case letters, digits, '.', '_' and '-'", it.where, s)
		return
	}
	it.l.Name = s
}

// checkListEntry checks what holds across a list entry's keys: one
// source, a category except for a UT1 tree, and the keys that go with
// only some sources.
func (d *decoder) checkListEntry(l *List, sources []string, hasCategory, hasFormat bool, catLine int) {
	ut1 := len(sources) == 1 && (sources[0] == "ut1" || sources[0] == "ut1_url")
	switch {
	case len(sources) == 0:
		d.addf(l.Line, "list entry has no source (give domains, urls, file, url, ut1 or ut1_url)")
	case len(sources) > 1:
		d.addf(l.Line, "list entry has %d sources (%s): use one entry for each", len(sources), strings.Join(sources, ", "))
	case ut1 && hasCategory:
		d.addf(catLine, "category is not used with %s: the tree's folders name their categories", sources[0])
	case !ut1 && !hasCategory:
		d.addf(l.Line, "list entry has no category")
	}
	if hasFormat && l.File == "" && l.URL == "" {
		d.addf(l.Line, "format is only used with file or url")
	}
	if l.UT1MD5URL != "" && l.UT1URL == "" {
		d.addf(l.Line, "ut1_md5_url is only used with ut1_url")
	}
	if (l.Name != "" || l.Refresh != 0 || l.AllowShrink) && !l.Downloaded() {
		d.addf(l.Line, "name, refresh and allow_shrink are only used with url or ut1_url")
	}
}

// domains decodes a list of domain entries. In a list (withPaths), an
// entry with a path is a URL entry (docs/policy.md: `example.com/path`
// matches that path prefix), as under urls; rule and intercept domains are
// host names only.
func (d *decoder) domains(v *yaml.Node, where string, withPaths bool) []string {
	items := d.strList(v, where)
	out := make([]string, 0, len(items))
	for _, it := range items {
		if withPaths && strings.Contains(it.val, "/") {
			u, err := normURL(it.val)
			if err != nil {
				d.addf(it.line, "%v", err)
				continue
			}
			d.listEntry(u, it.line)
			out = append(out, u)
			continue
		}
		if err := checkDomain(it.val); err != nil {
			d.addf(it.line, "%v", err)
			continue
		}
		if withPaths {
			d.listEntry(it.val, it.line)
		}
		out = append(out, it.val)
	}
	return out
}

// listEntry notes an inline list entry that the category database would
// skip (localhost, a single label, an IP address) as unusable.
func (d *decoder) listEntry(e string, line int) {
	if msg := categories.EntryProblem(e); msg != "" {
		d.cfg.unusable = append(d.cfg.unusable, Problem{File: d.file, Line: line, Msg: msg})
	}
}

// categoryList decodes a list of category names.
func (d *decoder) categoryList(v *yaml.Node, where string, allowUnclassified bool) []string {
	items := d.strList(v, where)
	out := make([]string, 0, len(items))
	for _, it := range items {
		c, err := checkCategory(it.val, allowUnclassified)
		if err != nil {
			d.addf(it.line, "%v", err)
			continue
		}
		out = append(out, c)
	}
	return out
}

func (d *decoder) profiles(n *yaml.Node) {
	for _, kv := range d.namedMapping(n, "profiles") {
		name := kv.key
		if err := checkProfileName(name); err != nil {
			d.addf(kv.k.Line, "%v", err)
			continue
		}
		where := "profiles." + name
		p := defaultProfile()
		d.mapping(kv.v, where, []field{
			{"safe_search", func(_, v *yaml.Node) { p.SafeSearch, _ = d.boolean(v, where+".safe_search") }},
			{"youtube_restrict", func(_, v *yaml.Node) {
				s, ok := d.str(v, where+".youtube_restrict")
				if !ok {
					return
				}
				switch s = strings.ToLower(s); s {
				case "strict", "moderate":
					p.YouTubeRestrict = s
				default:
					d.addf(deref(v).Line, "%s.youtube_restrict: bad value %q (want strict or moderate)", where, s)
				}
			}},
			{"rules", func(_, v *yaml.Node) {
				nodes, _ := d.list(v, where+".rules")
				for i, rn := range nodes {
					if r, ok := d.rule(rn, fmt.Sprintf("%s.rules[%d]", where, i+1)); ok {
						p.Rules = append(p.Rules, r)
					}
				}
			}},
			{"default", func(_, v *yaml.Node) {
				s, ok := d.str(v, where+".default")
				if !ok {
					return
				}
				a, err := parseAction(s, "default")
				if err != nil {
					d.addf(deref(v).Line, "%v", err)
					return
				}
				p.Default = a
			}},
			{"content_threshold", func(_, v *yaml.Node) {
				f, ok := d.number(v, where+".content_threshold")
				if !ok {
					return
				}
				if f < 0 || f > 1 {
					d.addf(deref(v).Line, "content_threshold %v out of range (0 to 1)", f)
					return
				}
				p.ContentThreshold = f
			}},
		})
		d.cfg.Profiles[name] = p
	}
}

func (d *decoder) rule(n *yaml.Node, where string) (Rule, bool) {
	r := Rule{Line: n.Line}
	if n.Kind != yaml.MappingNode {
		d.addf(n.Line, "%s: expected a mapping (action, categories, ...), got %s", where, describe(n))
		return r, false
	}
	hasAction := false
	scheduleRefs := func(v *yaml.Node, what string) []string {
		items := d.strList(v, where+"."+what)
		out := make([]string, 0, len(items))
		for _, it := range items {
			out = append(out, it.val)
			d.later = append(d.later, func() { d.checkScheduleRef(it.val, it.line) })
		}
		return out
	}
	d.mapping(n, where, []field{
		{"action", func(_, v *yaml.Node) {
			hasAction = true
			s, ok := d.str(v, where+".action")
			if !ok {
				return
			}
			a, err := parseAction(s, "action")
			if err != nil {
				d.addf(deref(v).Line, "%v", err)
				return
			}
			r.Action = a
		}},
		{"categories", func(_, v *yaml.Node) { r.Categories = d.categoryList(v, where+".categories", true) }},
		{"domains", func(_, v *yaml.Node) { r.Domains = d.domains(v, where+".domains", false) }},
		{"when", func(_, v *yaml.Node) { r.When = scheduleRefs(v, "when") }},
		{"when_not", func(_, v *yaml.Node) { r.WhenNot = scheduleRefs(v, "when_not") }},
	})
	if !hasAction {
		d.addf(n.Line, "rule has no action (want allow or block)")
	}
	return r, true
}

func (d *decoder) alerts(n *yaml.Node) {
	a := &d.cfg.Alerts
	d.mapping(n, "alerts", []field{
		{"categories", func(_, v *yaml.Node) { a.Categories = d.categoryList(v, "alerts.categories", true) }},
		{"webhook", func(_, v *yaml.Node) {
			s, ok := d.str(v, "alerts.webhook")
			if !ok {
				return
			}
			s = strings.TrimSpace(s)
			if s != "" {
				if err := checkWebhook(s); err != nil {
					d.addf(deref(v).Line, "%v", err)
				}
			}
			a.Webhook = s
		}},
		{"file", func(_, v *yaml.Node) {
			if s, ok := d.str(v, "alerts.file"); ok {
				a.File = strings.TrimSpace(s)
			}
		}},
		d.countField("batch_seconds", "alerts.batch_seconds", true, &a.BatchSeconds),
	})
}

func (d *decoder) checkProfileRef(name string, line int) {
	if _, ok := d.cfg.Profiles[name]; ok {
		return
	}
	known := profileNames(d.cfg)
	if m := suggest(name, known); m != "" {
		d.addf(line, "unknown profile %q (did you mean %q? known: %s)", name, m, strings.Join(known, ", "))
		return
	}
	d.addf(line, "unknown profile %q (known: %s)", name, strings.Join(known, ", "))
}

func (d *decoder) checkScheduleRef(name string, line int) {
	if _, ok := d.cfg.Schedules[name]; ok {
		return
	}
	known := make([]string, 0, len(d.cfg.Schedules))
	for s := range d.cfg.Schedules {
		known = append(known, s)
	}
	sort.Strings(known)
	if len(known) == 0 {
		d.addf(line, "unknown schedule %q (no schedules are defined)", name)
		return
	}
	if m := suggest(name, known); m != "" {
		d.addf(line, "unknown schedule %q (did you mean %q? known: %s)", name, m, strings.Join(known, ", "))
		return
	}
	d.addf(line, "unknown schedule %q (known: %s)", name, strings.Join(known, ", "))
}

func profileNames(c *Config) []string {
	out := make([]string, 0, len(c.Profiles))
	for p := range c.Profiles {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// finish runs the checks that need the whole file, fills the derived
// fields and resolves relative paths against dir ("" leaves them
// relative to the working directory).
func (d *decoder) finish(dir string) {
	for _, f := range d.later {
		f()
	}
	d.later = nil
	d.nameLists()
	d.location()
	d.checkAcrossSections()
	d.checkListenCollisions()
	d.cfg.resolvePaths(dir)
}

// location checks timezone and sets Location from it (UTC when it is
// missing or wrong, so the checks after it still run).
func (d *decoder) location() {
	c := d.cfg
	if c.Timezone == "" {
		c.Timezone = "UTC"
	}
	if strings.EqualFold(c.Timezone, "local") {
		d.addf(d.line.timezone, "timezone %q depends on the machine: name the zone, such as Europe/London", c.Timezone)
		c.Location = time.UTC
	} else if loc, err := time.LoadLocation(c.Timezone); err != nil {
		d.addf(d.line.timezone, "unknown timezone %q (want an IANA name such as Europe/London)", c.Timezone)
		c.Location = time.UTC
	} else {
		c.Location = loc
	}
}

// checkAcrossSections checks what one section needs of another: a
// default profile that exists, users for require_auth, a destination
// for alerts.
func (d *decoder) checkAcrossSections() {
	c := d.cfg
	switch {
	case len(c.Profiles) == 0:
		d.addf(d.line.profiles, "no profiles: define at least one under profiles:")
	case c.DefaultProfile == "":
		d.addf(1, "default_profile is missing (known profiles: %s)", strings.Join(profileNames(c), ", "))
	default:
		d.checkProfileRef(c.DefaultProfile, d.line.defaultProfile)
	}

	if c.Users.RequireAuth && strings.TrimSpace(c.Users.File) == "" && c.Users.LDAP == nil {
		d.addf(d.line.requireAuth, "users.require_auth is true but neither users.file nor users.ldap names the users")
	}
	if len(c.Alerts.Categories) > 0 && c.Alerts.Webhook == "" && c.Alerts.File == "" {
		d.addf(d.line.alerts, "alerts.categories is set but neither alerts.webhook nor alerts.file says where to send alerts")
	}
}

// checkListenCollisions refuses two listeners on one address: the DNS
// listens on TCP too, so any two of them would collide.
func (d *decoder) checkListenCollisions() {
	c := d.cfg
	addrs := map[string]string{}
	for _, name := range []string{"proxy", "dns", "admin", "transparent_http", "transparent_https"} {
		a := map[string]string{"proxy": c.Listen.Proxy, "dns": c.Listen.DNS, "admin": c.Listen.Admin,
			"transparent_http": c.Listen.TransparentHTTP, "transparent_https": c.Listen.TransparentHTTPS}[name]
		if a == "" || strings.HasSuffix(a, ":0") {
			continue
		}
		if other, dup := addrs[a]; dup {
			if line := d.line.listen[name]; line > 0 {
				d.addf(line, "listen.%s %s is also listen.%s", name, a, other)
			} else {
				d.addf(d.line.listen[other], "listen.%s %s is also the default of listen.%s: set listen.%s too", other, a, name, name)
			}
			continue
		}
		addrs[a] = name
	}
}

// resolvePaths makes the relative paths of the config relative to dir
// ("" leaves them as they are). Every path the config names is here, so
// they are resolved once.
func (c *Config) resolvePaths(dir string) {
	abs := func(p string) string {
		if p == "" || dir == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	c.Users.File = abs(c.Users.File)
	if l := c.Users.LDAP; l != nil {
		l.BindPasswordFile, l.CAFile = abs(l.BindPasswordFile), abs(l.CAFile)
	}
	c.Log.Dir = abs(c.Log.Dir)
	c.StateDir = abs(c.StateDir)
	c.Alerts.File = abs(c.Alerts.File)
	c.Identity.APISecretFile = abs(c.Identity.APISecretFile)
	c.Identity.RADIUS.SecretFile = abs(c.Identity.RADIUS.SecretFile)
	c.Portal.Cert, c.Portal.Key = abs(c.Portal.Cert), abs(c.Portal.Key)
	for i, f := range c.Content.PhraseFiles {
		c.Content.PhraseFiles[i] = abs(f)
	}
	if c.Proxy.Intercept != nil {
		c.Proxy.Intercept.CACert = abs(c.Proxy.Intercept.CACert)
		c.Proxy.Intercept.CAKey = abs(c.Proxy.Intercept.CAKey)
	}
	for i := range c.Statutory {
		c.Statutory[i].File = abs(c.Statutory[i].File)
	}
	for i := range c.Lists {
		c.Lists[i].File = abs(c.Lists[i].File)
		c.Lists[i].UT1 = abs(c.Lists[i].UT1)
	}
}

// countField is the field key of a whole number, 0 or more (1 or more
// if positive), decoded into dst; where names it in problems.
func (d *decoder) countField(key, where string, positive bool, dst *int) field {
	return field{key, func(_, v *yaml.Node) {
		if n, ok := d.nonNegative(v, where, positive); ok {
			*dst = n
		}
	}}
}

// isEmptyList reports whether v is null or a list with no items.
func isEmptyList(v *yaml.Node) bool {
	v = deref(v)
	return isNull(v) || (v.Kind == yaml.SequenceNode && len(v.Content) == 0)
}
