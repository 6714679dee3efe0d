package categories

import (
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
)

// maxHostLen is the longest DNS name in presentation form (RFC 1035 §2.3.4
// allows 255 octets on the wire, which is 253 characters without the root).
const maxHostLen = 253

// maxLabelLen is the longest DNS label (RFC 1035 §2.3.4).
const maxLabelLen = 63

// idnaProfile maps Unicode names to A-labels the way a browser does for
// lookup (UTS #46, non-transitional, so ß stays ß), but without the strict
// LDH rule: real lists and real hosts have underscores.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.StrictDomainName(false),
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
		if err != nil || !a.Is6() {
			return "", false
		}
		return a.String(), true
	}
	if n := strings.Count(s, ":"); n > 1 {
		// a bare IPv6 literal (DNS PTR names never get here: no colons)
		a, err := netip.ParseAddr(s)
		if err != nil {
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
		if strings.HasPrefix(label, "xn--") {
			if _, err := idna.Punycode.ToUnicode(label); err != nil {
				return false
			}
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
// and host are case-insensitive), as a byte prefix, after the same
// normalisation on both sides (RFC 3986 §6.2.2.2): a percent-escape of an
// unreserved character is decoded (%7E → ~), other escapes get upper-case
// hex digits (%c3%a9 → %C3%A9), and the fragment is dropped. The query is
// part of the path: example.com/forum?f=25 matches /forum?f=25&t=1.
//
// List entries also lose what UT1 leaves in them: regex escapes (\. → .)
// and a trailing "." or "..." (a truncated URL).

// normEntryPath normalises the path of a URL entry. It returns "/" for an
// entry whose path is empty after trimming.
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
	p = strings.TrimRight(p, ".")
	if p == "" {
		return "/"
	}
	if strings.IndexByte(p, '%') < 0 {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); {
		c, n, esc := pathByte(p, i)
		if esc {
			b.WriteByte('%')
			b.WriteByte(upperHex(p[i+1]))
			b.WriteByte(upperHex(p[i+2]))
		} else {
			b.WriteByte(c)
		}
		i += n
	}
	if p = strings.TrimRight(b.String(), "."); p == "" {
		return "/"
	}
	return p
}

// pathByte reads one unit of p at i: a byte (n=1), a decoded unreserved
// escape (n=3, esc false) or an escape kept as is (n=3, esc true).
func pathByte(p string, i int) (c byte, n int, esc bool) {
	c = p[i]
	if c != '%' || i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
		return c, 1, false
	}
	v := unhex(p[i+1])<<4 | unhex(p[i+2])
	if isUnreserved(v) {
		return v, 3, false
	}
	return '%', 3, true
}

// hasNormPrefix reports whether the request path, normalised as above, starts
// with prefix (an already normalised entry path). It never allocates.
func hasNormPrefix(path, prefix string) bool {
	i, j := 0, 0
	for j < len(prefix) {
		if i >= len(path) || path[i] == '#' {
			return false
		}
		c, n, esc := pathByte(path, i)
		if !esc {
			if prefix[j] != c {
				return false
			}
			i, j = i+n, j+1
			continue
		}
		unit := [3]byte{'%', upperHex(path[i+1]), upperHex(path[i+2])}
		for k := 0; k < 3 && j < len(prefix); k++ {
			if prefix[j] != unit[k] {
				return false
			}
			j++
		}
		i += n
	}
	return true
}

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
