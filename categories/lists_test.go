package categories

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/internal/testenv"
)

// sharedLists finds shared/lists by walking up from the package directory;
// tests that need the real public lists skip when it is absent.
func sharedLists(tb testing.TB) string {
	tb.Helper()
	p := testenv.FindUp(tb, filepath.Join("shared", "lists"))
	if p == "" {
		tb.Skip("shared/lists not found above the package directory")
	}
	return p
}

// publicFiles maps the blocklistproject and sinfonietta files to our
// categories (their CATEGORIES.tsv suggestions; vaping counts as drugs).
var publicFiles = []struct {
	path string
	c    Category
}{
	{"blocklistproject/drugs", Drugs},
	{"blocklistproject/facebook", Social},
	{"blocklistproject/fortnite", Games},
	{"blocklistproject/gambling", Gambling},
	{"blocklistproject/piracy", Piracy},
	{"blocklistproject/ransomware", Malware},
	{"blocklistproject/tiktok", Social},
	{"blocklistproject/torrent", Piracy},
	{"blocklistproject/twitter", Social},
	{"blocklistproject/vaping", Drugs},
	{"blocklistproject/whatsapp", Chat},
	{"blocklistproject/youtube", Streaming},
	{"sinfonietta/gambling-hosts.gz", Gambling},
	{"sinfonietta/pornography-hosts.gz", Adult},
	{"sinfonietta/social-hosts.gz", Social},
	{"sinfonietta/snuff-hosts.gz", Violence},
}

// loadAllPublic loads every public list: the whole UT1 tree, both forms of
// every blocklistproject list, every sinfonietta file, all with format
// auto-detection.
func loadAllPublic(tb testing.TB, b *Builder, root string) Stats {
	tb.Helper()
	st, err := b.LoadUT1(filepath.Join(root, "ut1"))
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range publicFiles {
		var paths []string
		if strings.HasPrefix(f.path, "blocklistproject/") {
			paths = []string{f.path + ".txt.gz", f.path + "-nl.txt.gz"}
		} else {
			paths = []string{f.path}
		}
		for _, p := range paths {
			s, err := b.LoadFile(filepath.Join(root, p), "", f.c)
			if err != nil {
				tb.Fatal(err)
			}
			st.merge(s)
		}
	}
	return st
}

// publicDB is every public list loaded once, shared by the tests and
// benchmarks that need it (loading takes a second, many more under -race).
var publicDB struct {
	once    sync.Once
	db      *DB
	st      Stats
	elapsed time.Duration
	junk    []string // skipped lines that are not known junk
}

// knownJunk are the skipped lines of SOURCE.md's defect lists that are not
// IP addresses.
var knownJunk = map[string]bool{
	"0.0.0.0 xxxhindi.to en": true, // extra token "en" (xxxhindi.to is taken)
	"127.0.0.1 snapchat-com": true, // dotless
}

func loadPublicDB(tb testing.TB) *DB {
	tb.Helper()
	root := sharedLists(tb)
	publicDB.once.Do(func() {
		start := time.Now()
		b := NewBuilder()
		b.onSkip = func(where string, lineNo int, line string) {
			fields := strings.Fields(line)
			if knownJunk[line] || len(fields) > 0 && isIPToken(fields[len(fields)-1]) {
				return
			}
			publicDB.junk = append(publicDB.junk, fmt.Sprintf("%s:%d: %q", where, lineNo, line))
		}
		b.AddEmbedded()
		publicDB.st = loadAllPublic(tb, b, root)
		publicDB.db = b.Build()
		publicDB.elapsed = time.Since(start)
	})
	if publicDB.db == nil {
		tb.Fatal("loading the public lists failed in an earlier test")
	}
	return publicDB.db
}

func TestLoadAllPublicLists(t *testing.T) {
	db := loadPublicDB(t)
	st := publicDB.st
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("loaded in %v: added %d, skipped %d, %d distinct entries (%d domains, %d URLs), heap in use %d MiB",
		publicDB.elapsed, st.Added, st.Skipped, db.Len(), db.DomainEntries(), db.URLEntries(), ms.HeapInuse>>20)
	if st.Added < 1_000_000 {
		t.Errorf("added %d entries, want over a million", st.Added)
	}
	// Nearly all skipped lines are the IPv4 entries of UT1's domain files
	// (redirector alone has 22,530, loaded three times).
	if st.Skipped < 70_000 || st.Skipped > 75_000 {
		t.Errorf("skipped %d lines, want about 72,000", st.Skipped)
	}
	if db.Len() < 600_000 {
		t.Errorf("%d distinct entries, want over 600,000", db.Len())
	}
	// Every skipped line must be junk: an IP address where a name belongs,
	// or one of the known defects.
	for i, j := range publicDB.junk {
		if i == 20 {
			t.Errorf("… and %d more", len(publicDB.junk)-i)
			break
		}
		t.Errorf("skipped a line that is not junk: %s", j)
	}
}

func TestRealListCounts(t *testing.T) {
	root := sharedLists(t)
	tests := []struct {
		file, format   string
		added, skipped int
	}{
		// SOURCE.md: 132,323 lines of which 22,530 are IPv4 addresses
		{"ut1/redirector/domains.gz", "domains", 132323 - 22530, 22530},
		{"ut1/gambling/domains.gz", "domains", 32247 - 14, 14}, // 14 IPv4 lines
		// 61,186 lines: 5 IPv4 "names", one extra token ("en")
		{"sinfonietta/pornography-hosts.gz", "hosts", 61186 - 5, 6},
		{"sinfonietta/pornography-hosts.gz", "", 61186 - 5, 6},
		// 3,245 entries, one dotless
		{"sinfonietta/social-hosts.gz", "hosts", 3244, 1},
		{"blocklistproject/gambling.txt.gz", "hosts", 2510, 0},
		{"blocklistproject/gambling-nl.txt.gz", "domains", 2510, 0},
		{"blocklistproject/drugs.txt.gz", "", 26029, 0},
		{"blocklistproject/youtube.txt.gz", "", 24280, 0},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.format, func(t *testing.T) {
			b := NewBuilder()
			st, err := b.LoadFile(filepath.Join(root, tt.file), tt.format, Adult)
			if err != nil {
				t.Fatal(err)
			}
			if st.Added != tt.added || st.Skipped != tt.skipped {
				t.Fatalf("added %d, skipped %d; want %d, %d (%q)", st.Added, st.Skipped,
					tt.added, tt.skipped, st.SkippedExamples)
			}
		})
	}
}

func TestRealListsSpotChecks(t *testing.T) {
	db := loadPublicDB(t)
	tests := []struct {
		host string
		has  Category
	}{
		{"www.pokerstars.com", Gambling},     // UT1 gambling
		{"sports.williamhill.com", Gambling}, // UT1 gambling
		{"www.netflix.com", Streaming},       // UT1 audio-video
		{"nordvpn.com", ProxyAvoidance},      // UT1 vpn
		{"dns.google", DoH},                  // UT1 doh
		{"www.facebook.com", Social},         // blocklistproject + sinfonietta
		{"xhamster.com", Adult},              // sinfonietta
		{"ehentai.to", Adult},                // sinfonietta, upper case there
		{"www.guruofporn.com", Adult},        // sinfonietta, trailing dot there
	}
	for _, tt := range tests {
		if got := db.Lookup(tt.host, ""); !got.Has(tt.has) {
			t.Errorf("Lookup(%q) = {%v}, want it to include %v", tt.host, got, tt.has)
		}
	}
	for _, h := range []string{"example.com", "notbet365.com", "com", "example.org"} {
		if got := db.Lookup(h, ""); !got.Empty() {
			t.Errorf("Lookup(%q) = {%v}, want unclassified", h, got)
		}
	}
}
