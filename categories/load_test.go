package categories

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadFileFixtures(t *testing.T) {
	tests := []struct {
		file, format   string
		added, skipped int
		match, noMatch []string
	}{
		{
			file: "hosts-messy.txt", format: "hosts", added: 11, skipped: 11,
			match: []string{"ads.example.com", "x.tracker.example.net", "odd-sink.example.org",
				"v6sink.example.org", "two.example.com", "three.example.com", "xxxhindi.to",
				"www.guruofporn.com", "under_score.example.com", "xn--bcher-kva.de", "plain.example.com"},
			noMatch: []string{"localhost", "en", "broadcasthost", "example.com", "guruofporn.com",
				"85.17.187.83", "snapchat-com", "bare-after-ip.example.com"},
		},
		{
			// the same file auto-detected gives the same result
			file: "hosts-messy.txt", format: "", added: 11, skipped: 11,
			match: []string{"ads.example.com", "three.example.com"},
		},
		{
			// example.com/some/path is a URL entry, no longer junk
			file: "domains-messy.txt", format: "domains", added: 11, skipped: 12,
			match: []string{"www.bet365.com", "www.paddypower.com", "x.afshin.ir", "_video-bagarre.com",
				"abbyfaer_rkoa.tripod.com", "xn--sportfogads-t7a.com", "trailing.example.com",
				"padded.example.com", "gamble.example.com"},
			noMatch: []string{"paddypower.com", "118.123.4.224", "wild.example.com", "example.com",
				"anchored.com", "b.com", "regex.com"},
		},
		{
			file: "adblock.txt", format: "adblock", added: 7, skipped: 10,
			match: []string{"casino.example.com", "www.poker.example.net", "slots.example.org",
				"big.example.com", "nocaret.example.com", "pipe.example.com", "bare.example.com"},
			noMatch: []string{"allowed.example.com", "example.com", "scoped.example.com",
				"bad.example.com", "path.example.com", "anchored.example.com", "198.51.100.7"},
		},
		{
			file: "auto-mixed.txt", format: "", added: 4, skipped: 4,
			match: []string{"hosts-line.example.com", "adblock-line.example.com", "plain-line.example.com"},
			noMatch: []string{"url-line.example.com", "exception.example.com", "site.example",
				"192.0.2.1", "just-junk-no-dot"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.format, func(t *testing.T) {
			b := NewBuilder()
			st, err := b.LoadFile(filepath.Join("testdata", tt.file), tt.format, Gambling)
			if err != nil {
				t.Fatal(err)
			}
			if st.Added != tt.added || st.Skipped != tt.skipped {
				t.Fatalf("added %d, skipped %d; want %d, %d; examples %q",
					st.Added, st.Skipped, tt.added, tt.skipped, st.SkippedExamples)
			}
			if len(st.SkippedExamples) != min(tt.skipped, maxExamples) {
				t.Fatalf("%d examples for %d skipped", len(st.SkippedExamples), tt.skipped)
			}
			db := b.Build()
			for _, h := range tt.match {
				if got := db.Lookup(h, ""); got != SetOf(Gambling) {
					t.Errorf("Lookup(%q) = {%v}, want gambling", h, got)
				}
			}
			for _, h := range tt.noMatch {
				if got := db.Lookup(h, ""); !got.Empty() {
					t.Errorf("Lookup(%q) = {%v}, want unclassified", h, got)
				}
			}
		})
	}
}

// TestDomainListURLEntries loads one plain list with URL entries in every
// way a plain domain list is read: as "domains", auto-detected, and as a
// UT1 domains file (plain and gzip). A hosts file names hosts only.
func TestDomainListURLEntries(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "domains-urls.txt"))
	if err != nil {
		t.Fatal(err)
	}
	const added, skipped = 8, 9 // 7 URL entries and a domain; 9 junk lines
	load := map[string]func(t *testing.T, b *Builder) (Stats, error){
		"domains": func(t *testing.T, b *Builder) (Stats, error) {
			return b.LoadFile(filepath.Join("testdata", "domains-urls.txt"), "domains", Games)
		},
		"auto": func(t *testing.T, b *Builder) (Stats, error) {
			return b.LoadFile(filepath.Join("testdata", "domains-urls.txt"), "", Games)
		},
		"ut1": func(t *testing.T, b *Builder) (Stats, error) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "games"), 0o755)
			os.WriteFile(filepath.Join(dir, "games", "domains"), raw, 0o644)
			return b.LoadUT1(dir)
		},
		"ut1-gz": func(t *testing.T, b *Builder) (Stats, error) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "games"), 0o755)
			writeGzip(t, filepath.Join(dir, "games", "domains.gz"), string(raw))
			return b.LoadUT1(dir)
		},
	}
	lookups := []struct {
		host, path string
		match      bool
	}{
		{"example.org", "/games", true},
		{"www.example.org", "/games/level/2", true},
		{"example.org", "//games", true},
		{"example.org", "/./games", true},
		{"example.org", "/%67ames", true},
		{"example.org", "/gamesx", true},
		{"example.org", "/Games", false},
		{"example.org", "", false}, // no path: URL entries play no part
		{"example.org", "/", false},
		{"example.net", "/Forum?f=25&t=1", true},
		{"example.net", "/forum?f=25", false},
		{"scheme.example.com", "/x/y", true},
		{"scheme.example.com", "/x", false},
		{"www.secure.example.com", "/a~b/c", true},
		{"www.secure.example.com", "/a%7Eb/", true},
		{"x.lead.example.com", "/docs/1", true},
		{"lead.example.com", "", false},
		{"45.90.163.37", "/arm4", true},
		{"45.90.163.37", "//arm4", true},
		{"wiki.example.com", "/index.php?id=7", true},
		{"wiki.example.com", "/index.php", false},
		{"plain.example.com", "", true},
		{"plain.example.com", "/any", true},
		{"10.0.0.0", "/8", false},
		{"192.0.2.0", "/24", false},
		{"ads.example.com", "/banner/*", false},
		{"ads.example.com", "/a|b", false},
		{"example.com", "/just/a/path", false},
	}
	for name, fn := range load {
		t.Run(name, func(t *testing.T) {
			b := NewBuilder()
			st, err := fn(t, b)
			if err != nil {
				t.Fatal(err)
			}
			if st.Added != added || st.Skipped != skipped {
				t.Fatalf("added %d, skipped %d; want %d, %d; examples %q",
					st.Added, st.Skipped, added, skipped, st.SkippedExamples)
			}
			db := b.Build()
			if db.URLEntries() != 7 || db.DomainEntries() != 1 {
				t.Fatalf("%d URL and %d domain entries, want 7 and 1", db.URLEntries(), db.DomainEntries())
			}
			for _, l := range lookups {
				want := Set(0)
				if l.match {
					want = SetOf(Games)
				}
				if got := db.Lookup(l.host, l.path); got != want {
					t.Errorf("Lookup(%q, %q) = {%v}, want {%v}", l.host, l.path, got, want)
				}
			}
		})
	}
	t.Run("hosts", func(t *testing.T) {
		b := NewBuilder()
		st, err := b.LoadFile(filepath.Join("testdata", "domains-urls.txt"), "hosts", Games)
		if err != nil {
			t.Fatal(err)
		}
		if st.Added != 1 || st.Skipped != added+skipped-1 {
			t.Fatalf("hosts format: added %d, skipped %d; want 1, %d", st.Added, st.Skipped, added+skipped-1)
		}
		if db := b.Build(); db.URLEntries() != 0 || db.Lookup("example.org", "/games") != 0 {
			t.Fatal("a hosts file made URL entries")
		}
	})
}

// TestPlainLineURLJunk checks the slash-bearing lines a plain domain list
// skips, and those it takes as URL entries.
func TestPlainLineURLJunk(t *testing.T) {
	for line, junk := range map[string]bool{
		"example.org/games":           false,
		"example.org/":                false,
		"http://example.org/a?b=1":    false,
		"45.90.163.37/arm4":           false,
		"12.5.179.24/meth_info":       false,
		"10.0.0.0/8":                  true,
		"192.0.2.0/24":                true,
		"2001:db8::/32":               true,
		"http://192.0.2.0/24":         true,
		"example.org/ads/*":           true,
		"example.org/a^":              true,
		"example.org/a|b":             true,
		"example.org":                 false,
		"192.0.2.1/1234":              false, // four digits: no prefix length
		"not-an-ip.example.com/24":    false,
		"example.org/path with space": true,
	} {
		b := NewBuilder()
		var st Stats
		for _, f := range []lineFormat{fmtDomains, fmtEmbedded} {
			st = Stats{}
			b.addLine(line, f, Chat, &st, "t", 1)
			if got := st.Skipped == 1; got != junk || st.Added+st.Skipped != 1 {
				t.Errorf("format %d, %q: added %d skipped %d, want junk %v", f, line, st.Added, st.Skipped, junk)
			}
		}
	}
}

func TestLoadFileAutoURLEntry(t *testing.T) {
	b := NewBuilder()
	if _, err := b.LoadFile(filepath.Join("testdata", "auto-mixed.txt"), "", Games); err != nil {
		t.Fatal(err)
	}
	db := b.Build()
	if got := db.Lookup("url-line.example.com", "/section/page/2"); got != SetOf(Games) {
		t.Fatalf("URL entry from an auto list = {%v}", got)
	}
}

func writeGzip(t *testing.T, path string, content string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(content))
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadFileGzipByMagic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "list-without-suffix")
	writeGzip(t, p, "a.example.com\nb.example.com\n1.2.3.4\n")
	b := NewBuilder()
	st, err := b.LoadFile(p, "domains", Adult)
	if err != nil {
		t.Fatal(err)
	}
	if st.Added != 2 || st.Skipped != 1 {
		t.Fatalf("added %d skipped %d", st.Added, st.Skipped)
	}
	// a .gz name on a plain file is read as plain text
	plain := filepath.Join(dir, "plain.gz")
	os.WriteFile(plain, []byte("c.example.com\n"), 0o644)
	if st, err := b.LoadFile(plain, "", Adult); err != nil || st.Added != 1 {
		t.Fatalf("plain file named .gz: %+v, %v", st, err)
	}
	if got := b.Build().Lookup("c.example.com", ""); got != SetOf(Adult) {
		t.Fatalf("c.example.com = {%v}", got)
	}
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.txt")
	_, err := NewBuilder().LoadFile(missing, "", Adult)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), `loading list "`+missing+`"`) {
		t.Fatalf("missing file: %v", err)
	}

	bad := filepath.Join(dir, "bad.gz")
	os.WriteFile(bad, []byte("\x1f\x8bnot really gzip at all"), 0o644)
	if _, err := NewBuilder().LoadFile(bad, "", Adult); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("bad gzip header: %v", err)
	}

	// a gzip stream cut in the middle: an error, naming the file
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for i := 0; i < 2000; i++ {
		zw.Write([]byte("host" + itoa(i) + ".example.com\n"))
	}
	zw.Close()
	cut := filepath.Join(dir, "cut.gz")
	os.WriteFile(cut, buf.Bytes()[:buf.Len()/2], 0o644)
	if _, err := NewBuilder().LoadFile(cut, "", Adult); err == nil || !strings.Contains(err.Error(), cut) {
		t.Fatalf("truncated gzip: %v", err)
	}

	if _, err := NewBuilder().LoadFile(filepath.Join("testdata", "adblock.txt"), "regex", Adult); err == nil {
		t.Fatal("unknown format accepted")
	}
	if _, err := NewBuilder().LoadFile(filepath.Join("testdata", "adblock.txt"), "", Unclassified); err == nil {
		t.Fatal("Unclassified accepted as a list category")
	}
	b := NewBuilder()
	b.Build()
	if _, err := b.LoadFile(filepath.Join("testdata", "adblock.txt"), "", Adult); err == nil {
		t.Fatal("LoadFile after Build accepted")
	}
}

func TestLoadFileLongLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "long.txt")
	content := "before.example.com\n" + strings.Repeat("x", 200<<10) + "\nafter.example.com\n" +
		strings.Repeat("y", 100<<10) // a long last line without newline
	os.WriteFile(p, []byte(content), 0o644)
	b := NewBuilder()
	st, err := b.LoadFile(p, "", Chat)
	if err != nil {
		t.Fatal(err)
	}
	if st.Added != 2 || st.Skipped != 2 {
		t.Fatalf("added %d skipped %d, %q", st.Added, st.Skipped, st.SkippedExamples)
	}
}

// makeUT1 writes a small UT1 tree with the quirks of the real one.
func makeUT1(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	mk := func(rel, content string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if strings.HasSuffix(rel, ".gz") {
			writeGzip(t, p, content)
			return
		}
		os.WriteFile(p, []byte(content), 0o644)
	}
	mk("gambling/domains", "bet365.com\n192.0.2.7\n.leading-dot.com\n")
	mk("gambling/urls", "casino.example.com/slots\n")
	mk("gambling/usage", "black\n")
	mk("audio-video/domains.gz", "netflix.com\nxn--bcher-kva.de\n")
	mk("audio-video/urls.gz", "bbc.co.uk/iplayer\nexample.org/A%7e/...\n")
	mk("social_networks/domains", "facebook.com\n")
	mk("webmail/domains.gz", "") // empty, as some upstream files are
	mk("vpn/domains", "nordvpn.com\n")
	// the mirror's byte split: a line is cut across the chunks
	mk("agressif/domains.0", "fight.example.com\nvio")
	mk("agressif/domains.1", "lent.example.com\nthird.example.com\n")
	// unmapped
	mk("bank/domains", "bank.example.com\n")
	mk("publicite/domains", "ads.example.com\n")
	// aliases: symlinks, and a copied alias folder whose target is here
	for alias, target := range map[string]string{"porn": "gambling", "proxy": "vpn"} {
		if err := os.Symlink(target, filepath.Join(dir, alias)); err != nil {
			t.Skipf("no symlinks: %v", err)
		}
	}
	mk("violence/domains", "copy-of-agressif.example.com\n")
	// an alias folder without its target counts under its own meaning
	mk("drugs/domains", "drugs-alias.example.com\n")
	mk("SOURCE.md", "not a category\n")
	return dir
}

func TestLoadUT1Tree(t *testing.T) {
	dir := makeUT1(t)
	b := NewBuilder()
	st, err := b.LoadUT1(dir)
	if err != nil {
		t.Fatal(err)
	}
	// added: gambling 2 + 1 url, audio-video 2 + 2 urls, social 1, vpn 1,
	// agressif 3, drugs 1; skipped: the IPv4 address.
	if st.Added != 13 || st.Skipped != 1 {
		t.Fatalf("added %d skipped %d: %q", st.Added, st.Skipped, st.SkippedExamples)
	}
	last := st.SkippedExamples[len(st.SkippedExamples)-1]
	if !strings.Contains(last, "bank") || !strings.Contains(last, "publicite") {
		t.Fatalf("unmapped categories not named: %q", st.SkippedExamples)
	}
	db := b.Build()
	tests := []struct {
		host, path string
		want       Set
	}{
		{"www.bet365.com", "", SetOf(Gambling)},
		{"www.leading-dot.com", "", SetOf(Gambling)},
		{"casino.example.com", "/slots/1", SetOf(Gambling)},
		{"casino.example.com", "", 0},
		{"netflix.com", "", SetOf(Streaming)},
		{"xn--bcher-kva.de", "", SetOf(Streaming)},
		{"www.bbc.co.uk", "/iplayer/x", SetOf(Streaming)},
		{"example.org", "/A~/b", SetOf(Streaming)},
		{"facebook.com", "", SetOf(Social)},
		{"nordvpn.com", "", SetOf(ProxyAvoidance)},
		{"fight.example.com", "", SetOf(Violence)},
		{"violent.example.com", "", SetOf(Violence)},
		{"third.example.com", "", SetOf(Violence)},
		{"vio", "", 0},
		{"lent.example.com", "", 0},
		{"copy-of-agressif.example.com", "", 0},
		{"drugs-alias.example.com", "", SetOf(Drugs)},
		{"bank.example.com", "", 0},
		{"ads.example.com", "", 0},
	}
	for _, tt := range tests {
		if got := db.Lookup(tt.host, tt.path); got != tt.want {
			t.Errorf("Lookup(%q, %q) = {%v}, want {%v}", tt.host, tt.path, got, tt.want)
		}
	}
}

func TestLoadUT1Errors(t *testing.T) {
	if _, err := NewBuilder().LoadUT1(filepath.Join(t.TempDir(), "nope")); err == nil ||
		!strings.Contains(err.Error(), "nope") {
		t.Fatalf("missing tree: %v", err)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "gambling"), 0o755)
	os.WriteFile(filepath.Join(dir, "gambling", "domains.gz"), []byte("\x1f\x8b\x08junk"), 0o644)
	_, err := NewBuilder().LoadUT1(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "gambling", "domains.gz")) {
		t.Fatalf("bad gzip in tree: %v", err)
	}
}

// TestPipelineMatchesLineByLine checks that LoadFile's two-stage reading
// gives what adding line by line gives, on a file longer than a chunk.
func TestPipelineMatchesLineByLine(t *testing.T) {
	var sb strings.Builder
	for i := 0; i < 3*chunkSize+17; i++ {
		switch i % 5 {
		case 0:
			sb.WriteString("0.0.0.0 h" + itoa(i) + ".example.com extra" + itoa(i) + ".example.net\n")
		case 1:
			sb.WriteString("||ab" + itoa(i) + ".example.org^\n")
		case 2:
			sb.WriteString("192.0.2." + itoa(i%250) + "\n")
		case 3:
			sb.WriteString("u" + itoa(i) + ".example.com/p/" + itoa(i) + "\n")
		default:
			sb.WriteString("# comment " + itoa(i) + "\nplain" + itoa(i) + ".example.com\n")
		}
	}
	p := filepath.Join(t.TempDir(), "big.txt")
	os.WriteFile(p, []byte(sb.String()), 0o644)

	b1 := NewBuilder()
	st1, err := b1.LoadFile(p, "", Hate)
	if err != nil {
		t.Fatal(err)
	}
	b2 := NewBuilder()
	var st2 Stats
	for i, line := range strings.Split(strings.TrimSuffix(sb.String(), "\n"), "\n") {
		b2.addLine(line, fmtAuto, Hate, &st2, p, i+1)
	}
	if st1.Added != st2.Added || st1.Skipped != st2.Skipped || st1.Added == 0 {
		t.Fatalf("pipeline %d/%d, line by line %d/%d", st1.Added, st1.Skipped, st2.Added, st2.Skipped)
	}
	if !reflect.DeepEqual(st1.SkippedExamples, st2.SkippedExamples) {
		t.Fatalf("examples differ:\n%q\n%q", st1.SkippedExamples, st2.SkippedExamples)
	}
	db1, db2 := b1.Build(), b2.Build()
	if db1.Len() != db2.Len() || db1.URLEntries() != db2.URLEntries() {
		t.Fatalf("Len %d/%d vs %d/%d", db1.Len(), db1.URLEntries(), db2.Len(), db2.URLEntries())
	}
	for _, probe := range []struct{ host, path string }{
		{"h5.example.com", ""}, {"extra5.example.net", ""}, {"x.ab6.example.org", ""},
		{"u8.example.com", "/p/8/x"}, {"plain9.example.com", ""}, {"u8.example.com", "/q"},
	} {
		if a, b := db1.Lookup(probe.host, probe.path), db2.Lookup(probe.host, probe.path); a != b {
			t.Errorf("Lookup(%q, %q): pipeline {%v}, line by line {%v}", probe.host, probe.path, a, b)
		}
	}
	if db1.Lookup("h5.example.com", "") != SetOf(Hate) || db1.Lookup("u8.example.com", "/p/8/x") != SetOf(Hate) {
		t.Fatal("entries missing")
	}
}

// A list that decompresses to far more than any real list (a gzip bomb)
// is refused with a clear error instead of keeping a reload busy.
func TestLoadFileTooBig(t *testing.T) {
	old := maxListBytes
	maxListBytes = 1 << 20
	t.Cleanup(func() { maxListBytes = old })
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte("casino.example\n"))
	zw.Write(bytes.Repeat([]byte("\n"), 2<<20))
	zw.Close()
	path := filepath.Join(t.TempDir(), "bomb.gz")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := NewBuilder().LoadFile(path, "domains", Gambling)
	if err == nil || !strings.Contains(err.Error(), "more than 1 MiB") || !strings.Contains(err.Error(), "bomb.gz") {
		t.Fatalf("err = %v, want a too-big error naming the file", err)
	}
}
