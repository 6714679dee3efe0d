package categories

// DB is an immutable category database: domain entries (a host and all its
// subdomains) and URL entries (host/path prefix), each with a Set.
// It is safe for concurrent use.
type DB struct {
	// implementation: categories helper
}

// Lookup returns the categories of a host (already normalised with
// NormalizeHost) and, for a URL, its path ("" when only the host is known;
// otherwise the path and query as sent, starting with "/").
// The longest matching entry wins; a matching URL entry is more specific
// than any domain entry. The empty Set means unclassified.
func (db *DB) Lookup(host, path string) Set { return 0 }

// HasURLEntries reports whether any URL entry could match under host, so
// that a caller may key a cache on the host alone when it is false.
func (db *DB) HasURLEntries(host string) bool { return false }

// Len returns the number of distinct entries.
func (db *DB) Len() int { return 0 }

// NormalizeHost returns the canonical form of a host as written in a URL, a
// Host header, a CONNECT line or a DNS question: lower case, no trailing
// dot, no port, no userinfo, IDN in punycode (A-label) form, IPv6 without
// brackets. ok is false for something that is not a host name or address.
func NormalizeHost(s string) (host string, ok bool) { return "", false }

// SplitTarget splits a check target (a URL, or a bare host, or host/path)
// into a normalised host and its path ("" when the target is a bare host).
func SplitTarget(target string) (host, path string, ok bool) { return "", "", false }

// Builder collects entries and builds a DB.
type Builder struct{}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder { return &Builder{} }

// Add adds one entry (a domain, or host/path for a URL entry) under c.
// It reports false, adding nothing, for junk (IP addresses, dotless or
// glued names, regex leftovers).
func (b *Builder) Add(entry string, c Category) bool { return false }

// AddEmbedded adds the project's curated embedded database.
func (b *Builder) AddEmbedded() {}

// Build returns the database. The Builder must not be used afterwards.
func (b *Builder) Build() *DB { return &DB{} }

// Stats counts what a loader took and what it skipped.
type Stats struct {
	Added   int
	Skipped int
	// A few of the skipped lines, for the program log.
	SkippedExamples []string
}

// LoadFile adds the entries of a list file (plain or .gz) under c. format
// is "domains", "hosts", "adblock" or "" to detect it line by line.
func (b *Builder) LoadFile(path, format string, c Category) (Stats, error) {
	return Stats{}, nil
}

// LoadUT1 adds a UT1/squidGuard tree (<category>/domains and /urls, plain
// or .gz), mapping UT1 category names onto ours; categories with no
// mapping are skipped (and named in the stats' examples).
func (b *Builder) LoadUT1(dir string) (Stats, error) { return Stats{}, nil }

// MapUT1 maps a UT1/squidGuard category name onto ours.
func MapUT1(name string) (Category, bool) { return 0, false }
