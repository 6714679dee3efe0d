package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/internal/testenv"
)

func TestExampleLoads(t *testing.T) {
	path := testenv.ExampleConfig(t)
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("example.yaml must load with no problems, got:\n%v", err)
	}
	dir := filepath.Dir(path)
	if got, want := cfg.Location.String(), "Europe/London"; got != want {
		t.Errorf("Location = %s, want %s", got, want)
	}
	if got, want := cfg.Users.File, filepath.Join(dir, "users.csv"); got != want {
		t.Errorf("Users.File = %s, want %s (relative to the config's folder)", got, want)
	}
	if !cfg.Users.RequireAuth {
		t.Error("Users.RequireAuth = false, want true")
	}
	if got, want := cfg.Log.Dir, "/var/log/schoolgate"; got != want {
		t.Errorf("Log.Dir = %s, want %s", got, want)
	}
	wantNets := []Network{
		{netip.MustParsePrefix("10.20.0.0/16"), "staff", 34},
		{netip.MustParsePrefix("10.10.0.0/16"), "student", 35},
	}
	if !reflect.DeepEqual(cfg.Networks, wantNets) {
		t.Errorf("Networks = %+v, want %+v", cfg.Networks, wantNets)
	}
	weekdays := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
	if got, want := cfg.Schedules["school-hours"], (Schedule{weekdays, 8*60 + 30, 15*60 + 30, 39}); !reflect.DeepEqual(got, want) {
		t.Errorf("school-hours = %+v, want %+v", got, want)
	}
	if got, want := cfg.Schedules["lunch"], (Schedule{weekdays, 12*60 + 15, 13*60 + 15, 40}); !reflect.DeepEqual(got, want) {
		t.Errorf("lunch = %+v, want %+v", got, want)
	}
	if len(cfg.Lists) != 2 || cfg.Lists[0].Category != "gambling" || cfg.Lists[0].Line != 43 ||
		!reflect.DeepEqual(cfg.Lists[0].Domains, []string{"casino.example"}) || cfg.Lists[1].Line != 45 {
		t.Errorf("Lists = %+v", cfg.Lists)
	}
	staff := cfg.Profiles["staff"]
	if len(staff.Rules) != 4 || staff.Default != "allow" || staff.SafeSearch {
		t.Fatalf("staff = %+v", staff)
	}
	if r := staff.Rules[1]; r.Action != "allow" || r.Line != 70 || !reflect.DeepEqual(r.When, []string{"lunch"}) || len(r.Categories) != 5 {
		t.Errorf("staff rule 2 = %+v", r)
	}
	if r := staff.Rules[2]; !reflect.DeepEqual(r.WhenNot, []string{"school-hours"}) || r.Line != 73 {
		t.Errorf("staff rule 3 = %+v", r)
	}
	student := cfg.Profiles["student"]
	if len(student.Rules) != 3 || !student.SafeSearch || len(student.Rules[1].Categories) != 20 ||
		!reflect.DeepEqual(student.Rules[2].Categories, []string{"ip-literal", "ech"}) {
		t.Errorf("student = %+v", student)
	}
	if cfg.DefaultProfile != "student" || cfg.DNS.BlockedAnswer != "nxdomain" ||
		!reflect.DeepEqual(cfg.DNS.Upstreams, []string{"9.9.9.9:53", "1.1.1.1:53"}) ||
		!reflect.DeepEqual(cfg.Proxy.ConnectPorts, []int{443}) || cfg.Proxy.DenyDestinationsSet ||
		cfg.Cache.Verdicts != 100000 || cfg.Cache.DNS != 50000 || cfg.Log.RetentionDays != 183 {
		t.Errorf("cfg = %+v", cfg)
	}
}

func TestEmbedded(t *testing.T) {
	if ps := EmbeddedProblems(); len(ps) > 0 {
		t.Fatalf("embedded default.yaml has problems:\n%v", ps)
	}
	cfg := Embedded()
	if cfg.Listen.Proxy != "127.0.0.1:3128" || cfg.Listen.DNS != "127.0.0.1:5300" || cfg.Listen.Admin != "127.0.0.1:9090" {
		t.Errorf("Listen = %+v", cfg.Listen)
	}
	if cfg.Users.File != "" || cfg.Users.RequireAuth {
		t.Errorf("Users = %+v, want no file and no auth", cfg.Users)
	}
	if cfg.DefaultProfile != "student" || len(cfg.Profiles) != 2 || cfg.Location.String() != "Europe/London" {
		t.Errorf("cfg = %+v", cfg)
	}
	wd, _ := os.Getwd()
	if got, want := cfg.Log.Dir, filepath.Join(wd, "logs"); got != want {
		t.Errorf("Log.Dir = %s, want %s (the working directory)", got, want)
	}
	for _, a := range []string{"127.0.0.1", "10.1.2.3", "172.20.0.1", "192.168.1.1", "::1"} {
		found := false
		for _, p := range cfg.Clients {
			found = found || p.Contains(netip.MustParseAddr(a))
		}
		if !found {
			t.Errorf("client %s not in embedded clients %v", a, cfg.Clients)
		}
	}
	noLines := func(p Profile) Profile {
		p.Rules = append([]Rule(nil), p.Rules...)
		for i := range p.Rules {
			p.Rules[i].Line = 0
		}
		return p
	}
	if !reflect.DeepEqual(noLines(cfg.Profiles["staff"]), noLines(mustLoadExample(t).Profiles["staff"])) {
		t.Errorf("embedded staff profile differs from example.yaml's")
	}
}

func mustLoadExample(t *testing.T) *Config {
	t.Helper()
	cfg, err := Load(testenv.ExampleConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestDefaults(t *testing.T) {
	cfg, err := Parse([]byte("default_profile: p\nprofiles:\n  p: {}\n"), "min.yaml", "/etc/schoolgate")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	if cfg.Timezone != "UTC" || cfg.Location != time.UTC {
		t.Errorf("timezone = %q %v, want UTC", cfg.Timezone, cfg.Location)
	}
	if !reflect.DeepEqual(cfg.Proxy.ConnectPorts, []int{443}) || cfg.DNS.BlockedAnswer != "nxdomain" ||
		cfg.Cache.Verdicts != 100000 || cfg.Cache.DNS != 50000 || cfg.Log.RetentionDays != 183 ||
		cfg.DNS.RateLimit != 200 || cfg.Proxy.MaxConnections != 4096 || cfg.Alerts.BatchSeconds != 60 ||
		!reflect.DeepEqual(cfg.Clients, want.Clients) {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if cfg.Log.Dir != "/etc/schoolgate/logs" {
		t.Errorf("Log.Dir = %q, want /etc/schoolgate/logs", cfg.Log.Dir)
	}
	if p := cfg.Profiles["p"]; p.Default != "allow" || len(p.Rules) != 0 {
		t.Errorf("profile p = %+v", p)
	}
	// Default returns fresh values: changing one must not change the next.
	a := Default()
	a.Proxy.ConnectPorts[0] = 1
	if Default().Proxy.ConnectPorts[0] != 443 {
		t.Error("Default shares its slices")
	}
}

func TestValues(t *testing.T) {
	const tail = "default_profile: p\nprofiles:\n  p: {}\n"
	tests := []struct {
		name, yaml string
		check      func(*Config) bool
	}{
		{"bare address is a host prefix", "clients: [10.1.2.3, \"2001:db8::1\"]\n",
			func(c *Config) bool {
				return reflect.DeepEqual(c.Clients, []netip.Prefix{netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("2001:db8::1/128")})
			}},
		{"upstream bare ip gets :53", "dns: {upstreams: [9.9.9.9, \"2620:fe::fe\", \"[2620:fe::9]:5353\"]}\n",
			func(c *Config) bool {
				return reflect.DeepEqual(c.DNS.Upstreams, []string{"9.9.9.9:53", "[2620:fe::fe]:53", "[2620:fe::9]:5353"})
			}},
		{"24:00 ends the day", "schedules: {all-day: {days: [Monday, SUN], from: \"00:00\", to: \"24:00\"}}\n",
			func(c *Config) bool {
				s := c.Schedules["all-day"]
				return s.From == 0 && s.To == 0 && reflect.DeepEqual(s.Days, []time.Weekday{time.Sunday, time.Monday})
			}},
		{"from == to is accepted", "schedules: {s: {days: [fri], from: \"22:00\", to: \"22:00\"}}\n",
			func(c *Config) bool { return c.Schedules["s"].From == 22*60 && c.Schedules["s"].To == 22*60 }},
		{"run_as", "run_as: \" schoolgate \"\n",
			func(c *Config) bool { return c.RunAs == "schoolgate" && c.RunAsLine == 1 }},
		{"overnight", "schedules: {s: {days: [fri], from: \"22:00\", to: \"6:00\"}}\n",
			func(c *Config) bool { return c.Schedules["s"].From == 22*60 && c.Schedules["s"].To == 6*60 }},
		{"listen off", "listen: {proxy: \"\", dns: \"\", admin: \":0\"}\n",
			func(c *Config) bool { return c.Listen.Proxy == "" && c.Listen.DNS == "" && c.Listen.Admin == ":0" }},
		{"transparent listeners", "listen: {transparent_http: \":8080\", transparent_https: \"[::]:8443\"}\n",
			func(c *Config) bool {
				return c.Listen.TransparentHTTP == ":8080" && c.Listen.TransparentHTTPS == "[::]:8443"
			}},
		{"transparent listeners off by default", "timezone: UTC\n",
			func(c *Config) bool { return c.Listen.TransparentHTTP == "" && c.Listen.TransparentHTTPS == "" }},
		{"url scheme dropped", "lists: [{category: streaming, urls: [\"https://www.bbc.co.uk/iplayer\"]}]\n",
			func(c *Config) bool { return reflect.DeepEqual(c.Lists[0].URLs, []string{"www.bbc.co.uk/iplayer"}) }},
		{"relative list paths", "lists: [{category: adult, file: extra.txt, format: hosts}, {ut1: /var/ut1}]\n",
			func(c *Config) bool {
				return c.Lists[0].File == filepath.Join("/srv/sg", "extra.txt") && c.Lists[0].Format == "hosts" && c.Lists[1].UT1 == "/var/ut1"
			}},
		{"extensions", "proxy: {max_connections: 10, block_page: {organisation: Hill School, contact: room 12},\n" +
			"  intercept: {ca_cert: ca.pem, ca_key: ca.key, domains: [youtube.com], categories: [streaming]}}\n" +
			"dns: {rate_limit: 0}\nalerts: {categories: [self-harm], webhook: \"https://hooks.example/x\", file: alerts.jsonl, batch_seconds: 5}\n",
			func(c *Config) bool {
				ic := c.Proxy.Intercept
				return c.Proxy.MaxConnections == 10 && c.Proxy.BlockPage.Organisation == "Hill School" &&
					ic != nil && ic.CACert == "/srv/sg/ca.pem" && ic.CAKey == "/srv/sg/ca.key" &&
					c.DNS.RateLimit == 0 && c.Alerts.File == "/srv/sg/alerts.jsonl" && c.Alerts.BatchSeconds == 5
			}},
		{"content threshold and case", "default_profile: q\nprofiles:\n  q: {content_threshold: 0.4, default: BLOCK, rules: [{action: Allow, categories: [Education, unclassified]}]}\n",
			func(c *Config) bool {
				q := c.Profiles["q"]
				return q.ContentThreshold == 0.4 && q.Default == "block" && q.Rules[0].Action == "allow" &&
					reflect.DeepEqual(q.Rules[0].Categories, []string{"education", "unclassified"})
			}},
		{"youtube_restrict and pseudo-categories", "default_profile: q\nprofiles:\n  q: {safe_search: true, youtube_restrict: Moderate, rules: [{action: block, categories: [ip-literal, ech]}]}\n  r: {safe_search: true}\n",
			func(c *Config) bool {
				q, r := c.Profiles["q"], c.Profiles["r"]
				return q.YouTubeRestrict == "moderate" && r.YouTubeRestrict == "strict" &&
					reflect.DeepEqual(q.Rules[0].Categories, []string{"ip-literal", "ech"})
			}},
		{"anchors and aliases", "schedules:\n  a: &w {days: [mon], from: \"08:00\", to: \"09:00\"}\n  b: *w\n",
			func(c *Config) bool { return c.Schedules["b"].From == 8*60 }},
		{"blocked answer null", "dns: {blocked_answer: NULL_}\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := tt.yaml
			if !strings.Contains(doc, "profiles:") {
				doc += tail
			}
			cfg, err := Parse([]byte(doc), "t.yaml", "/srv/sg")
			if tt.check == nil {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("unexpected result: %+v", cfg)
			}
		})
	}
}

// TestProblems checks every kind of problem, one a case, with its line.
func TestProblems(t *testing.T) {
	// base is appended to each case's YAML unless the case defines profiles.
	const base = "default_profile: p\nprofiles:\n  p: {}\n"
	tests := []struct {
		name, yaml string
		line       int
		msg        string // the problem's message must contain this
	}{
		{"broken yaml", "listen:\n  proxy: [1, 2\nclients: []\n", 2, "broken YAML: did not find expected ',' or ']'"},
		{"bad indentation", "timezone: UTC\n  listen: x\n", 2, "broken YAML: mapping values are not allowed"},
		{"tab", "listen:\n\tproxy: x\n", 2, "broken YAML: found character that cannot start any token"},
		{"two documents", "timezone: UTC\n---\ntimezone: UTC\n", 2, "a second YAML document"},
		{"unknown top key", "timezon: UTC\n", 1, `unknown key "timezon" (did you mean "timezone"?`},
		{"unknown nested key", "log:\n  dir: x\n  retention: 3\n", 3, `unknown key "retention" in log`},
		{"unknown rule key", "profiles:\n  p:\n    rules:\n      - action: block\n        category: [adult]\ndefault_profile: p\n", 5, `unknown key "category" in profiles.p.rules[1]`},
		{"duplicate key", "timezone: UTC\nlog: {dir: x}\ntimezone: UTC\n", 3, `duplicate key "timezone" (first at line 1)`},
		{"duplicate nested key", "listen:\n  proxy: \":1\"\n  proxy: \":2\"\n", 3, `duplicate key "proxy" (first at line 2)`},
		{"merge key", "x: &x {dir: a}\n", 1, `unknown key "x"`},
		{"wrong type mapping", "listen: [a]\n", 1, "listen: expected a mapping, got a list"},
		{"wrong type string", "timezone: {a: b}\n", 1, "timezone: expected a string, got a mapping"},
		{"wrong type int", "log:\n  retention_days: lots\n", 2, `log.retention_days: expected a whole number, got "lots"`},
		{"wrong type bool", "users:\n  require_auth: yes\n", 2, `users.require_auth: expected true or false, got "yes"`},
		{"wrong type list", "profiles:\n  p:\n    rules:\n      - action: allow\n        when: lunch\nschedules: {lunch: {days: [mon], from: \"12:00\", to: \"13:00\"}}\ndefault_profile: p\n", 5, `expected a list, got "lunch" (write [lunch])`},
		{"bad timezone", "\ntimezone: Europe/Londn\n", 2, `unknown timezone "Europe/Londn"`},
		{"run_as not a name", "\nrun_as: \"root; rm\"\n", 2, `run_as: "root; rm" is not a user name`},
		{"run_as a number", "run_as: 1000\n", 1, `run_as: "1000" is not a user name`},
		{"local timezone", "timezone: Local\n", 1, `timezone "Local" depends on the machine`},
		{"bad cidr", "clients:\n  - 10.0.0.0/8\n  - 10.0.0/8\n", 3, `bad CIDR "10.0.0/8" in clients`},
		{"host bits set", "clients:\n  - 10.0.0.1/8\n", 2, "10.0.0.1/8 in clients is not a network address (did you mean 10.0.0.0/8?)"},
		{"bad deny cidr", "proxy:\n  deny_destinations: [\"::1/129\"]\n", 2, `bad CIDR "::1/129" in proxy.deny_destinations`},
		{"bad network cidr", "networks:\n  10.300.0.0/16: p\n", 2, `bad CIDR "10.300.0.0/16" in networks`},
		{"duplicate network", "networks:\n  \"2001:db8::/32\": p\n  \"2001:0db8::/32\": p\n", 3, "network 2001:db8::/32 is listed twice (first at line 2)"},
		{"empty clients", "clients: []\n", 1, "clients is empty"},
		{"bad listen", "listen:\n  proxy: \"127.0.0.1\"\n", 2, `listen.proxy: bad address "127.0.0.1"`},
		{"bad listen host", "listen:\n  dns: \"my host:53\"\n", 2, `"my host" is neither an IP address nor a host name`},
		{"listen port range", "listen:\n  admin: \"127.0.0.1:65536\"\n", 2, "listen.admin: port 65536 out of range (0-65535)"},
		{"listen clash", "listen:\n  proxy: \":3128\"\n  dns: \":3128\"\n", 3, "listen.dns :3128 is also listen.proxy"},
		{"bad transparent listen", "listen:\n  transparent_https: \"8443\"\n", 2, `listen.transparent_https: bad address "8443"`},
		{"transparent listen clash", "listen:\n  transparent_http: \":8080\"\n  transparent_https: \":8080\"\n", 3,
			"listen.transparent_https :8080 is also listen.transparent_http"},
		{"connect port range", "proxy:\n  connect_ports: [443,\n    0]\n", 3, "port 0 out of range (1-65535) in proxy.connect_ports"},
		{"unknown category rule", "profiles:\n  p:\n    rules:\n      - action: block\n        categories: [adult,\n          gamblng]\ndefault_profile: p\n", 6, `unknown category "gamblng" (did you mean "gambling"? known: adult, gambling,`},
		{"unknown category list", "lists:\n  - category: porn\n    domains: [x.example]\n", 2, `unknown category "porn" (known: adult,`},
		{"pseudo-category in list", "lists:\n  - category: ip-literal\n    domains: [x.example]\n", 2, "ip-literal cannot be given to a list"},
		{"bad youtube_restrict", "profiles:\n  p:\n    safe_search: true\n    youtube_restrict: lax\ndefault_profile: p\n", 4, `profiles.p.youtube_restrict: bad value "lax" (want strict or moderate)`},
		{"unclassified in list", "lists:\n  - category: unclassified\n    domains: [x.example]\n", 2, "unclassified cannot be given to a list"},
		{"unknown category alerts", "alerts:\n  file: a.jsonl\n  categories: [selfharm]\n", 3, `unknown category "selfharm" (did you mean "self-harm"?`},
		{"unknown schedule when", "profiles:\n  p:\n    rules:\n      - action: allow\n        when: [lnch]\nschedules: {lunch: {days: [mon], from: \"12:00\", to: \"13:00\"}}\ndefault_profile: p\n", 5, `unknown schedule "lnch" (did you mean "lunch"? known: lunch)`},
		{"unknown schedule when_not", "profiles:\n  p:\n    rules:\n      - action: allow\n        when_not: [school]\ndefault_profile: p\n", 5, `unknown schedule "school" (no schedules are defined)`},
		{"unknown profile network", "networks:\n  10.0.0.0/8: staf\nprofiles: {staff: {}}\ndefault_profile: staff\n", 2, `unknown profile "staf" (did you mean "staff"?`},
		{"unknown default profile", "profiles: {staff: {}}\n\ndefault_profile: pupils\n", 3, `unknown profile "pupils" (known: staff)`},
		{"default profile missing", "profiles: {staff: {}}\n", 1, "default_profile is missing"},
		{"no profiles", "default_profile: p\n", 0, "no profiles"},
		{"empty profiles", "default_profile: p\nprofiles: {}\n", 2, "no profiles"},
		{"bad profile name", "profiles:\n  p: {}\n  \"a b\": {}\ndefault_profile: p\n", 3, `bad profile name "a b"`},
		{"bad action", "profiles:\n  p:\n    rules:\n      - action: deny\ndefault_profile: p\n", 4, `bad action "deny" (want allow or block)`},
		{"missing action", "profiles:\n  p:\n    rules:\n      - categories: [adult]\ndefault_profile: p\n", 4, "rule has no action"},
		{"bad default", "profiles:\n  p:\n    default: deny\ndefault_profile: p\n", 3, `bad default "deny" (want allow or block)`},
		{"bad day", "schedules:\n  s:\n    days: [mon, funday]\n    from: \"08:00\"\n    to: \"09:00\"\n", 3, `bad day "funday"`},
		{"bad from", "schedules:\n  s:\n    days: [mon]\n    from: \"8:60\"\n    to: \"09:00\"\n", 4, `bad time "8:60" (want HH:MM, 00:00 to 23:59)`},
		{"24:00 only as to", "schedules:\n  s:\n    days: [mon]\n    from: \"24:00\"\n    to: \"09:00\"\n", 4, `bad time "24:00"`},
		{"bad to", "schedules:\n  s:\n    days: [mon]\n    from: \"08:00\"\n    to: 9am\n", 5, `bad time "9am" (want HH:MM, 00:00 to 24:00)`},
		{"schedule no days", "schedules:\n  s:\n    days: []\n    from: \"08:00\"\n    to: \"09:00\"\n", 3, `schedule "s" has no days`},
		{"listen clash with default", "listen:\n  proxy: \"127.0.0.1:5300\"\n", 2, "listen.proxy 127.0.0.1:5300 is also the default of listen.dns: set listen.dns too"},
		{"schedule missing keys", "schedules:\n  s: {days: [mon]}\n", 2, `schedule "s" needs from, to`},
		{"list no source", "lists:\n  - category: adult\n", 2, "list entry has no source"},
		{"list two sources", "lists:\n  - category: adult\n    file: a.txt\n    ut1: /x\n", 2, "list entry has 2 sources (file, ut1)"},
		{"list no category", "lists:\n  - domains: [a.example]\n", 2, "list entry has no category"},
		{"list ut1 with category", "lists:\n  - ut1: /x\n    category: adult\n", 3, "category is not used with ut1"},
		{"list unknown format", "lists:\n  - category: adult\n    file: a.txt\n    format: csv\n", 4, `unknown list format "csv"`},
		{"list format without file", "lists:\n  - category: adult\n    domains: [a.example]\n    format: hosts\n", 2, "format is only used with file"},
		{"list domain wildcard", "lists:\n  - category: adult\n    domains:\n      - \"*.a.example\"\n", 4, "without \"*.\""},
		{"bad upstream", "dns:\n  upstreams: [\"9.9.9.9:53\", \"dns.quad9.net:53\"]\n", 2, `bad upstream "dns.quad9.net:53": "dns.quad9.net" is not an IP address`},
		{"bad upstream port", "dns:\n  upstreams:\n    - \"9.9.9.9:0\"\n", 3, `bad upstream "9.9.9.9:0": port 0 out of range (1-65535)`},
		{"empty upstreams", "dns:\n  upstreams: []\n", 2, "dns.upstreams is empty"},
		{"bad blocked answer", "dns:\n  blocked_answer: refused\n", 2, `bad blocked_answer "refused" (want nxdomain or null)`},
		{"negative rate limit", "dns:\n  rate_limit: -5\n", 2, "dns.rate_limit must not be negative, got -5"},
		{"negative retention", "log:\n  retention_days: -1\n", 2, "log.retention_days must not be negative"},
		{"zero cache", "cache:\n  verdicts: 0\n", 2, "cache.verdicts must be at least 1"},
		{"huge number", "cache:\n  dns: 99999999999999\n", 2, "cache.dns: number 99999999999999 is too large"},
		{"threshold range", "profiles:\n  p:\n    content_threshold: 1.5\ndefault_profile: p\n", 3, "content_threshold 1.5 out of range (0 to 1)"},
		{"threshold type", "profiles:\n  p:\n    content_threshold: high\ndefault_profile: p\n", 3, `expected a number, got "high"`},
		{"threshold nan", "profiles:\n  p:\n    content_threshold: .nan\ndefault_profile: p\n", 3, "expected a number"},
		{"webhook scheme", "alerts:\n  categories: [adult]\n  webhook: ftp://x.example/\n", 3, `alerts.webhook "ftp://x.example/" is not an http or https URL`},
		{"alerts nowhere", "alerts:\n  categories: [adult]\n", 1, "neither alerts.webhook nor alerts.file"},
		{"alerts batch", "alerts:\n  batch_seconds: 0\n", 2, "alerts.batch_seconds must be at least 1"},
		{"intercept without ca", "proxy:\n  intercept:\n    domains: [a.example]\n", 2, "proxy.intercept needs both ca_cert and ca_key"},
		{"auth without users", "users:\n  require_auth: true\n", 2, "users.require_auth is true but neither users.file nor users.ldap"},
		{"empty log dir", "log:\n  dir: \"\"\n", 2, "log.dir is empty"},
		{"rule domain path", "profiles:\n  p:\n    rules:\n      - action: block\n        domains: [a.example/x]\ndefault_profile: p\n", 5, `domain "a.example/x" has a path`},
		{"not a mapping", "- a\n- b\n", 1, "the config: expected a mapping of keys (timezone, listen, ...), got a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := tt.yaml
			if !strings.Contains(doc, "profiles:") && !strings.Contains(doc, "default_profile:") &&
				!strings.HasPrefix(tt.name, "broken") && !strings.HasPrefix(tt.name, "not a") &&
				!strings.HasPrefix(tt.name, "bad indent") && tt.name != "tab" && tt.name != "two documents" {
				doc += base
			}
			_, err := Parse([]byte(doc), "t.yaml", "")
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("want Problems, got %v", err)
			}
			if len(ps) != 1 {
				t.Fatalf("want exactly 1 problem, got %d:\n%v", len(ps), ps)
			}
			p := ps[0]
			if p.File != "t.yaml" || p.Line != tt.line || !strings.Contains(p.Msg, tt.msg) {
				t.Errorf("got  %s\nwant t.yaml:%d: ...%s...", p, tt.line, tt.msg)
			}
			if p.Msg != strings.ToLower(p.Msg[:1])+p.Msg[1:] {
				t.Errorf("message does not start in lower case: %q", p.Msg)
			}
		})
	}
}

// TestManyProblems checks that every problem of a file is reported, in
// line order, with its line.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("x: &d [")
	for i := range 1000 {
		fmt.Fprintf(&b, "a%d.example, ", i)
	}
	b.WriteString("]\nlists:\n")
	for range 1100 {
		b.WriteString("  - {category: adult, domains: *d}\n")
	}
	b.WriteString("default_profile: p\nprofiles: {p: {}}\n")
	start := time.Now()
	_, err := Parse([]byte(b.String()), "bomb.yaml", "")
	if err == nil || !strings.Contains(err.Error(), "too many entries") {
		t.Errorf("want a too-many-entries problem, got %.300v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %v", d)
	}
}

func BenchmarkParseExample(b *testing.B) {
	data, err := os.ReadFile(testenv.ExampleConfig(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, "example.yaml", "/etc/schoolgate"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestManyProblems(t *testing.T) {
	data, err := os.ReadFile("testdata/many-problems.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(data, "many-problems.yaml", "")
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %v", err)
	}
	want := []struct {
		line int
		msg  string
	}{
		{3, `unknown timezone "Mars/Olympus_Mons"`},
		{6, `listen.dns: port 99999 out of range`},
		{7, `unknown key "admn" in listen`},
		{10, "10.0.0.1/8 in clients is not a network address"},
		{14, `bad blocked_answer "refuse"`},
		{17, `unknown profile "teachers"`},
		{21, `bad day "someday"`},
		{22, `bad time "8.30"`},
		{27, `unknown category "gamblng"`},
		{32, `bad action "deny"`},
		{33, `unknown category "socal"`},
		{34, `unknown schedule "lunchtime"`},
		{35, `bad default "maybe"`},
		{38, `duplicate key "log" (first at line 37)`},
	}
	if len(ps) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(ps), len(want), ps)
	}
	for i := range min(len(ps), len(want)) {
		if ps[i].Line != want[i].line || !strings.Contains(ps[i].Msg, want[i].msg) {
			t.Errorf("problem %d: got %s, want line %d: %s", i, ps[i], want[i].line, want[i].msg)
		}
	}
	if !strings.HasPrefix(err.Error(), "many-problems.yaml:3: unknown timezone") {
		t.Errorf("Error() = %q", err.Error())
	}
}

// Review findings: a URL entry under a list's domains is a URL entry
// (docs/contract.md §3), a bare YAML null is the `null` blocked answer the example
// config's comment offers, and every problem has a line.
func TestReviewedForms(t *testing.T) {
	base := "default_profile: p\nprofiles:\n  p: {}\n"
	cfg, err := Parse([]byte(base+"lists:\n  - category: games\n    domains: [example.org/games, \"http://b.example/x\", c.example]\ndns:\n  blocked_answer: null\n"), "t.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Lists[0].Domains, " "); got != "example.org/games b.example/x c.example" {
		t.Errorf("list domains = %q", got)
	}
	if cfg.DNS.BlockedAnswer != "null" {
		t.Errorf("blocked_answer = %q, want null", cfg.DNS.BlockedAnswer)
	}
	for _, tc := range []struct{ yaml, want string }{
		{base + "dns:\n  blocked_answer: ~\n", "t.yaml:5: bad blocked_answer"},
		{"\tdefault_profile: p\n" + base, "t.yaml:1: broken YAML: found character that cannot start any token"},
		{"profiles:\n  p: {}\n", "t.yaml:1: default_profile is missing"},
	} {
		_, err := Parse([]byte(tc.yaml), "t.yaml", "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// The embedded default must start on a stock Debian machine: its ports may
// not be ones a standard service holds (5353 is mDNS, which avahi binds).
func TestEmbeddedPortsAreNotStandardServices(t *testing.T) {
	data, err := os.ReadFile("/etc/services")
	if err != nil {
		t.Skipf("no /etc/services to check against: %v", err)
	}
	taken := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(strings.SplitN(line, "#", 2)[0])
		if len(f) >= 2 {
			taken[strings.SplitN(f[1], "/", 2)[0]] = f[0]
		}
	}
	cfg := Embedded()
	for name, addr := range map[string]string{"dns": cfg.Listen.DNS, "proxy": cfg.Listen.Proxy, "admin": cfg.Listen.Admin} {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("listen.%s %q: %v", name, addr, err)
		}
		if svc, ok := taken[port]; ok {
			t.Errorf("embedded listen.%s %s uses the port of %q (/etc/services)", name, addr, svc)
		}
	}
	if Default().Listen.DNS != cfg.Listen.DNS {
		t.Errorf("Default().Listen.DNS %q differs from the embedded %q", Default().Listen.DNS, cfg.Listen.DNS)
	}
}

// The policy keeps the open schedules as the bits of one word: a config
// with more than MaxSchedules is refused here, at the schedules line.
func TestTooManySchedules(t *testing.T) {
	var b strings.Builder
	b.WriteString("default_profile: p\nprofiles: {p: {}}\nschedules:\n")
	for i := range MaxSchedules + 1 {
		fmt.Fprintf(&b, "  s%d: {days: [mon], from: \"08:00\", to: \"09:00\"}\n", i)
	}
	_, err := Parse([]byte(b.String()), "t.yaml", "")
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Line != 4 || !strings.Contains(ps[0].Msg, "at most 64") {
		t.Fatalf("Parse = %v, want one problem at line 4 naming the limit", err)
	}
}

// The shipped configs (and the documented example) leave deny_destinations out, so that the default
// (loopback, link-local and the gateway's own addresses) holds: listing
// it would drop the gateway's own addresses (issue 19 item 9).
func TestShippedConfigsKeepTheDefaultDenyDestinations(t *testing.T) {
	for _, path := range []string{"default.yaml", "../packaging/debian/schoolgate.yaml", "../docs/example.yaml"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := Parse(b, path, t.TempDir())
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("%s: %v", path, err)
			}
		}
		if cfg == nil {
			continue
		}
		if cfg.Proxy.DenyDestinationsSet {
			t.Errorf("%s lists proxy.deny_destinations: the gateway's own addresses would be reachable through the proxy", path)
		}
	}
}

// wantErr fails the test unless err is nil where want is "" and an
// error that says want otherwise.
func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}
}
