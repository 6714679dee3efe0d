package policy

import (
	"net/netip"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/config"
)

// lockinSnapshot is the example config with bbc.co.uk/bitesize as
// education, a junior profile on YouTube's moderate mode, ip-literal and
// ech blocked for students and a profile blocking bing.com.
func lockinSnapshot(t *testing.T) *Snapshot {
	t.Helper()
	cfg := exampleConfig(t)
	st := cfg.Profiles["student"]
	st.Rules = append([]config.Rule{{Action: "block", Categories: []string{"ip-literal", "ech"}, Line: 57}}, st.Rules...)
	cfg.Profiles["student"] = st
	cfg.Profiles["junior"] = config.Profile{SafeSearch: true, YouTubeRestrict: "moderate", Default: "allow",
		Rules: []config.Rule{{Action: "block", Domains: []string{"bing.com"}, Line: 90}}}
	cfg.Networks = append(cfg.Networks, config.Network{Prefix: netip.MustParsePrefix("10.30.0.0/16"), Profile: "junior", Line: 40})
	b := categories.NewBuilder()
	for _, e := range []struct {
		entry string
		c     categories.Category
	}{
		{"bbc.co.uk/iplayer", categories.Streaming},
		{"bbc.co.uk/bitesize", categories.Education},
		{"youtube.com", categories.Education},
	} {
		b.Add(e.entry, e.c)
	}
	return mustCompile(t, cfg, b.Build(), testUsers())
}

var (
	studentIP = netip.MustParseAddr("10.10.1.7")
	staffIP   = netip.MustParseAddr("10.20.1.7")
	juniorIP  = netip.MustParseAddr("10.30.1.7")
)

// decideBoth decides a with the snapshot and through a caching engine
// (twice, so that the second comes from the cache) and fails unless all
// three agree.
func decideBoth(t *testing.T, s *Snapshot, a Args) Decision {
	t.Helper()
	d := s.Decide(a)
	e := NewEngine(s, 100, nil)
	for i := 0; i < 2; i++ {
		if got := e.Decide(a); got != d {
			t.Fatalf("engine decision %d %+v differs from the snapshot's %+v", i, got, d)
		}
	}
	return d
}

func TestSafeSearchDecision(t *testing.T) {
	s := lockinSnapshot(t)
	when := at(t, london(t), "2026-11-24 10:00")
	for _, tt := range []struct {
		name   string
		ip     netip.Addr
		host   string
		target string // "" for no lock
		header string
	}{
		{"student google", studentIP, "www.google.com", "forcesafesearch.google.com", ""},
		{"student google country", studentIP, "www.google.co.uk", "forcesafesearch.google.com", ""},
		{"student bing", studentIP, "www.bing.com", "strict.bing.com", ""},
		{"student duckduckgo", studentIP, "duckduckgo.com", "safe.duckduckgo.com", ""},
		{"student youtube strict", studentIP, "www.youtube.com", "restrict.youtube.com", "Strict"},
		{"junior youtube moderate", juniorIP, "m.youtube.com", "restrictmoderate.youtube.com", "Moderate"},
		{"junior bing blocked: no lock", juniorIP, "www.bing.com", "", ""},
		{"staff has no safe_search", staffIP, "www.google.com", "", ""},
		{"not an engine", studentIP, "notgoogle.com", "", ""},
		{"engine's own target", studentIP, "forcesafesearch.google.com", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := decideBoth(t, s, Args{IP: tt.ip, Host: tt.host, Path: "/search?q=x", Time: when})
			switch {
			case tt.target == "" && d.SafeSearch != nil:
				t.Errorf("lock %+v, want none", *d.SafeSearch)
			case tt.target == "":
			case d.SafeSearch == nil:
				t.Errorf("no lock, want %s (decision %+v)", tt.target, d)
			case d.SafeSearch.Target != tt.target || d.SafeSearch.HeaderValue != tt.header:
				t.Errorf("lock %+v, want target %s header %q", *d.SafeSearch, tt.target, tt.header)
			}
		})
	}
}

func TestLockQuery(t *testing.T) {
	g, b := &ssGoogle, &ssBing
	for _, tt := range []struct {
		ss       *SafeSearch
		in, want string
	}{
		{g, "", "safe=active"},
		{g, "q=cats", "q=cats&safe=active"},
		{g, "q=cats&safe=off", "q=cats&safe=active"},
		{g, "safe=off&q=cats&safe=images", "q=cats&safe=active"},
		{g, "SAFE=off&q=cats", "q=cats&safe=active"},
		{g, "s%61fe=off&q=cats", "q=cats&safe=active"},
		{g, "safe&q=a%26b", "q=a%26b&safe=active"},
		{g, "q=safe%3Doff", "q=safe%3Doff&safe=active"},
		{g, "safesearch=off", "safesearch=off&safe=active"},
		{b, "q=x&adlt=off", "q=x&adlt=strict"},
		{&ssYouTube, "v=1", "v=1"},
	} {
		if got := tt.ss.LockQuery(tt.in); got != tt.want {
			t.Errorf("%s LockQuery(%q) = %q, want %q", tt.ss.Engine, tt.in, got, tt.want)
		}
	}
}

// TestPathReadings: a URL entry cannot be walked round with an encoded
// separator; the decision names the reading it was made on.
func TestPathReadings(t *testing.T) {
	s := lockinSnapshot(t)
	loc := london(t)
	class, lunch := at(t, loc, "2026-11-24 10:00"), at(t, loc, "2026-11-24 12:30")
	for _, tt := range []struct {
		name     string
		ip       netip.Addr
		path     string
		when     time.Time
		verdict  Verdict
		decided  string // Decision.Path
		category string
	}{
		{"plain", studentIP, "/iplayer/live", class, Block, "", "streaming"},
		{"encoded slash", studentIP, "/%2Fiplayer", class, Block, "/iplayer", "streaming"},
		{"encoded walk from education", studentIP, "/bitesize%2F..%2Fiplayer", class, Block, "/iplayer", "streaming"},
		{"lower-case escape", studentIP, "/bitesize%2f..%2fiplayer/x", class, Block, "/iplayer/x", "streaming"},
		{"backslash", studentIP, "/bitesize%5C..%5Ciplayer", class, Block, "/iplayer", "streaming"},
		{"servlet parameters", studentIP, "/bitesize/..;/iplayer", class, Block, "/iplayer", "streaming"},
		{"double encoded", studentIP, "/bitesize%252F..%252Fiplayer", class, Block, "/iplayer", "streaming"},
		{"education as sent", studentIP, "/bitesize/maths", class, Allow, "", "education"},
		{"encoded slash inside education", studentIP, "/bitesize%2Fmaths", class, Allow, "", "education"},
		{"staff at lunch: every reading allowed", staffIP, "/%2Fiplayer", lunch, Allow, "", "unclassified"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := decideBoth(t, s, Args{IP: tt.ip, Host: "www.bbc.co.uk", Path: tt.path, Time: tt.when})
			if d.Verdict != tt.verdict || d.Path != tt.decided || d.Categories.String() != tt.category {
				t.Errorf("%s: %v %q %v (%s), want %v %q %s", tt.path, d.Verdict, d.Path, d.Categories, d.Rule,
					tt.verdict, tt.decided, tt.category)
			}
		})
	}
}

func TestHidden(t *testing.T) {
	for _, tt := range []struct {
		name string
		host string
		h    Hello
		want categories.Set
	}{
		{"name, no ECH", "www.example.com", Hello{SNI: "www.example.com"}, 0},
		{"name, GREASE ECH (SNI is the host)", "www.example.com", Hello{SNI: "www.example.com", ECH: true}, 0},
		{"ECH with another outer name", "www.example.com", Hello{SNI: "public.example.net", ECH: true}, categories.SetOf(categories.ECH)},
		{"ECH to a shared front", "cloudflare-ech.com", Hello{SNI: "cloudflare-ech.com", ECH: true}, categories.SetOf(categories.ECH)},
		{"ECH without a name", "www.example.com", Hello{ECH: true}, categories.SetOf(categories.ECH)},
		{"IP, no SNI", "203.0.113.7", Hello{}, categories.SetOf(categories.IPLiteral)},
		{"IPv6, no SNI", "2001:db8::7", Hello{}, categories.SetOf(categories.IPLiteral)},
		{"IP, SNI elsewhere", "203.0.113.7", Hello{SNI: "www.example.com"}, categories.SetOf(categories.IPLiteral)},
		{"IP, SNI resolving to it", "203.0.113.7", Hello{SNI: "www.example.com", SNIHasHost: true}, 0},
		{"IP, SNI resolving to it, GREASE", "203.0.113.7", Hello{SNI: "www.example.com", SNIHasHost: true, ECH: true}, 0},
		{"IP, no SNI, ECH", "203.0.113.7", Hello{ECH: true}, categories.SetOf(categories.IPLiteral, categories.ECH)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Hidden(tt.host, tt.h); got != tt.want {
				t.Errorf("Hidden(%q, %+v) = %v, want %v", tt.host, tt.h, got, tt.want)
			}
		})
	}
}

// TestSeen: the pseudo-categories decide for the profiles whose rules
// name them, and the verdict cache keeps them apart.
func TestSeen(t *testing.T) {
	s := lockinSnapshot(t)
	when := at(t, london(t), "2026-11-24 10:00")
	e := NewEngine(s, 100, nil)
	for _, tt := range []struct {
		name    string
		ip      netip.Addr
		host    string
		seen    categories.Set
		verdict Verdict
		rule    string
		cats    string
	}{
		{"student, address, nothing hidden", studentIP, "203.0.113.7", 0, Allow, "student#default", "unclassified"},
		{"student, ip-literal", studentIP, "203.0.113.7", categories.SetOf(categories.IPLiteral), Block, "student#1", "ip-literal"},
		{"student, ech", studentIP, "www.example.com", categories.SetOf(categories.ECH), Block, "student#1", "ech"},
		{"staff, ip-literal", staffIP, "203.0.113.7", categories.SetOf(categories.IPLiteral), Allow, "staff#default", "ip-literal"},
		{"staff, ech on a gambling host", staffIP, "bet.example", categories.SetOf(categories.ECH), Allow, "staff#default", "ech"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := Args{IP: tt.ip, Host: tt.host, Time: when, Seen: tt.seen}
			for _, d := range []Decision{s.Decide(a), e.Decide(a), e.Decide(a)} {
				if d.Verdict != tt.verdict || d.Rule != tt.rule || d.Categories.String() != tt.cats {
					t.Errorf("%v %s [%v], want %v %s [%s]", d.Verdict, d.Rule, d.Categories, tt.verdict, tt.rule, tt.cats)
				}
			}
		})
	}
}
