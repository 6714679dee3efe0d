package categories

import (
	"bytes"
	"math"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// maxHostLen is the longest DNS name in presentation form (RFC 1035 §2.3.4
// allows 255 octets on the wire, which is 253 characters without the root).
const maxHostLen = 253

// maxLabelLen is the longest DNS label (RFC 1035 §2.3.4).
const maxLabelLen = 63

// idnaProfile maps Unicode names to A-labels the way a browser does for
// lookup (UTS #46, non-transitional, so ß stays ß), but without the strict
// LDH rule (real lists and real hosts have underscores) nor the hyphen
// rules, so that a name is accepted the same with or without a Unicode
// label elsewhere in it (ASCII "-a.example.com" is accepted too).
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.StrictDomainName(false),
	idna.CheckHyphens(false),
)

// NormalizeHost returns the canonical form of a host as written in a URL, a
// Host header, a CONNECT line or a DNS question: lower case, no trailing
// dot, no port, no userinfo, IDN in punycode (A-label) form, IPv6 without
// brackets. ok is false for something that is not a host name or address.
//
// The common case (a name that is already canonical) is returned as is,
// without allocating: only names with upper case, a port, userinfo,
// brackets, a trailing dot, non-ASCII bytes, an xn-- label or a numeric last
// label take the slow path.
func NormalizeHost(s string) (host string, ok bool) {
	if isCanonicalFast(s) {
		return s, true
	}
	return normalizeSlow(s)
}

// isCanonicalFast reports whether s is already a canonical, valid host
// name: [a-z0-9_-] labels of 1..63 bytes, at most 253 bytes, no xn-- label
// (those are checked on the slow path) and a last label that is not all
// digits (an IPv4 address or junk, also checked on the slow path).
func isCanonicalFast(s string) bool {
	if len(s) == 0 || len(s) > maxHostLen {
		return false
	}
	label := 0     // length of the current label
	digits := true // current label is all digits so far
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
			digits = false
			if c == 'x' && label == 0 && strings.HasPrefix(s[i:], "xn--") {
				return false
			}
		case c >= '0' && c <= '9':
		case c == '-' || c == '_':
			digits = false
		case c == '.':
			if label == 0 || label > maxLabelLen {
				return false
			}
			label, digits = 0, true
			continue
		default:
			return false
		}
		label++
	}
	return label > 0 && label <= maxLabelLen && !digits
}

func normalizeSlow(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 4*maxHostLen {
		return "", false
	}
	// userinfo: everything up to the last '@' (a password may hold '@').
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 || !validPortSuffix(s[end+1:]) {
			return "", false
		}
		a, err := netip.ParseAddr(s[1:end])
		// a zone (fe80::1%eth0) names an interface of the client, not a
		// destination anyone could list
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
		return a.String(), true
	}
	if n := strings.Count(s, ":"); n > 1 {
		// a bare IPv6 literal (DNS PTR names never get here: no colons)
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
		return a.String(), true
	} else if n == 1 {
		i := strings.IndexByte(s, ':')
		if !validPortSuffix(s[i:]) {
			return "", false
		}
		s = s[:i]
	}
	s = strings.TrimRight(s, ".")
	if s == "" {
		return "", false
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if !ascii {
		a, err := idnaProfile.ToASCII(s)
		if err != nil {
			return "", false
		}
		s = strings.TrimRight(a, ".")
	} else {
		s = lowerASCII(s)
	}
	if !validHostSyntax(s) {
		return "", false
	}
	if lastLabelNumeric(s) {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return "", false
		}
		return a.String(), true
	}
	return s, true
}

// validPortSuffix reports whether p is "" or ":" followed by at most five
// digits (an empty port, "host:", is tolerated as URLs allow it).
func validPortSuffix(p string) bool {
	if p == "" {
		return true
	}
	if p[0] != ':' || len(p) > 6 {
		return false
	}
	for i := 1; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// lowerASCII lower-cases s, allocating only when it has an upper-case byte.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// validHostSyntax checks a lower-case ASCII name: labels of [a-z0-9_-],
// 1..63 bytes, 253 bytes in all, and xn-- labels that decode as punycode.
func validHostSyntax(s string) bool {
	if len(s) == 0 || len(s) > maxHostLen {
		return false
	}
	for len(s) > 0 {
		label := s
		rest := ""
		if i := strings.IndexByte(s, '.'); i >= 0 {
			label, rest = s[:i], s[i+1:]
			if rest == "" {
				return false // a trailing dot was stripped before; "a.." is junk
			}
		}
		if len(label) == 0 || len(label) > maxLabelLen {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
		if strings.HasPrefix(label, "xn--") && !validPunycode(label[4:]) {
			return false
		}
		s = rest
	}
	return true
}

// lastLabelNumeric reports whether the name's last label is all digits,
// which no registered name has: it is an IPv4 address or junk.
func lastLabelNumeric(s string) bool {
	i := strings.LastIndexByte(s, '.')
	l := s[i+1:]
	if l == "" {
		return false
	}
	for j := 0; j < len(l); j++ {
		if l[j] < '0' || l[j] > '9' {
			return false
		}
	}
	return true
}

// isIP reports whether a normalised host is an IP address.
func isIP(host string) bool {
	return strings.IndexByte(host, ':') >= 0 || lastLabelNumeric(host)
}

// SplitTarget splits a check target (a URL, or a bare host, or host/path)
// into a normalised host and its path ("" when the target is a bare host).
//
// The scheme and userinfo are dropped, the fragment too (a browser never
// sends it). A query with no path ("http://a.example?q") gives "/?q". The
// path is otherwise returned as written: Lookup normalises percent-escapes
// when it compares paths.
func SplitTarget(target string) (host, path string, ok bool) {
	s := strings.TrimSpace(target)
	if i := strings.Index(s, "://"); i > 0 && isScheme(s[:i]) {
		s = s[i+3:]
	} else if strings.HasPrefix(s, "//") {
		s = s[2:]
	}
	auth := s
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		auth, path = s[:i], s[i:]
	}
	if i := strings.IndexByte(path, '#'); i >= 0 {
		path = path[:i]
	}
	path = strings.TrimRightFunc(path, unicode.IsSpace)
	if strings.HasPrefix(path, "?") {
		path = "/" + path
	}
	host, ok = NormalizeHost(auth)
	if !ok {
		return "", "", false
	}
	return host, path, true
}

func isScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
			i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

// Path comparison for URL entries.
//
// Paths are compared case-sensitively (RFC 3986 §6.2.2.1: only the scheme
// and host are case-insensitive), as a plain byte prefix, after the same
// normalisation on both sides (normPath):
//
//   - percent-encoding (RFC 3986 §6.2.2.2): an escape of an unreserved
//     character is decoded (%7E → ~, %67 → g), other escapes get upper-case
//     hex digits (%c3%a9 → %C3%A9, %2f → %2F, still not a separator), a
//     stray '%' is written %25;
//   - path segments, before the query only (RFC 3986 §6.2.2.3): runs of
//     slashes collapse to one and "." and ".." segments are resolved as in
//     §5.2.4, after the decoding above, so /a//b, /a/./b, /x/../a/b and
//     /a/%2E/b are all /a/b ("/.." at the root stays at the root);
//   - the fragment is dropped; the query is kept, as written (normalised
//     escapes aside): example.com/forum?f=25 matches /forum?f=25&t=1.
//
// List entries also lose what UT1 leaves in them (normEntryPath): regex
// escapes (\. → .) and a truncated end ("...", a cut escape "%" or "%2").

// maxPathBuf is the stack buffer a request path is normalised into; a
// longer normalised path (rare) is built on the heap.
const maxPathBuf = 1024

// pathIsNormal reports whether normPath would return p unchanged: no '#',
// every '%' the start of an upper-case escape of a reserved or non-ASCII
// byte, and when p starts with '/', no empty, "." or ".." segment before
// the query (a final empty segment, a trailing slash, is fine). It is the
// whole cost of normalisation for the common, clean path: a few
// vectorised scans, and a walk over the segments only for a path with
// "/." in it (/.well-known).
func pathIsNormal(p string) bool {
	if strings.IndexByte(p, '#') >= 0 || strings.IndexByte(p, '%') >= 0 && !escapesNormal(p) {
		return false
	}
	if p == "" || p[0] != '/' {
		return true
	}
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if strings.Contains(p, "//") {
		return false
	}
	return !strings.Contains(p, "/.") || segmentsNormal(p)
}

// escapesNormal reports whether every '%' in p starts an escape that
// pathUnit keeps as it is.
func escapesNormal(p string) bool {
	for {
		i := strings.IndexByte(p, '%')
		if i < 0 {
			return true
		}
		if i+2 >= len(p) || !isUpperHex(p[i+1]) || !isUpperHex(p[i+2]) ||
			isUnreserved(unhex(p[i+1])<<4|unhex(p[i+2])) {
			return false
		}
		p = p[i+3:]
	}
}

// segmentsNormal reports whether a path (no query) has no empty, "." or
// ".." segment but perhaps a final empty one.
func segmentsNormal(p string) bool {
	for {
		i := strings.IndexByte(p, '/')
		if i < 0 || i == len(p)-1 {
			return true
		}
		p = p[i+1:]
		switch p[0] {
		case '/':
			return false
		case '.':
			if len(p) == 1 || p[1] == '/' || p[1] == '.' && (len(p) == 2 || p[2] == '/') {
				return false
			}
		}
	}
}

// appendNormPath appends the normalised form of the request or entry path
// p to dst (see above). A path that does not start with '/' ("*", or a
// query alone) gets its escapes normalised only.
func appendNormPath(dst []byte, p string) []byte {
	if i := strings.IndexByte(p, '#'); i >= 0 {
		p = p[:i]
	}
	path, query := p, ""
	if i := strings.IndexByte(p, '?'); i >= 0 {
		path, query = p[:i], p[i:]
	}
	start := len(dst)
	dst = appendEscapes(dst, path)
	if len(dst) > start && dst[start] == '/' {
		dst = dst[:start+removeDotSegments(dst[start:])]
	}
	return appendEscapes(dst, query)
}

// appendEscapes appends s to dst with its percent-escapes normalised
// (pathUnit), copying the runs between them whole.
func appendEscapes(dst []byte, s string) []byte {
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:i]...)
		u, n := pathUnit(s, i)
		dst = append(dst, u.b[:u.n]...)
		s = s[i+n:]
	}
}

// removeDotSegments rewrites b (a path starting with '/', no query) in
// place with runs of slashes collapsed and "." and ".." segments resolved
// (RFC 3986 §5.2.4), and returns its new length. The output is never
// longer than the input: it is written behind the reading position.
func removeDotSegments(b []byte) int {
	w := 0
	for r := 0; r < len(b); {
		// b[r] is '/'; the segment runs to the next '/' or the end
		e := r + 1
		if i := bytes.IndexByte(b[e:], '/'); i >= 0 {
			e += i
		} else {
			e = len(b)
		}
		seg, last := b[r+1:e], e == len(b)
		switch {
		case len(seg) == 0 || len(seg) == 1 && seg[0] == '.':
			// empty (a run of slashes) or ".": nothing, but a final one
			// leaves the trailing slash
			if last && (w == 0 || b[w-1] != '/') {
				b[w] = '/'
				w++
			}
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			// the output so far is "" or "/s1/s2…" with no trailing slash
			if w > 0 {
				w = bytes.LastIndexByte(b[:w], '/')
			}
			if last {
				b[w] = '/'
				w++
			}
		default:
			w += copy(b[w:], b[r:e])
		}
		r = e
	}
	return w
}

// OriginPath returns a request's path (and query) as an origin that
// decodes what RFC 3986 keeps as data reads it, normalised as Lookup
// normalises: nginx and Apache (AllowEncodedSlashes Decode) serve
// /%2Fiplayer and /bitesize%2F..%2Fiplayer as /iplayer; IIS reads '\' and
// %5C as '/'; Tomcat and Jetty drop ";parameters" from a segment, so
// /bitesize/..;/iplayer is /iplayer; an origin that decodes twice reads
// %252F as '/'. All of these are applied at once, through every layer of
// %25: the result is the reading a filter must also match, since
// some origin serves it. changed is false when the path holds none of
// them (reading is then ""), so that its only reading is the one Lookup
// makes.
func OriginPath(path string) (reading string, changed bool) {
	if i := strings.IndexByte(path, '#'); i >= 0 {
		path = path[:i]
	}
	p, query := path, ""
	if i := strings.IndexByte(path, '?'); i >= 0 {
		p, query = path[:i], path[i:]
	}
	if strings.IndexByte(p, '%') < 0 && strings.IndexByte(p, '\\') < 0 && strings.IndexByte(p, ';') < 0 {
		return "", false
	}
	b := []byte(p)
	// Each round that decodes a %25 shortens b, so this ends.
	for again := true; again; {
		b, again = decodeSeparators(b)
	}
	b = dropSegmentParams(b)
	if string(b) == p {
		return "", false
	}
	reading = normPath(string(b) + query)
	if reading == normPath(path) {
		return "", false
	}
	return reading, true
}

// decodeSeparators rewrites %2F, %5C and '\' in b as '/' in place, and
// decodes each %25 that starts another escape (%252F → %2F), reporting
// whether it did the latter, so that the caller decodes once more.
func decodeSeparators(b []byte) ([]byte, bool) {
	w, again := 0, false
	for r := 0; r < len(b); r++ {
		c := b[r]
		switch {
		case c == '\\':
			c = '/'
		case c == '%' && r+2 < len(b) && (b[r+1] == '2' && (b[r+2] == 'F' || b[r+2] == 'f') ||
			b[r+1] == '5' && (b[r+2] == 'C' || b[r+2] == 'c')):
			c = '/'
			r += 2
		case c == '%' && r+4 < len(b) && b[r+1] == '2' && b[r+2] == '5' && isHex(b[r+3]) && isHex(b[r+4]):
			r += 2 // "%25XX" becomes "%XX"
			again = true
		}
		b[w] = c
		w++
	}
	return b[:w], again
}

// dropSegmentParams removes ";parameters" from the end of every segment
// of b, as servlet containers do before they map a path.
func dropSegmentParams(b []byte) []byte {
	w, skip := 0, false
	for _, c := range b {
		switch {
		case c == '/':
			skip = false
		case c == ';':
			skip = true
		}
		if !skip {
			b[w] = c
			w++
		}
	}
	return b[:w]
}

// normPath returns the normalised form of a path as a string (tests and
// list loading; Lookup normalises into a stack buffer).
func normPath(p string) string {
	if pathIsNormal(p) {
		return p
	}
	return string(appendNormPath(make([]byte, 0, len(p)+8), p))
}

// normEntryPath normalises the path of a URL entry (starting with '/'). It
// returns "/" for an entry whose path is empty after trimming.
//
// Besides normPath it drops what a truncated UT1 URL ends with: trailing
// dots ("..."), and a cut percent-escape ("%" or "%2", which would
// otherwise never match the full escape in a request). The trimming never
// makes the last segment a "." or ".." that the untrimmed entry did not
// have ("/a/..%2" becomes "/a/", not "/"), so an entry written as a
// request path always matches its own entry.
func normEntryPath(p string) string {
	if i := strings.IndexByte(p, '#'); i >= 0 {
		p = p[:i]
	}
	if strings.IndexByte(p, '\\') >= 0 {
		var b strings.Builder
		for i := 0; i < len(p); i++ {
			if p[i] == '\\' && i+1 < len(p) {
				i++
			}
			b.WriteByte(p[i])
		}
		p = b.String()
	}
	if !endsInDotSegment(p) {
		t := trimEntryEnd(p)
		if endsInDotSegment(t) {
			t = t[:strings.LastIndexByte(t, '/')+1]
		}
		p = t
	}
	if p == "" {
		return "/"
	}
	p = normPath(p)
	// decoded escapes may leave dots at the end (/pa%2E%2E%2E); the
	// resolved path has no "." or ".." segment left to spoil
	if q := strings.TrimRight(p, "."); q != p {
		p = q
	}
	if p == "" {
		return "/"
	}
	return p
}

// endsInDotSegment reports whether p has no query and its last segment
// is "." or ".." once unreserved escapes are decoded (".", "%2E", ".%2e" …).
func endsInDotSegment(p string) bool {
	if strings.IndexByte(p, '?') >= 0 {
		return false
	}
	seg := p[strings.LastIndexByte(p, '/')+1:]
	dots := 0
	for i := 0; i < len(seg); i++ {
		switch {
		case seg[i] == '.':
		case seg[i] == '%' && i+2 < len(seg) && seg[i+1] == '2' && (seg[i+2] == 'E' || seg[i+2] == 'e'):
			i += 2
		default:
			return false
		}
		dots++
	}
	return dots == 1 || dots == 2
}

// trimEntryEnd drops what a truncated URL leaves at the end of an entry:
// dots ("..."), and a cut percent-escape ("%" or "%2").
func trimEntryEnd(p string) string {
	for {
		q := strings.TrimRight(p, ".")
		if n := len(q); n >= 1 && q[n-1] == '%' {
			q = q[:n-1]
		} else if n >= 2 && q[n-2] == '%' && isHex(q[n-1]) {
			q = q[:n-2]
		}
		if q == p {
			return p
		}
		p = q
	}
}

// unit is one normalised path character: a byte, or a kept escape "%XX".
type unit struct {
	b [3]byte
	n uint8
}

// pathUnit reads one unit of p at i, consuming n bytes: an escape of an
// unreserved character is decoded (%7E → ~), another escape gets
// upper-case hex (%c3 → %C3), a stray '%' becomes "%25" (as browsers send
// it), and any other byte is itself.
func pathUnit(p string, i int) (u unit, n int) {
	c := p[i]
	if c != '%' {
		return unit{b: [3]byte{c}, n: 1}, 1
	}
	if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
		return unit{b: [3]byte{'%', '2', '5'}, n: 3}, 1
	}
	if v := unhex(p[i+1])<<4 | unhex(p[i+2]); isUnreserved(v) {
		return unit{b: [3]byte{v}, n: 1}, 3
	}
	return unit{b: [3]byte{'%', upperHex(p[i+1]), upperHex(p[i+2])}, n: 3}, 3
}

// hasNormPrefix reports whether the request path, normalised, starts with
// prefix (an already normalised entry path). Tests use it as the
// definition that longestPathEntry's search must agree with.
func hasNormPrefix(path, prefix string) bool {
	return strings.HasPrefix(normPath(path), prefix)
}

func plainLCP(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// longestPathEntry returns the longest entry of list (sorted by path, with
// parent links) that is a prefix of the normalised request path.
//
// Let E be the largest entry not above the path. Every entry that is a
// prefix of the path sorts at or below E, and none is longer than the
// common prefix of E and the path (it would sort between them), so all of
// them are prefixes of E: they are E's chain of parents. One binary search
// and a short walk up the chain, however many entries the host has.
func longestPathEntry(list []urlEntry, path string) (Set, bool) {
	if pathIsNormal(path) {
		return longestIn(list, path)
	}
	var buf [maxPathBuf]byte
	return longestInBytes(list, appendNormPath(buf[:0], path))
}

// longestIn is longestPathEntry for a path that needs no normalising.
func longestIn(list []urlEntry, path string) (Set, bool) {
	lo, hi := 0, len(list)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if path >= list[m].path {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return 0, false
	}
	return walkParents(list, lo-1, plainLCP(path, list[lo-1].path))
}

// longestInBytes is longestIn for a normalised path in a buffer; the
// string(p) conversions in comparisons do not allocate.
func longestInBytes(list []urlEntry, p []byte) (Set, bool) {
	lo, hi := 0, len(list)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if string(p) >= list[m].path {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return 0, false
	}
	e := list[lo-1].path
	l := 0
	for l < len(p) && l < len(e) && p[l] == e[l] {
		l++
	}
	return walkParents(list, lo-1, l)
}

// walkParents returns the first of entry i and its parents no longer than
// l, the common prefix of entry i and the path.
func walkParents(list []urlEntry, i, l int) (Set, bool) {
	for j := int32(i); j >= 0; j = list[j].parent {
		if len(list[j].path) <= l {
			return list[j].set, true
		}
	}
	return 0, false
}

// linkParents sets each entry's parent: the longest other entry that is a
// prefix of it. In sorted order an entry's prefixes are on the stack.
func linkParents(list []urlEntry) {
	stack := make([]int32, 0, 8)
	for i := range list {
		for len(stack) > 0 && !strings.HasPrefix(list[i].path, list[stack[len(stack)-1]].path) {
			stack = stack[:len(stack)-1]
		}
		list[i].parent = -1
		if len(stack) > 0 {
			list[i].parent = stack[len(stack)-1]
		}
		stack = append(stack, int32(i))
	}
}

func isUpperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func upperHex(c byte) byte {
	if c >= 'a' && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}

// isUnreserved reports RFC 3986 §2.3 unreserved characters.
func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// validPunycode reports whether s (an A-label without "xn--") decodes as
// RFC 3492 punycode, as idna.Punycode.ToUnicode would, without building the
// decoded string: hosts with xn-- labels are common enough on the hot path.
func validPunycode(s string) bool {
	const (
		base, tmin, tmax = 36, 1, 26
		maxLabelRunes    = 1024
	)
	if s == "" {
		return true
	}
	pos := 1 + strings.LastIndexByte(s, '-')
	if pos == 1 {
		return false
	}
	if pos == len(s) {
		// only basic code points: an all-ASCII xn-- label, which x/net (and
		// UTS #46 since revision 33) rejects as a spoofing risk
		return false
	}
	out := 0
	if pos > 0 {
		out = pos - 1 // basic code points, copied as they are
	}
	i, n, bias := int64(0), int64(128), int64(72)
	for pos < len(s) {
		oldI, w := i, int64(1)
		for k := int64(base); ; k += base {
			if pos == len(s) {
				return false
			}
			digit, ok := punyDigit(s[pos])
			if !ok {
				return false
			}
			pos++
			i += digit * w
			if i > math.MaxInt32 {
				return false
			}
			t := k - bias
			if k <= bias {
				t = tmin
			} else if k >= bias+tmax {
				t = tmax
			}
			if digit < t {
				break
			}
			w *= base - t
			if w > math.MaxInt32 {
				return false
			}
		}
		if out >= maxLabelRunes {
			return false
		}
		x := int64(out + 1)
		bias = punyAdapt(i-oldI, x, oldI == 0)
		n += i / x
		i %= x
		if n > utf8.MaxRune {
			return false
		}
		out++
		i++
	}
	return true
}

func punyDigit(c byte) (int64, bool) {
	switch {
	case c >= '0' && c <= '9':
		return int64(c - ('0' - 26)), true
	case c >= 'a' && c <= 'z':
		return int64(c - 'a'), true
	case c >= 'A' && c <= 'Z':
		return int64(c - 'A'), true
	}
	return 0, false
}

// punyAdapt is RFC 3492 §6.1's bias adaptation.
func punyAdapt(delta, numPoints int64, first bool) int64 {
	if first {
		delta /= 700
	} else {
		delta /= 2
	}
	delta += delta / numPoints
	k := int64(0)
	for delta > ((36-1)*26)/2 {
		delta /= 36 - 1
		k += 36
	}
	return k + (36-1+1)*delta/(delta+38)
}
