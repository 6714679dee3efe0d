package categories

import (
	"strings"
	"testing"

	"golang.org/x/net/idna"
)

// The seed corpora are in testdata/fuzz/<FuzzName>; the f.Add seeds below
// are the interesting shapes of real input.

func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{
		"www.bet365.com", "WWW.Bet365.COM.", "user:pw@host.example:443", "[::1]:80",
		"bücher.de", "xn--bcher-kva.de", "a_b.example.com", "1.2.3.4", "999.1.1.1",
		"", ".", "a..b", "*.x.com", "ｅｘａｍｐｌｅ．com", "xn--", "xn--zz.com", "[fe80::1%eth0]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, ok := NormalizeHost(s)
		if !ok {
			if h != "" {
				t.Fatalf("NormalizeHost(%q) = %q with ok false", s, h)
			}
			return
		}
		if h == "" || len(h) > maxHostLen {
			t.Fatalf("NormalizeHost(%q) = %q: bad length", s, h)
		}
		if h != strings.ToLower(h) {
			t.Fatalf("NormalizeHost(%q) = %q: not lower case", s, h)
		}
		again, ok := NormalizeHost(h)
		if !ok || again != h {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", s, h, again, ok)
		}
	})
}

func FuzzSplitTarget(f *testing.F) {
	for _, s := range []string{
		"https://user@WWW.Bet365.com:443/en?x=1", "www.bet365.com", "bet365.com/path",
		"http://[::1]:80/", "http://a.example?q", "//a.example/x#frag", "https://",
		"http://bücher.de/ä", "ftp://x.y/z", "a.example:99999/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, path, ok := SplitTarget(s)
		if !ok {
			return
		}
		if h, ok := NormalizeHost(host); !ok || h != host {
			t.Fatalf("SplitTarget(%q) host %q is not normalised (%q, %v)", s, host, h, ok)
		}
		if path != "" && path[0] != '/' {
			t.Fatalf("SplitTarget(%q) path %q does not start with /", s, path)
		}
		if strings.IndexByte(path, '#') >= 0 {
			t.Fatalf("SplitTarget(%q) path %q keeps a fragment", s, path)
		}
		h2, p2, ok := SplitTarget(host + path)
		if !ok || h2 != host || p2 != path {
			t.Fatalf("not idempotent: %q -> %q %q -> %q %q %v", s, host, path, h2, p2, ok)
		}
	})
}

func FuzzListLine(f *testing.F) {
	for _, s := range []string{
		"0.0.0.0 ads.example.com", "127.0.0.1 a.example b.example # c", ":: v6.example.org",
		"||casino.example^$important", "@@||x.example^", "x.example##.ad", "||a.example^$domain=b.c",
		".afshin.ir", "_video-bagarre.com", "bad\\.regex\\.com", "12.5.179.24/meth_info",
		"example.org/A%7eb/%c3%a9#frag", "theonion.com/bin/onionimp\\.cgi\\?x", "host//?v=",
		"example.org/pa...", "! comment", "[Adblock Plus 2.0]", "0.0.0.0",
	} {
		for fm := fmtAuto; fm <= fmtEmbedded; fm++ {
			f.Add(s, uint8(fm))
		}
	}
	f.Fuzz(func(t *testing.T, line string, fm uint8) {
		format := lineFormat(fm % (uint8(fmtEmbedded) + 1))
		b := NewBuilder()
		var st Stats
		b.addLine(line, format, Gambling, &st, "fuzz", 1)
		db := b.Build()
		if db.Len() > st.Added {
			t.Fatalf("%d entries from %d added", db.Len(), st.Added)
		}
		if st.Added == 0 && db.Len() != 0 {
			t.Fatalf("entries without an add")
		}
		// What parseEntry accepts, the database must find again.
		host, path, isURL, ok := parseEntry(line)
		if !ok {
			return
		}
		if h, ok2 := NormalizeHost(host); !ok2 || h != host {
			t.Fatalf("entry host %q not normalised", host)
		}
		b2 := NewBuilder()
		if !b2.Add(line, Chat) {
			t.Fatalf("parseEntry accepted %q but Add refused it", line)
		}
		db2 := b2.Build()
		if !isURL {
			if got := db2.Lookup("sub."+host, ""); got != SetOf(Chat) && len(host) < maxHostLen-4 {
				t.Fatalf("entry %q: Lookup(sub.%s) = {%v}", line, host, got)
			}
			return
		}
		if got := db2.Lookup(host, path); got != SetOf(Chat) {
			t.Fatalf("URL entry %q: Lookup(%q, %q) = {%v}", line, host, path, got)
		}
	})
}

func FuzzPathPrefix(f *testing.F) {
	for _, s := range []string{"/", "/a%7eb", "/%c3%a9", "/x?y=1", "/pa...", "/%2", "/%zz", "/%2E%2e",
		"//a", "/a/./b", "/a/..", "/a/..%2", "/a/%2E%2E.", "/a/b/.", "/x?y=/..", "/pa%2..."} {
		f.Add(s, "tail")
		f.Add(s, "?q=1")
	}
	f.Fuzz(func(t *testing.T, p, tail string) {
		// a tail with a slash, a dot or an escape may resolve or complete
		// what p ends with (p="/a/b", tail="/../c"): no prefix then
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "#\\") || strings.ContainsAny(tail, "#/.%") {
			return
		}
		n := normEntryPath(p)
		if again := normEntryPath(n); again != n {
			t.Fatalf("normEntryPath not idempotent: %q -> %q -> %q", p, n, again)
		}
		if !hasNormPrefix(p, n) {
			t.Fatalf("%q does not match its own entry %q", p, n)
		}
		if !hasNormPrefix(n, n) {
			t.Fatalf("normalised %q does not match itself", n)
		}
		if !hasNormPrefix(p+tail, n) {
			t.Fatalf("%q does not match the entry %q", p+tail, n)
		}
	})
}

// FuzzValidPunycode checks validPunycode against x/net's decoder.
func FuzzValidPunycode(f *testing.F) {
	for _, s := range []string{"bcher-kva", "sportfogads-t7a", "r8jz45g", "zckzah", "zz", "", "-", "-abc",
		"abc-", "a-b-c", "99999999999", "fa-hia", "d1aeom1d1ac", "p1ai", "bcher_x-n2a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return // only LDH (and _) labels reach validPunycode
			}
		}
		_, err := idna.Punycode.ToUnicode("xn--" + s)
		if got := validPunycode(s); got != (err == nil) {
			t.Fatalf("validPunycode(%q) = %v, x/net says %v", s, got, err)
		}
	})
}

// FuzzOriginPath: the origin reading of any path is a normalised path
// with no encoded separator left, and is only given when it differs.
func FuzzOriginPath(f *testing.F) {
	for _, s := range []string{
		"/%2Fiplayer", "/bitesize%2F..%2Fiplayer", "/a%5C..%5Cb", `/a\..\b`, "/a/..;/b", "/x%252F..%252Fy",
		"/%25252F", "/%252525252525252F", "/a?b=%2F", "/%", "/%2", "%2F", "/;", "/a;b/c;d?e;f", "/50%25off",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r, changed := OriginPath(p)
		if !changed {
			if r != "" {
				t.Fatalf("OriginPath(%q) = %q unchanged", p, r)
			}
			return
		}
		if r == normPath(p) {
			t.Fatalf("OriginPath(%q) = %q, the ordinary reading", p, r)
		}
		if normPath(r) != r {
			t.Fatalf("OriginPath(%q) = %q: not normalised (%q)", p, r, normPath(r))
		}
		path, _, _ := strings.Cut(r, "?")
		if strings.Contains(strings.ToUpper(path), "%2F") || strings.ContainsAny(path, "\\;") {
			t.Fatalf("OriginPath(%q) = %q: a separator or parameter left", p, r)
		}
	})
}
