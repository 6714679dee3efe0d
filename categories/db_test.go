package categories

import (
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"testing"

	"golang.org/x/net/idna"
)

func TestNormalizeHost(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"www.bet365.com", "www.bet365.com", true},
		{"WWW.Bet365.COM", "www.bet365.com", true},
		{"www.bet365.com.", "www.bet365.com", true},
		{"www.bet365.com..", "www.bet365.com", true},
		{"www.bet365.com:443", "www.bet365.com", true},
		{"www.bet365.com.:8080", "www.bet365.com", true},
		{"user@www.bet365.com", "www.bet365.com", true},
		{"user:p@ss@WWW.bet365.com:443", "www.bet365.com", true},
		{"bücher.de", "xn--bcher-kva.de", true},
		{"BÜCHER.de", "xn--bcher-kva.de", true},
		{"xn--bcher-kva.de", "xn--bcher-kva.de", true},
		{"XN--BCHER-KVA.DE", "xn--bcher-kva.de", true},
		{"sportfogadás.com", "xn--sportfogads-t7a.com", true},
		{"ｅｘａｍｐｌｅ．com", "example.com", true}, // full-width, mapped by UTS #46
		{"faß.de", "xn--fa-hia.de", true},    // non-transitional
		{"bücher_x.de", "xn--bcher_x-n2a.de", true},
		{"-a.bücher.de", "-a.xn--bcher-kva.de", true}, // as lenient as ASCII
		{"-a.example.com", "-a.example.com", true},
		{"例え.テスト", "xn--r8jz45g.xn--zckzah", true},
		{"x\u200dy.de", "", false}, // a joiner where none may be
		{"a_b.example.com", "a_b.example.com", true},
		{"_dmarc.example.com", "_dmarc.example.com", true},
		{"localhost", "localhost", true},
		{"1.2.3.4", "1.2.3.4", true},
		{"1.2.3.4:80", "1.2.3.4", true},
		{"[::1]", "::1", true},
		{"[::1]:80", "::1", true},
		{"[2001:DB8::1]:443", "2001:db8::1", true},
		{"2001:db8::1", "2001:db8::1", true},
		{"", "", false},
		{".", "", false},
		{"..", "", false},
		{"a..b", "", false},
		{".example.com", "", false},
		{"exa mple.com", "", false},
		{"*.example.com", "", false},
		{"example.com/path", "", false},
		{"example.com:http", "", false},
		{"example.com:123456", "", false},
		{"1.2.3", "", false},
		{"999.1.1.1", "", false},
		{"[1.2.3.4]", "", false},
		{"[::1", "", false},
		{"xn--zz.com", "", false},
		{"ex\\.ample.com", "", false},
		{"a(b).com", "", false},
		{string(make([]byte, 64)) + ".com", "", false},
		{repeat("a", 64) + ".com", "", false},
		{repeat("a", 63) + ".com", repeat("a", 63) + ".com", true},
		{repeat("abcdefg.", 32) + "com", "", false}, // 259 bytes
		{repeat("abcdefg.", 31) + "com", repeat("abcdefg.", 31) + "com", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := NormalizeHost(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("NormalizeHost(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
			if ok {
				again, ok2 := NormalizeHost(got)
				if again != got || !ok2 {
					t.Fatalf("not idempotent: %q -> %q, %v", got, again, ok2)
				}
			}
		})
	}
}

func repeat(s string, n int) string {
	out := ""
	for i := 0; i < n; i++ {
		out += s
	}
	return out
}

func TestNormalizeHostFastPathAllocs(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := NormalizeHost("www.some-site.example.co.uk"); !ok {
			t.Fatal("rejected")
		}
	})
	if allocs != 0 {
		t.Fatalf("NormalizeHost allocates %v times on a canonical name", allocs)
	}
}

func TestSplitTarget(t *testing.T) {
	tests := []struct {
		in         string
		host, path string
		ok         bool
	}{
		{"https://user@WWW.Bet365.com:443/en?x=1", "www.bet365.com", "/en?x=1", true},
		{"www.bet365.com", "www.bet365.com", "", true},
		{"bet365.com/path", "bet365.com", "/path", true},
		{"bet365.com/", "bet365.com", "/", true},
		{"http://[::1]:80/", "::1", "/", true},
		{"HTTP://Example.com", "example.com", "", true},
		{"http://example.com?q=1", "example.com", "/?q=1", true},
		{"http://example.com/a#frag", "example.com", "/a", true},
		{"http://example.com#frag", "example.com", "", true},
		{"//example.com/x", "example.com", "/x", true},
		{"  example.com  ", "example.com", "", true},
		{"http://bücher.de/ä", "xn--bcher-kva.de", "/ä", true},
		{"https://", "", "", false},
		{"", "", "", false},
		{"/just/a/path", "", "", false},
		{"http://exa mple.com/", "", "", false},
		{"http://example.com:port/", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			host, path, ok := SplitTarget(tt.in)
			if host != tt.host || path != tt.path || ok != tt.ok {
				t.Fatalf("SplitTarget(%q) = %q, %q, %v; want %q, %q, %v",
					tt.in, host, path, ok, tt.host, tt.path, tt.ok)
			}
		})
	}
}

// testDB builds the database the matching tests share.
func testDB(t testing.TB) *DB {
	t.Helper()
	b := NewBuilder()
	for _, e := range []struct {
		entry string
		c     Category
	}{
		{"bet365.com", Gambling},
		{"youtube.com", Streaming},
		{"youtube.com", Education}, // a school's own list naming the same entry
		{"music.youtube.com", Streaming},
		{"bbc.co.uk", Education},
		{"bbc.co.uk/iplayer", Streaming},
		{"bbc.co.uk/iplayer/live", Streaming},
		{"bbc.co.uk/iplayer/live", Social}, // same URL entry from another list
		{"news.bbc.co.uk/sport", Games},
		{"bbc.co.uk/sport", Forums},
		{"example.org/A%7eb/%c3%a9t%C3%A9", Hacking},
		{"example.org/forum?f=25", Forums},
		{"example.org/truncated/pa...", Piracy},
		{"example.org/frag#p2", Hate},
		{"theonion.com/bin/onionimp\\.cgi\\?ticker2\\.gif", Malware},
		{"xn--bcher-kva.de", Shopping},
		{"ＳＰＯＲＴＦＯＧＡＤÁＳ.com", Gambling},
		{".afshin.ir", Malware},
		{"WWW.Guruofporn.com.", Adult},
		{"12.5.179.24/meth_info", Malware},
		{"https://www.Example.net/Path", Phishing},
	} {
		if !b.Add(e.entry, e.c) {
			t.Fatalf("Add(%q) refused", e.entry)
		}
	}
	return b.Build()
}

func TestLookup(t *testing.T) {
	db := testDB(t)
	tests := []struct {
		name, target string
		want         []Category
	}{
		{"exact", "bet365.com", []Category{Gambling}},
		{"subdomain", "www.bet365.com", []Category{Gambling}},
		{"deep subdomain", "a.b.c.d.bet365.com", []Category{Gambling}},
		{"case", "WWW.BET365.COM", []Category{Gambling}},
		{"trailing dot", "www.bet365.com.", []Category{Gambling}},
		{"port", "www.bet365.com:443", []Category{Gambling}},
		{"userinfo", "https://bob:pw@www.bet365.com/", []Category{Gambling}},
		{"label boundary", "notbet365.com", nil},
		{"label boundary 2", "bet365.com.evil.org", nil},
		{"parent not matched", "com", nil},
		{"union of lists", "www.youtube.com", []Category{Education, Streaming}},
		{"most specific", "music.youtube.com", []Category{Streaming}},
		{"most specific deeper", "x.music.youtube.com", []Category{Streaming}},
		{"domain only without path", "bbc.co.uk", []Category{Education}},
		{"url entry beats domain", "https://www.bbc.co.uk/iplayer/episode/1", []Category{Streaming}},
		{"longest url entry, union", "https://bbc.co.uk/iplayer/live/bbcone", []Category{Social, Streaming}},
		{"url prefix on boundary not required", "https://bbc.co.uk/iplayerx", []Category{Streaming}},
		{"url path case-sensitive", "https://bbc.co.uk/IPLAYER", []Category{Education}},
		{"url host more specific wins", "https://news.bbc.co.uk/sport/football", []Category{Games}},
		{"url on other host", "https://www.bbc.co.uk/sport/x", []Category{Forums}},
		{"url no match falls back to domain", "https://bbc.co.uk/news", []Category{Education}},
		{"host-only ignores url entries", "news.bbc.co.uk", []Category{Education}},
		{"percent normalised both sides", "http://example.org/%41~b/%C3%A9t%c3%a9/page", []Category{Hacking}},
		{"percent request decoded", "http://example.org/A~b/%c3%A9t%c3%a9", []Category{Hacking}},
		{"query is part of prefix", "http://example.org/forum?f=25&t=3", []Category{Forums}},
		{"query differs", "http://example.org/forum?f=26", nil},
		{"truncated entry", "http://example.org/truncated/path/more", []Category{Piracy}},
		{"fragment dropped from entry", "http://example.org/frag", []Category{Hate}},
		{"regex escapes dropped", "http://theonion.com/bin/onionimp.cgi?ticker2.gif", []Category{Malware}},
		{"idn unicode vs punycode entry", "bücher.de", []Category{Shopping}},
		{"idn punycode vs unicode entry", "www.xn--sportfogads-t7a.com", []Category{Gambling}},
		{"leading dot entry", "www.afshin.ir", []Category{Malware}},
		{"entry trailing dot and case", "guruofporn.com", nil},
		{"entry trailing dot and case 2", "www.guruofporn.com", []Category{Adult}},
		{"ip url entry", "http://12.5.179.24/meth_info/x", []Category{Malware}},
		{"ip url entry other path", "http://12.5.179.24/other", nil},
		{"scheme in entry", "http://www.example.net/Path/x", []Category{Phishing}},
		{"unclassified", "example.com", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, path, ok := SplitTarget(tt.target)
			if !ok {
				t.Fatalf("SplitTarget(%q) failed", tt.target)
			}
			got := db.Lookup(host, path)
			if want := SetOf(tt.want...); got != want {
				t.Fatalf("Lookup(%q, %q) = {%v}, want {%v}", host, path, got, want)
			}
		})
	}
}

func TestHasURLEntries(t *testing.T) {
	db := testDB(t)
	for host, want := range map[string]bool{
		"bbc.co.uk":      true,
		"www.bbc.co.uk":  true,
		"news.bbc.co.uk": true,
		"co.uk":          false,
		"bet365.com":     false,
		"12.5.179.24":    true,
	} {
		if got := db.HasURLEntries(host); got != want {
			t.Errorf("HasURLEntries(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestAddRejectsJunk(t *testing.T) {
	b := NewBuilder()
	for _, e := range []string{
		"", "   ", "com", "snapchat-com", "1.2.3.4", "::1", "[::1]", "*.example.com",
		"ex*ample.com", "example.com:80", "user@example.com", "^example.com",
		"(example).com", "a|b.com", "exa$mple.com", "a\\.b.com", "[a].com",
		"a..b.com", repeat("a", 64) + ".com", "example.com extra",
		"/path/only", "http://", "xn--zz.com",
	} {
		if b.Add(e, Gambling) {
			t.Errorf("Add(%q) accepted junk", e)
		}
	}
	for _, c := range []Category{Unclassified, IPLiteral, ECH} {
		if b.Add("example.com", c) {
			t.Errorf("Add under the pseudo-category %s accepted", c)
		}
	}
	db := b.Build()
	if db.Len() != 0 {
		t.Fatalf("junk made %d entries", db.Len())
	}
	if b.Add("late.example.com", Gambling) {
		t.Fatal("Add after Build accepted")
	}
	if again := b.Build(); again.Len() != 0 {
		t.Fatal("second Build not empty")
	}
}

func TestLenAndDedup(t *testing.T) {
	b := NewBuilder()
	for _, e := range []string{"a.com", "A.com", "a.com.", "b.com", "a.com/x", "A.COM/x", "a.com/y"} {
		b.Add(e, Chat)
	}
	b.Add("a.com", Social)
	db := b.Build()
	if db.Len() != 4 || db.DomainEntries() != 2 || db.URLEntries() != 2 {
		t.Fatalf("Len %d (domains %d, urls %d), want 4 (2, 2)", db.Len(), db.DomainEntries(), db.URLEntries())
	}
	if got := db.Lookup("a.com", ""); got != SetOf(Chat, Social) {
		t.Fatalf("a.com = %v", got)
	}
}

func TestManyEntriesGrow(t *testing.T) {
	b := NewBuilder()
	names := make([]string, 50000)
	for i := range names {
		names[i] = "host" + itoa(i) + ".example" + itoa(i%7) + ".com"
		if !b.Add(names[i], Category(i%int(Unclassified))) {
			t.Fatalf("Add(%q) refused", names[i])
		}
	}
	db := b.Build()
	if db.Len() != len(names) {
		t.Fatalf("Len = %d, want %d", db.Len(), len(names))
	}
	for i, n := range names {
		if got := db.Lookup("x."+n, ""); got != SetOf(Category(i%int(Unclassified))) {
			t.Fatalf("Lookup(x.%s) = %v", n, got)
		}
	}
	if got := db.Lookup("host50000.example0.com", ""); !got.Empty() {
		t.Fatalf("missing name matched: %v", got)
	}
}

func itoa(i int) string { return string(appendInt(nil, i)) }

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

func TestLookupAllocs(t *testing.T) {
	db := testDB(t)
	allocs := testing.AllocsPerRun(100, func() {
		db.Lookup("a.b.www.bet365.com", "")
		db.Lookup("www.bbc.co.uk", "/iplayer/%41%c3%a9")
		db.Lookup("nothing.example", "/x")
	})
	if allocs != 0 {
		t.Fatalf("Lookup allocates %v times", allocs)
	}
}

func TestNilAndEmptyDB(t *testing.T) {
	var db *DB
	if db.Lookup("a.com", "/") != 0 || db.HasURLEntries("a.com") || db.Len() != 0 {
		t.Fatal("nil DB not empty")
	}
	empty := NewBuilder().Build()
	if empty.Lookup("a.com", "/") != 0 || empty.Len() != 0 {
		t.Fatal("empty DB not empty")
	}
	if got := (&DB{}).Lookup("a.b.com", "/x"); got != 0 {
		t.Fatalf("zero DB = %v", got)
	}
}

func TestMapUT1(t *testing.T) {
	tests := map[string]Category{
		"audio-video": Streaming, "radio": Streaming, "social_networks": Social,
		"redirector": ProxyAvoidance, "strict_redirector": ProxyAvoidance,
		"strong_redirector": ProxyAvoidance, "vpn": ProxyAvoidance,
		"residential-proxies": ProxyAvoidance, "warez": Piracy, "agressif": Violence,
		"drogue": Drugs, "mixed_adult": Adult, "adult": Adult, "arjel": Gambling,
		"gambling": Gambling, "cryptojacking": Malware, "malware": Malware,
		"ddos": Hacking, "hacking": Hacking, "download": Downloads,
		"filehosting": Downloads, "educational_games": Education,
		"liste_bu": Education, "liste_blanche": Education, "chat": Chat,
		"dating": Dating, "doh": DoH, "forums": Forums, "games": Games,
		"phishing": Phishing, "shopping": Shopping, "webmail": Webmail,
		"Audio-Video": Streaming,
	}
	for name, want := range tests {
		if got, ok := MapUT1(name); !ok || got != want {
			t.Errorf("MapUT1(%q) = %v, %v; want %v", name, got, ok, want)
		}
	}
	for _, name := range []string{"publicite", "bank", "jobsearch", "child", "unclassified", "", "blog"} {
		if c, ok := MapUT1(name); ok {
			t.Errorf("MapUT1(%q) = %v, want no mapping", name, c)
		}
	}
}

func TestSetNamesSorted(t *testing.T) {
	got := SetOf(Streaming, Education, Adult).Names()
	if want := []string{"adult", "education", "streaming"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Names = %v", got)
	}
}

// TestLongestPathEntryRandom checks the binary search against a scan of
// every entry, on random paths over a tiny alphabet so that prefixes,
// near-misses and escapes are common.
func TestLongestPathEntryRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"/", "a", "b", "?", "%41", "%2f", "%2F", "~", "%7e", "."}
	randPath := func(n int) string {
		p := "/"
		for i := rng.IntN(n); i > 0; i-- {
			p += alphabet[rng.IntN(len(alphabet))]
		}
		return p
	}
	// paths too long for longestPathEntry's buffer take the unit-by-unit way
	long := "/" + strings.Repeat("a", 1100)
	list := []urlEntry{{path: "/a", set: SetOf(Chat)}, {path: long + "A", set: SetOf(Games)}, {path: long + "B", set: SetOf(Adult)}}
	linkParents(list)
	for path, want := range map[string]Set{long + "%41x": SetOf(Games), long + "%42": SetOf(Adult), long + "%43": SetOf(Chat), "/b%41": 0} {
		if got, _ := longestPathEntry(list, path); got != want {
			t.Errorf("long path %.20q…: {%v}, want {%v}", path, got, want)
		}
	}
	for round := 0; round < 300; round++ {
		m := make(map[string]Set)
		for i := rng.IntN(40); i >= 0; i-- {
			m[normEntryPath(randPath(8))] |= SetOf(Category(rng.IntN(int(Unclassified))))
		}
		list := make([]urlEntry, 0, len(m))
		for p, s := range m {
			list = append(list, urlEntry{path: p, set: s})
		}
		sort.Slice(list, func(i, j int) bool { return list[i].path < list[j].path })
		linkParents(list)
		for q := 0; q < 50; q++ {
			path := randPath(12)
			var want Set
			wantOK, best := false, -1
			for _, e := range list {
				if hasNormPrefix(path, e.path) && len(e.path) > best {
					want, wantOK, best = e.set, true, len(e.path)
				}
			}
			got, ok := longestPathEntry(list, path)
			if got != want || ok != wantOK {
				t.Fatalf("path %q in %v: got %v %v, want %v %v", path, list, got, ok, want, wantOK)
			}
		}
	}
}

// TestValidPunycodeRandom compares validPunycode with x/net's decoder on
// random labels (FuzzValidPunycode explores further).
func TestValidPunycodeRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-"
	valid := 0
	for n := 0; n < 20000; n++ {
		b := make([]byte, 1+rng.IntN(14))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		s := string(b)
		_, err := idna.Punycode.ToUnicode("xn--" + s)
		if got := validPunycode(s); got != (err == nil) {
			t.Fatalf("validPunycode(%q) = %v, x/net: %v", s, got, err)
		}
		if err == nil {
			valid++
		}
	}
	if valid < 1000 {
		t.Fatalf("only %d valid labels: the test compares too little", valid)
	}
}

func TestEntryProblem(t *testing.T) {
	for _, tc := range []struct {
		entry string
		want  string // "" or a fragment of the problem
	}{
		{"school.example", ""},
		{"intranet.school.example/path", ""},
		{"10.0.0.1/admin", ""},
		{"localhost", "single-label"},
		{"intranet", "single-label"},
		{"intranet/page", "single-label"},
		{"10.1.2.3", "IP address"},
		{"2001:db8::1", "IP address"},
		{"[2001:db8::1]", "IP address"},
		{"school.example:8080", "port"},
	} {
		t.Run(tc.entry, func(t *testing.T) {
			got := EntryProblem(tc.entry)
			b := NewBuilder()
			added := b.Add(tc.entry, Adult)
			if (got == "") != added {
				t.Errorf("EntryProblem %q but Add took it: %v", got, added)
			}
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("EntryProblem(%q) = %q, want %q", tc.entry, got, tc.want)
			}
		})
	}
}
