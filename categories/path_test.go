package categories

import (
	"strings"
	"testing"
)

func TestNormPath(t *testing.T) {
	tests := []struct{ in, want string }{
		// already normal: returned as is
		{"/", "/"},
		{"/games", "/games"},
		{"/games/", "/games/"},
		{"/.well-known/x", "/.well-known/x"},
		{"/a/..b/c.", "/a/..b/c."},
		{"/x?a=//b/../c", "/x?a=//b/../c"},
		{"*", "*"},
		// runs of slashes
		{"//games", "/games"},
		{"/a//b///c", "/a/b/c"},
		{"/a//", "/a/"},
		{"//", "/"},
		// dot segments (RFC 3986 §5.2.4)
		{"/./games", "/games"},
		{"/games/.", "/games/"},
		{"/games/./", "/games/"},
		{"/a/../games", "/games"},
		{"/games/../games", "/games"},
		{"/games/..", "/"},
		{"/..", "/"},
		{"/../../games", "/games"},
		{"/a/b/c/./../../g", "/a/g"},
		{"/a/b/..//c", "/a/c"},
		{"/.//./games", "/games"},
		// percent-encoding: unreserved decoded, others upper case, stray %
		{"/%67ames", "/games"},
		{"/%67%61%6D%65%73", "/games"},
		{"/a%7eb", "/a~b"},
		{"/%c3%a9", "/%C3%A9"},
		{"/a%2fb", "/a%2Fb"}, // an encoded slash is no separator
		{"/a%2F..%2Fb", "/a%2F..%2Fb"},
		{"/%2e/games", "/games"}, // decoded first, then resolved
		{"/x/%2E%2e/games", "/games"},
		{"/x/.%2E/games", "/games"},
		{"/100%", "/100%25"},
		{"/%zz", "/%25zz"},
		{"/%4", "/%254"},
		// query: kept, escapes normalised, no segment rules
		{"/forum?f=25", "/forum?f=25"},
		{"/a/./forum?f=%32%35", "/a/forum?f=25"},
		{"//x?y=//z/./", "/x?y=//z/./"},
		{"/x?%3F", "/x?%3F"},
		{"/a/..?q", "/?q"},
		// fragment dropped
		{"/games#top", "/games"},
		{"/a/../b#/../c", "/b"},
		// no leading slash: escapes only
		{"a/./b%7e", "a/./b~"},
	}
	for _, tt := range tests {
		if got := normPath(tt.in); got != tt.want {
			t.Errorf("normPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := normPath(tt.want); got != tt.want {
			t.Errorf("normPath not idempotent on %q: %q", tt.want, got)
		}
		if want := tt.in == tt.want; pathIsNormal(tt.in) != want {
			t.Errorf("pathIsNormal(%q) = %v, want %v", tt.in, !want, want)
		}
		if !pathIsNormal(tt.want) {
			t.Errorf("pathIsNormal(%q) = false on a normal path", tt.want)
		}
	}
}

func TestNormEntryPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/games", "/games"},
		{"//arm4", "/arm4"},
		{"/a/./b/../c", "/a/c"},
		{"/%67ames", "/games"},
		{"/truncated/pa...", "/truncated/pa"},
		{"/...", "/"},
		{"/a/...", "/a/"},
		{"/pa%2E%2E%2E", "/pa"},
		{"/pa%2", "/pa"},
		{"/pa%", "/pa"},
		{"/pa%2...", "/pa"},
		{"/x?y=...", "/x?y="},
		{"/index.php?id=", "/index.php?id="},
		{"/a/..", "/"},      // a real dot segment, not a truncation
		{"/a/b/.", "/a/b/"}, // likewise
		{"/a/%2E.", "/"},
		{"/a/..%2", "/a/"},    // trimming makes no ".." that was not there
		{"/a/%2E%2E.", "/a/"}, // "..." is not a dot segment
		{"/bin/a\\.cgi\\?x", "/bin/a.cgi?x"},
		{"/frag#x", "/frag"},
		{"", "/"},
	}
	for _, tt := range tests {
		if got := normEntryPath(tt.in); got != tt.want {
			t.Errorf("normEntryPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := normEntryPath(tt.want); got != tt.want {
			t.Errorf("normEntryPath not idempotent on %q: %q", tt.want, got)
		}
		if p := strings.ReplaceAll(tt.in, "\\", ""); p != "" && !hasNormPrefix(p, tt.want) {
			t.Errorf("entry %q as a request does not match its entry %q", p, tt.want)
		}
	}
}

// TestURLPathBypass checks that the shapes of one path a client can send
// all match (or all miss) the same URL entries.
func TestURLPathBypass(t *testing.T) {
	b := NewBuilder()
	for _, e := range []struct {
		entry string
		c     Category
	}{
		{"example.org/games", Games},
		{"example.org/index.php?id=", Forums},
		{"example.org/x/./y/../z", Hacking}, // stored as /x/z
		{"example.org//double", Chat},       // stored as /double
		{"example.org/a%2Fb", Piracy},       // an encoded slash stays one
		{"example.org", Education},
	} {
		if !b.Add(e.entry, e.c) {
			t.Fatalf("Add(%q) refused", e.entry)
		}
	}
	db := b.Build()
	tests := []struct {
		path string
		want Category
	}{
		{"/games", Games},
		{"//games", Games},
		{"///games/", Games},
		{"/./games", Games},
		{"/games/../games", Games},
		{"/x/../games", Games},
		{"/../games", Games},
		{"/%67ames", Games},
		{"/%67%61mes/level1", Games},
		{"/%2e/games", Games},
		{"/x/%2E%2E/games", Games},
		{"/.//games?x=1", Games},
		{"/games#frag", Games},
		{"/gamesx", Games}, // squidGuard's plain prefix
		{"/Games", Education},
		{"/game", Education},
		{"/games/..", Education},
		{"/games/../other", Education},
		{"/x/games", Education},
		{"/%2Fgames", Education}, // an encoded slash is not a separator
		{"/index.php?id=7", Forums},
		{"//index.php?id=7", Forums},
		{"/./index.php?id=7", Forums},
		{"/index.php?id", Education},
		{"/index.php?x=1&id=7", Education}, // the query is compared as written
		{"/x/z/1", Hacking},
		{"/x/y/../z", Hacking},
		{"/x//z", Hacking},
		{"/x/y/z", Education},
		{"/double", Chat},
		{"//double", Chat},
		{"/a%2fb", Piracy},
		{"/a%2Fb/c", Piracy},
		{"/a/b", Education},
	}
	for _, tt := range tests {
		for _, host := range []string{"example.org", "www.example.org"} {
			if got := db.Lookup(host, tt.path); got != SetOf(tt.want) {
				t.Errorf("Lookup(%q, %q) = {%v}, want {%v}", host, tt.path, got, tt.want)
			}
		}
		// the longest-prefix search agrees with the definition
		if got := hasNormPrefix(tt.path, "/games"); got != (tt.want == Games) {
			t.Errorf("hasNormPrefix(%q, /games) = %v", tt.path, got)
		}
	}
	if got := db.Lookup("example.org", ""); got != SetOf(Education) {
		t.Errorf("no path: {%v}", got)
	}
}

// TestURLPathLong checks paths whose normal form does not fit the stack
// buffer.
func TestURLPathLong(t *testing.T) {
	long := "/" + strings.Repeat("a", maxPathBuf)
	b := NewBuilder()
	b.Add("example.org/games", Games)
	b.Add("example.org"+long+"/x", Chat)
	db := b.Build()
	for path, want := range map[string]Set{
		"/games/" + strings.Repeat("%41", maxPathBuf): SetOf(Games),
		strings.Repeat("/.", maxPathBuf) + "/games":   SetOf(Games),
		long + "/y/../x": SetOf(Chat),
		long + "//x":     SetOf(Chat),
		long + "/%78/1":  SetOf(Chat),
		long + "/y":      0,
	} {
		if got := db.Lookup("example.org", path); got != want {
			t.Errorf("Lookup(%.30q…) = {%v}, want {%v}", path, got, want)
		}
	}
}

func TestLookupURLNormAllocs(t *testing.T) {
	b := NewBuilder()
	b.Add("example.org/games", Games)
	b.Add("sub.example.org/other", Chat)
	db := b.Build()
	allocs := testing.AllocsPerRun(100, func() {
		db.Lookup("sub.example.org", "//games")
		db.Lookup("sub.example.org", "/x/../%67ames/./1?q=%7e")
		db.Lookup("sub.example.org", "/other")
	})
	if allocs != 0 {
		t.Fatalf("Lookup allocates %v times on paths to normalise", allocs)
	}
}

// FuzzNormPath checks the path normaliser: no panic, idempotent, the
// clean-path test agrees with it, and what comes out is as long as it
// can be.
func FuzzNormPath(f *testing.F) {
	for _, s := range []string{
		"/", "/games", "//games", "/./games", "/games/../games", "/%67ames", "/a%2fb",
		"/..", "/../..", "/a/b/./../c/", "/x?y=/../z", "/x#/../y", "/%", "/%2", "/%2e%2E/",
		"", "*", "a/./b", "/a//..//b", "/.well-known/x", "/...", "/a/..b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		n := normPath(p)
		if again := normPath(n); again != n {
			t.Fatalf("not idempotent: %q -> %q -> %q", p, n, again)
		}
		if !pathIsNormal(n) {
			t.Fatalf("normPath(%q) = %q, which pathIsNormal rejects", p, n)
		}
		if pathIsNormal(p) && n != p {
			t.Fatalf("pathIsNormal(%q) but normPath gives %q", p, n)
		}
		if slow := string(appendNormPath(nil, p)); slow != n {
			t.Fatalf("appendNormPath(%q) = %q, normPath %q", p, slow, n)
		}
		if len(n) > 3*len(p) {
			t.Fatalf("normPath(%q) = %q: too long", p, n)
		}
		if strings.HasPrefix(p, "/") && !strings.HasPrefix(n, "/") {
			t.Fatalf("normPath(%q) = %q lost the leading slash", p, n)
		}
		// a regex escape is undone once: `\\x` gives `\x`, then "x"
		e := normEntryPath(p)
		if again := normEntryPath(e); again != e && strings.IndexByte(e, '\\') < 0 {
			t.Fatalf("normEntryPath not idempotent: %q -> %q -> %q", p, e, again)
		}
	})
}

// TestOriginPath checks the reading of a path by origins that decode
// encoded separators (nginx, Apache), read '\' as '/' (IIS), drop
// ";parameters" (Tomcat) or decode twice.
func TestOriginPath(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		changed  bool
	}{
		{"/iplayer", "", false},
		{"/%2Fiplayer", "/iplayer", true},
		{"/%2fiplayer", "/iplayer", true},
		{"/bitesize%2F..%2Fiplayer", "/iplayer", true},
		{"/bitesize%2F%2E%2E%2Fiplayer", "/iplayer", true},
		{"/bitesize%5C..%5Ciplayer", "/iplayer", true},
		{`/bitesize\..\iplayer`, "/iplayer", true},
		{"/bitesize/..;/iplayer", "/iplayer", true},
		{"/bitesize;x=1/../iplayer", "", false}, // as sent, already /iplayer
		{"/bitesize%252F..%252Fiplayer", "/iplayer", true},
		{"/bitesize%25252F..%25252Fiplayer", "/iplayer", true},
		{"/a%2Fb?x=%2F", "/a/b?x=%2F", true},
		{"/50%25off", "", false},     // a literal '%', no separator under it
		{"/a/b%2Fc", "/a/b/c", true}, // the reading differs from /a/b%2Fc
		{"/a/%7Eb", "", false},       // an unreserved escape: Lookup already decodes it
		{"/a;b", "/a", true},
		{"/x/./y", "", false},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, changed := OriginPath(tt.in)
			if got != tt.want || changed != tt.changed {
				t.Errorf("OriginPath(%q) = %q, %v; want %q, %v", tt.in, got, changed, tt.want, tt.changed)
			}
		})
	}
}

// TestOriginPathLookup: a URL entry matches the readings an origin serves.
func TestOriginPathLookup(t *testing.T) {
	b := NewBuilder()
	b.Add("bbc.co.uk/iplayer", Streaming)
	b.Add("bbc.co.uk/bitesize", Education)
	db := b.Build()
	for _, p := range []string{"/%2Fiplayer", "/bitesize%2F..%2Fiplayer", "/bitesize/..;/iplayer"} {
		if got := db.Lookup("www.bbc.co.uk", p); got == SetOf(Streaming) {
			t.Errorf("Lookup(%q) as sent = %v; the as-sent reading was expected to miss the entry", p, got)
		}
		r, changed := OriginPath(p)
		if !changed {
			t.Fatalf("OriginPath(%q) unchanged", p)
		}
		if got := db.Lookup("www.bbc.co.uk", r); got != SetOf(Streaming) {
			t.Errorf("Lookup(origin reading %q of %q) = %v, want streaming", r, p, got)
		}
	}
}
