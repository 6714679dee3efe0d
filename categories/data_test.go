package categories

// Quality tests of the curated embedded database, data/<category>.txt.
//
// The first tests read the files straight from disk with their own small
// parser, not through the package's loader: they check the data, and they
// must be able to fail on a bad entry even if the loader would skip it
// quietly. TestEmbeddedSpotChecks then asks the real loader and lookup.

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// dataMinEntries is the number of entries each file must keep (a little
// under what it holds): a file that loses a chunk of its entries by
// accident fails here. Raise it when you add entries.
var dataMinEntries = map[string]int{
	"adult":           100,
	"gambling":        160,
	"chat":            50,
	"webmail":         60,
	"streaming":       115,
	"social":          65,
	"games":           95,
	"dating":          48,
	"shopping":        110,
	"drugs":           35,
	"violence":        20,
	"hate":            18,
	"extremism":       18,
	"self-harm":       10,
	"malware":         40,
	"phishing":        15,
	"hacking":         35,
	"piracy":          80,
	"proxy-avoidance": 85,
	"doh":             42,
	"downloads":       45,
	"forums":          33,
	"search-engines":  60,
	"education":       165,
}

// dataCrossFile lists every entry deliberately named by more than one
// file, with all its files. Any other entry in two files is a mistake
// (the contract gives it both categories).
var dataCrossFile = map[string][]string{
	"stormfront.org":       {"extremism", "hate"},
	"efukt.com":            {"adult", "violence"},
	"heavy-r.com":          {"adult", "violence"},
	"thestudentroom.co.uk": {"education", "forums"},
	"scholar.google.com":   {"education", "search-engines"},
}

// dataWWWOK lists the www. entries written on purpose: the bare domain
// is too general to list (google.com carries Workspace; see
// search-engines.txt).
var dataWWWOK = map[string]bool{
	"www.google.com": true,
}

// dataRedundantOK lists entries that repeat, in the same file, a parent
// domain entry on purpose (see the comment beside each in its file).
var dataRedundantOK = map[string]bool{
	"music.youtube.com": true,
}

type dataLine struct {
	file string
	line int
	text string
}

// readDataDir reads data/*.txt: entries by category (file name without
// .txt), comments and blank lines dropped.
func readDataDir(t *testing.T) map[string][]dataLine {
	t.Helper()
	des, err := os.ReadDir("data")
	if err != nil {
		t.Fatalf("reading data folder: %v", err)
	}
	out := make(map[string][]dataLine)
	for _, de := range des {
		name := de.Name()
		if !de.IsDir() && strings.HasSuffix(name, ".md") {
			continue // documentation of the folder
		}
		if de.IsDir() || !strings.HasSuffix(name, ".txt") {
			t.Errorf("data/%s: only <category>.txt files belong in data/", name)
			continue
		}
		cat := strings.TrimSuffix(name, ".txt")
		f, err := os.Open(filepath.Join("data", name))
		if err != nil {
			t.Fatalf("opening data/%s: %v", name, err)
		}
		sc := bufio.NewScanner(f)
		n := 0
		out[cat] = []dataLine{}
		for sc.Scan() {
			n++
			s := strings.TrimRight(sc.Text(), "\r")
			// Every file opens with a header saying what belongs in it.
			if n == 1 && !strings.HasPrefix(s, "# "+cat+": ") {
				t.Errorf("data/%s:1: want a header comment starting %q", name, "# "+cat+": ")
			}
			if strings.TrimSpace(s) == "" || strings.HasPrefix(s, "#") {
				continue
			}
			out[cat] = append(out[cat], dataLine{file: name, line: n, text: s})
		}
		if err := sc.Err(); err != nil {
			t.Errorf("reading data/%s: %v", name, err)
		}
		f.Close()
	}
	return out
}

// checkDataEntry reports why s is not a plausible entry: a lower-case
// ASCII registrable domain or host name (punycode for IDN), optionally
// followed by /path for a URL entry.
func checkDataEntry(s string) error {
	switch {
	case s != strings.TrimSpace(s) || strings.ContainsAny(s, " \t"):
		return fmt.Errorf("contains white space (inline comments are not used in data files)")
	case strings.Contains(s, "#"):
		return fmt.Errorf("contains '#'")
	case strings.Contains(s, "://"):
		return fmt.Errorf("has a scheme")
	case strings.ContainsAny(s, "*^|$"):
		return fmt.Errorf("has a wildcard or adblock syntax")
	case s != strings.ToLower(s):
		return fmt.Errorf("not lower case")
	}
	host, path, isURL := strings.Cut(s, "/")
	if isURL && (path == "" || strings.HasPrefix(path, "/")) {
		return fmt.Errorf("URL entry with an empty path")
	}
	if strings.HasPrefix(host, "www.") && !dataWWWOK[host] {
		return fmt.Errorf("starts with www. (the domain entry covers it)")
	}
	if strings.HasSuffix(host, ".") || strings.HasPrefix(host, ".") {
		return fmt.Errorf("leading or trailing dot")
	}
	if len(host) > 253 {
		return fmt.Errorf("host longer than 253 bytes")
	}
	labels := strings.Split(host, ".")
	if len(labels) < 2 {
		return fmt.Errorf("no dot in host")
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("empty or over-long label %q", l)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with '-'", l)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("label %q has %q (use punycode for IDN)", l, c)
			}
		}
	}
	tld := labels[len(labels)-1]
	if strings.Trim(tld, "0123456789") == "" {
		return fmt.Errorf("numeric last label (an IP address is not an entry)")
	}
	return nil
}

func TestCheckDataEntry(t *testing.T) {
	good := []string{"bet365.com", "mail.google.com", "bbc.co.uk/iplayer", "xn--80ak6aa92e.com", "1337x.to", "8888.google", "dns.google"}
	bad := []string{"", "Bet365.com", "www.bet365.com", "bet365.com.", ".bet365.com", "https://bet365.com",
		"*.bet365.com", "||bet365.com^", "bet365", "1.2.3.4", "bet 365.com", "bet365.com # x",
		"bet365.com/", "-bet.com", "bet_365.com", "bét365.com", "a..com"}
	for _, s := range good {
		if err := checkDataEntry(s); err != nil {
			t.Errorf("checkDataEntry(%q) = %v, want ok", s, err)
		}
	}
	for _, s := range bad {
		if checkDataEntry(s) == nil {
			t.Errorf("checkDataEntry(%q) = ok, want an error", s)
		}
	}
}

// TestDataFiles checks every line of every data file and each file's size.
func TestDataFiles(t *testing.T) {
	files := readDataDir(t)
	for cat := range files {
		if _, ok := dataMinEntries[cat]; !ok {
			t.Errorf("data/%s.txt: not a stable category name", cat)
		}
	}
	total := 0
	for cat, min := range dataMinEntries {
		lines, ok := files[cat]
		if !ok {
			t.Errorf("data/%s.txt: missing", cat)
			continue
		}
		total += len(lines)
		if len(lines) < min {
			t.Errorf("data/%s.txt: %d entries, want at least %d", cat, len(lines), min)
		}
		seen := make(map[string]int)
		for _, l := range lines {
			if err := checkDataEntry(l.text); err != nil {
				t.Errorf("data/%s:%d: %q: %v", l.file, l.line, l.text, err)
			}
			if first, dup := seen[l.text]; dup {
				t.Errorf("data/%s:%d: %q already on line %d", l.file, l.line, l.text, first)
			}
			seen[l.text] = l.line
		}
		// A domain entry under another domain entry of the same file adds
		// nothing; a URL entry under a domain entry of the same category
		// adds nothing either.
		for _, l := range lines {
			host, _, isURL := strings.Cut(l.text, "/")
			for p := range dataParents(host, isURL) {
				if _, ok := seen[p]; ok && !dataRedundantOK[l.text] {
					t.Errorf("data/%s:%d: %q is already covered by %q in the same file", l.file, l.line, l.text, p)
				}
			}
		}
	}
	t.Logf("%d files, %d entries", len(files), total)
}

// dataParents yields the domain entries that would cover host: its parent
// domains with at least two labels, and host itself for a URL entry.
func dataParents(host string, self bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		if self && !yield(host) {
			return
		}
		for s := host; ; {
			i := strings.IndexByte(s, '.')
			if i < 0 {
				return
			}
			s = s[i+1:]
			if !strings.Contains(s, ".") {
				return
			}
			if !yield(s) {
				return
			}
		}
	}
}

// TestDataCrossFile checks that entries named by several files are exactly
// the deliberate ones.
func TestDataCrossFile(t *testing.T) {
	files := readDataDir(t)
	where := make(map[string][]string)
	for cat, lines := range files {
		for _, l := range lines {
			if !slices.Contains(where[l.text], cat) {
				where[l.text] = append(where[l.text], cat)
			}
		}
	}
	for e, cats := range where {
		if len(cats) < 2 {
			continue
		}
		slices.Sort(cats)
		want, ok := dataCrossFile[e]
		if !ok || !slices.Equal(cats, want) {
			t.Errorf("%q is in %v; if that is deliberate, add it to dataCrossFile and say why in the files", e, cats)
		}
	}
}

// dataIndex is a tiny model of the contract's matching over the data files
// (longest domain entry, URL entries first), so that the sanity checks
// below do not depend on the package's loader.
type dataIndex struct {
	dom map[string][]string
	url map[string][]string // entry host/path -> categories
}

func newDataIndex(t *testing.T) *dataIndex {
	t.Helper()
	x := &dataIndex{dom: map[string][]string{}, url: map[string][]string{}}
	for cat, lines := range readDataDir(t) {
		for _, l := range lines {
			if strings.Contains(l.text, "/") {
				x.url[l.text] = append(x.url[l.text], cat)
			} else {
				x.dom[l.text] = append(x.dom[l.text], cat)
			}
		}
	}
	return x
}

func (x *dataIndex) classify(host, path string) []string {
	var out []string
	if path != "" {
		best := ""
		for s := host; ; {
			for e, cats := range x.url {
				h, p, _ := strings.Cut(e, "/")
				if h == s && strings.HasPrefix(path, "/"+p) && len(e) > len(best) {
					best, out = e, cats
				}
			}
			i := strings.IndexByte(s, '.')
			if i < 0 || best != "" {
				break
			}
			s = s[i+1:]
		}
	}
	if out == nil {
		for s := host; strings.Contains(s, "."); s = s[strings.IndexByte(s, '.')+1:] {
			if cats, ok := x.dom[s]; ok {
				out = cats
				break
			}
		}
	}
	out = slices.Clone(out)
	slices.Sort(out)
	return out
}

// TestDataSanity checks decisions that must hold across the files: general
// platforms and help services are not swallowed by a blocked category.
func TestDataSanity(t *testing.T) {
	x := newDataIndex(t)
	tests := []struct {
		host, path string
		notIn      []string // the host must not get any of these
		none       bool     // the host must get no category at all
	}{
		// google.com carries Workspace: only its mail host is webmail and
		// only its search hosts are search-engines.
		{host: "google.com", none: true},
		{host: "docs.google.com", none: true},
		{host: "drive.google.com", none: true},
		{host: "accounts.google.com", none: true},
		{host: "meet.google.com", none: true},
		{host: "play.google.com", none: true},
		{host: "www.google.com", notIn: []string{"webmail"}},
		{host: "www.google.co.uk", notIn: []string{"webmail"}},
		{host: "classroom.google.com", notIn: []string{"search-engines", "webmail"}},
		// Microsoft 365 school mail and Teams.
		{host: "outlook.office.com", none: true},
		{host: "outlook.office365.com", none: true},
		{host: "school-org.mail.protection.outlook.com", none: true},
		{host: "teams.microsoft.com", notIn: []string{"chat"}},
		// Cloud and CDN hosts are not shops or streaming.
		{host: "amazonaws.com", none: true},
		{host: "s3.eu-west-2.amazonaws.com", none: true},
		{host: "d1234abcd.cloudfront.net", none: true},
		{host: "m.media-amazon.com", none: true},
		{host: "i.ytimg.com", none: true},
		{host: "rr3---sn-aigl6nze.googlevideo.com", none: true},
		// Help services belong to no category.
		{host: "www.samaritans.org", none: true},
		{host: "www.childline.org.uk", none: true},
		{host: "www.papyrus-uk.org", none: true},
		{host: "www.mind.org.uk", none: true},
		{host: "www.beateatingdisorders.org.uk", none: true},
		{host: "www.talktofrank.com", none: true},
		{host: "www.begambleaware.org", none: true},
		{host: "www.gamcare.org.uk", none: true},
		{host: "www.gamstop.co.uk", none: true},
		{host: "www.nhs.uk", none: true},
		{host: "www.brook.org.uk", none: true},
		// Names that must keep resolving or answering normally.
		{host: "iuqerfsodp9ifjaposdfjhgosurijfaewrwergwea.com", none: true},
		{host: "use-application-dns.net", none: true},
		{host: "doh.umbrella.com", none: true},
		// Legal security training and open-source hubs.
		{host: "tryhackme.com", notIn: []string{"hacking"}},
		{host: "github.com", none: true},
		{host: "archive.org", none: true},
		{host: "stackoverflow.com", none: true},
		{host: "www.bbc.co.uk", path: "/news/education-1", none: true},
	}
	for _, tc := range tests {
		got := x.classify(tc.host, tc.path)
		if tc.none && len(got) > 0 {
			t.Errorf("%s%s is %v, want no category", tc.host, tc.path, got)
		}
		for _, c := range tc.notIn {
			if slices.Contains(got, c) {
				t.Errorf("%s%s is %v, must not be %s", tc.host, tc.path, got, c)
			}
		}
	}
}

// TestEmbeddedSpotChecks asks the real loader and lookup (AddEmbedded,
// SplitTarget, Lookup) about well-known targets.
func TestEmbeddedSpotChecks(t *testing.T) {
	b := NewBuilder()
	b.AddEmbedded()
	db := b.Build()
	tests := []struct {
		target string
		want   []string
	}{
		{"https://www.bet365.com/en", []string{"gambling"}},
		{"sports.williamhill.com", []string{"gambling"}},
		{"notbet365.com", []string{}},
		{"mail.google.com", []string{"webmail"}},
		{"https://mail.google.com/mail/u/0/#inbox", []string{"webmail"}},
		{"www.google.com", []string{"search-engines"}},
		{"www.google.co.uk", []string{"search-engines"}},
		{"WWW.Google.CO.UK.:443", []string{"search-engines"}},
		{"docs.google.com", []string{}},
		{"classroom.google.com", []string{"education"}},
		{"scholar.google.com", []string{"education", "search-engines"}},
		{"outlook.live.com", []string{"webmail"}},
		{"outlook.office.com", []string{}},
		{"www.amazon.co.uk", []string{"shopping"}},
		{"https://www.amazon.co.uk/gp/video/storefront", []string{"streaming"}},
		{"s3.amazonaws.com", []string{}},
		{"www.youtube.com", []string{"streaming"}},
		{"i.ytimg.com", []string{}},
		{"https://www.bbc.co.uk/iplayer/episode/b0000000", []string{"streaming"}},
		{"https://www.bbc.co.uk/bitesize/subjects/zt9k7ty", []string{"education"}},
		{"https://www.bbc.co.uk/news", []string{}},
		{"www.minecraft.net", []string{"games"}},
		{"education.minecraft.net", []string{"education"}},
		{"www.coolmathgames.com", []string{"games"}},
		{"www.mathplayground.com", []string{"education"}},
		{"www.thestudentroom.co.uk", []string{"education", "forums"}},
		{"www.reddit.com", []string{"forums"}},
		{"discord.com", []string{"chat"}},
		{"www.instagram.com", []string{"social"}},
		{"https://www.facebook.com/marketplace/item/1", []string{"shopping"}},
		{"www.facebook.com", []string{"social"}},
		{"https://www.tumblr.com/tagged/thinspo", []string{"self-harm"}},
		{"www.tumblr.com", []string{"social"}},
		{"www.pornhub.com", []string{"adult"}},
		{"www.efukt.com", []string{"adult", "violence"}},
		{"tinder.com", []string{"dating"}},
		{"nordvpn.com", []string{"proxy-avoidance"}},
		{"www.croxyproxy.com", []string{"proxy-avoidance"}},
		{"mask.icloud.com", []string{"proxy-avoidance"}},
		{"www.icloud.com", []string{}},
		{"mozilla.cloudflare-dns.com", []string{"doh"}},
		{"dns.google", []string{"doh"}},
		{"dns.quad9.net", []string{"doh"}},
		{"www.quad9.net", []string{}},
		{"thepiratebay.org", []string{"piracy"}},
		{"sci-hub.se", []string{"piracy"}},
		{"www.mediafire.com", []string{"downloads"}},
		{"coinhive.com", []string{"malware"}},
		{"internetbadguys.com", []string{"phishing"}},
		{"аррӏе.com", []string{"phishing"}}, // Cyrillic homograph, as typed
		{"unknowncheats.me", []string{"hacking"}},
		{"stormfront.org", []string{"extremism", "hate"}},
		{"www.leafly.com", []string{"drugs"}},
		{"www.talktofrank.com", []string{}},
		{"www.samaritans.org", []string{}},
		{"www.childline.org.uk", []string{}},
		{"en.wikipedia.org", []string{"education"}},
		{"www.khanacademy.org", []string{"education"}},
		{"duckduckgo.com", []string{"search-engines"}},
		{"https://urlfiltering.paloaltonetworks.com/test-gambling", []string{"gambling"}},
		{"https://urlfiltering.paloaltonetworks.com/test-malware", []string{"malware"}},
		{"urlfiltering.paloaltonetworks.com", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			host, path, ok := SplitTarget(tc.target)
			if !ok {
				t.Fatalf("SplitTarget(%q) not ok", tc.target)
			}
			got := db.Lookup(host, path).Names()
			if !slices.Equal(got, tc.want) {
				t.Errorf("Lookup(%q, %q) = %v, want %v", host, path, got, tc.want)
			}
		})
	}
}
