package categories

import (
	"fmt"
	"net"
	"sort"
	"strings"
)

// DB is an immutable category database: domain entries (a host and all its
// subdomains) and URL entries (host/path prefix), each with a Set.
// It is safe for concurrent use.
type DB struct {
	dom  *domainIndex
	urls map[string][]urlEntry // host → its URL entries, sorted by path
	nURL int
}

type urlEntry struct {
	path   string // normalised (normEntryPath)
	set    Set
	parent int32 // index of the longest entry that is a prefix of path, or -1
}

// Lookup returns the categories of a host (already normalised with
// NormalizeHost) and, for a URL, its path ("" when only the host is known;
// otherwise the path and query as sent, starting with "/").
// The longest matching entry wins; a matching URL entry is more specific
// than any domain entry. The empty Set means unclassified.
//
// Among URL entries the one with the longest host wins, then the one with
// the longest path. Paths are normalised first (see the package doc):
// //games, /./games and /%67ames are /games. Lookup does not allocate,
// except to normalise a path whose normal form is over 1 KiB.
func (db *DB) Lookup(host, path string) Set {
	if db == nil {
		return 0
	}
	if path != "" && len(db.urls) > 0 {
		if set, ok := db.lookupURL(host, path); ok {
			return set
		}
	}
	if db.dom == nil {
		return 0
	}
	// Walk label suffixes, longest first: the first hit is the most
	// specific entry. Dotless names are never entries, so the last label
	// is not probed.
	for s := host; ; {
		i := strings.IndexByte(s, '.')
		if i < 0 {
			return 0
		}
		if set, ok := db.dom.get(s); ok {
			return set
		}
		s = s[i+1:]
	}
}

// lookupURL finds the longest URL entry matching host (or a parent
// domain) and path. Most hosts have no URL entry and pay one map probe per
// label; a path that is already normal (pathIsNormal) is searched as it is.
func (db *DB) lookupURL(host, path string) (Set, bool) {
	for s := host; ; {
		if list, ok := db.urls[s]; ok {
			if !pathIsNormal(path) {
				return db.lookupURLNorm(s, list, path)
			}
			if set, ok := longestIn(list, path); ok {
				return set, true
			}
		}
		i := strings.IndexByte(s, '.')
		if i < 0 {
			return 0, false
		}
		s = s[i+1:]
	}
}

// lookupURLNorm is lookupURL from host s (whose entries are list) on, with
// the path normalised once into a stack buffer (on the heap only when its
// normal form is over maxPathBuf bytes).
func (db *DB) lookupURLNorm(s string, list []urlEntry, path string) (Set, bool) {
	var buf [maxPathBuf]byte
	norm := appendNormPath(buf[:0], path)
	for {
		if set, ok := longestInBytes(list, norm); ok {
			return set, true
		}
		for {
			i := strings.IndexByte(s, '.')
			if i < 0 {
				return 0, false
			}
			s = s[i+1:]
			var ok bool
			if list, ok = db.urls[s]; ok {
				break
			}
		}
	}
}

// HasURLEntries reports whether any URL entry could match under host, so
// that a caller may key a cache on the host alone when it is false.
func (db *DB) HasURLEntries(host string) bool {
	if db == nil || len(db.urls) == 0 {
		return false
	}
	for s := host; ; {
		if _, ok := db.urls[s]; ok {
			return true
		}
		i := strings.IndexByte(s, '.')
		if i < 0 {
			return false
		}
		s = s[i+1:]
	}
}

// Len returns the number of distinct entries.
func (db *DB) Len() int {
	if db == nil {
		return 0
	}
	n := db.nURL
	if db.dom != nil {
		n += db.dom.len()
	}
	return n
}

// DomainEntries and URLEntries return the number of distinct entries of
// each kind.
func (db *DB) DomainEntries() int {
	if db == nil || db.dom == nil {
		return 0
	}
	return db.dom.len()
}

// URLEntries returns the number of distinct URL entries.
func (db *DB) URLEntries() int {
	if db == nil {
		return 0
	}
	return db.nURL
}

// Builder collects entries and builds a DB.
type Builder struct {
	dom  *domainIndex
	urls map[string]map[string]Set // host → normalised path → set

	onSkip func(where string, lineNo int, line string) // tests only
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{dom: newDomainIndex(), urls: make(map[string]map[string]Set)}
}

// Add adds one entry (a domain, or host/path for a URL entry) under c.
// It reports false, adding nothing, for junk (IP addresses, dotless or
// glued names, regex leftovers).
//
// A domain entry may carry a leading dot (squidGuard's ".example.com") and
// a trailing one; a URL entry may carry an http:// or https:// scheme and
// may have an IPv4 address as its host.
func (b *Builder) Add(entry string, c Category) bool {
	if c >= Unclassified || b.dom == nil {
		return false
	}
	host, path, isURL, ok := parseEntry(entry)
	if !ok {
		return false
	}
	return b.insert(host, path, isURL, SetOf(c))
}

// insert adds a parsed entry.
func (b *Builder) insert(host, path string, isURL bool, set Set) bool {
	if !isURL {
		return b.dom.add(host, set)
	}
	m := b.urls[host]
	if m == nil {
		m = make(map[string]Set)
		b.urls[host] = m
	}
	m[path] |= set
	return true
}

// parseEntry checks and normalises one list entry.
func parseEntry(entry string) (host, path string, isURL, ok bool) {
	e := strings.TrimSpace(entry)
	if len(e) > 4096 {
		return "", "", false, false
	}
	if rest, found := cutScheme(e); found {
		e, isURL = rest, true
	}
	h := e
	if i := strings.IndexByte(e, '/'); i >= 0 {
		h, path, isURL = e[:i], e[i:], true
	}
	h = strings.TrimLeft(h, ".")
	if h == "" || strings.ContainsAny(h, ":@[]") {
		return "", "", false, false
	}
	host, ok = NormalizeHost(h)
	if !ok || strings.IndexByte(host, '.') < 0 {
		return "", "", false, false
	}
	if isIP(host) && !isURL {
		return "", "", false, false
	}
	if isURL {
		if path == "" {
			path = "/"
		}
		path = normEntryPath(path)
	}
	return host, path, isURL, true
}

// EntryProblem says, for the author of a config, why Builder.Add would skip
// a list entry; "" when it takes it. The config check uses it so that an
// inline entry is refused where it is written rather than dropped at start.
func EntryProblem(entry string) string {
	if _, _, _, ok := parseEntry(entry); ok {
		return ""
	}
	e := strings.TrimSpace(entry)
	isURL := false
	if rest, found := cutScheme(e); found {
		e, isURL = rest, true
	}
	h := e
	if i := strings.IndexByte(e, '/'); i >= 0 {
		h, isURL = e[:i], true
	}
	h = strings.TrimLeft(h, ".")
	bare := strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if hh, _, err := net.SplitHostPort(h); err == nil {
		bare = strings.TrimSuffix(strings.TrimPrefix(hh, "["), "]")
	}
	switch {
	case h == "":
		return fmt.Sprintf("entry %q has no host name", entry)
	case isIPToken(bare) && !isURL:
		return fmt.Sprintf("entry %q is an IP address: lists hold host names and would skip it (an address no one may reach goes under proxy.deny_destinations)", entry)
	case strings.ContainsAny(h, ":@[]"):
		return fmt.Sprintf("entry %q has a port, a user name or an IPv6 address: list entries are host names only, and it would be skipped", entry)
	}
	host, ok := NormalizeHost(h)
	switch {
	case !ok:
		return fmt.Sprintf("entry %q is not a valid host name", entry)
	case strings.IndexByte(host, '.') < 0:
		return fmt.Sprintf("entry %q is a single-label name (like localhost or intranet): lists match full names only and would skip it; write the full name, such as %s.school.example", entry, host)
	}
	return fmt.Sprintf("entry %q would be skipped: not a host name or host/path", entry)
}

func cutScheme(e string) (string, bool) {
	for _, p := range [...]string{"http://", "https://"} {
		if len(e) >= len(p) && strings.EqualFold(e[:len(p)], p) {
			return e[len(p):], true
		}
	}
	return e, false
}

// Build returns the database. The Builder must not be used afterwards.
func (b *Builder) Build() *DB {
	if b.dom == nil { // built before: an empty database rather than a panic
		return &DB{}
	}
	db := &DB{dom: b.dom}
	b.dom.compact()
	if len(b.urls) > 0 {
		db.urls = make(map[string][]urlEntry, len(b.urls))
		for host, m := range b.urls {
			list := make([]urlEntry, 0, len(m))
			for p, s := range m {
				list = append(list, urlEntry{path: p, set: s})
			}
			// sorted by path for longestPathEntry's binary search: a host
			// may have hundreds of entries (docs.google.com has 956 in UT1)
			sort.Slice(list, func(i, j int) bool { return list[i].path < list[j].path })
			linkParents(list)
			db.urls[host] = list
			db.nURL += len(list)
		}
	}
	b.dom, b.urls = nil, nil
	return db
}
