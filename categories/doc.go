// Package categories is schoolgate's category database: which of the
// contract's stable categories (adult, gambling, … education) a host or a
// URL belongs to.
//
// A DB is built once per configuration snapshot by a Builder from the
// curated database compiled into the binary (data/<category>.txt, see
// data/README.md), the `lists:` of the config (inline entries, list files,
// UT1 trees), and is then immutable: lookups from any number of goroutines
// need no lock.
//
// # Matching (docs/contract.md §3)
//
// Hosts are first normalised by NormalizeHost: lower case, no trailing
// dot, no port, no userinfo, IPv6 without brackets, IDNs in punycode
// (UTS #46 lookup mapping, non-transitional, underscores allowed since real
// names have them). The common already-canonical name costs one scan and
// no allocation.
//
//   - A domain entry "bet365.com" matches bet365.com and every subdomain, on
//     label boundaries only (notbet365.com does not match). Lookup walks the
//     label suffixes of the host, longest first; the first entry found is the
//     most specific and gives the host its categories. Every list naming
//     that same entry adds its category (youtube.com from a streaming list
//     and from a school's education list gives both), while a longer entry
//     (music.youtube.com listed as streaming only) stands alone.
//   - A URL entry "host/path-prefix" matches a request for that host or a
//     subdomain whose path starts with the prefix. When a path is known
//     (plain HTTP, intercepted HTTPS, `check` of a URL) a matching URL entry
//     is more specific than any domain entry; among URL entries the longest
//     host wins, then the longest path. With no path (CONNECT, DNS) URL
//     entries play no part.
//   - Paths compare case-sensitively, as plain byte prefixes, after the
//     same normalisation on both sides (RFC 3986 §6.2.2): escapes of
//     unreserved characters decoded (%7E → ~, %67ames → games), other
//     escapes in upper-case hex (%2f → %2F, which stays no separator), a
//     stray '%' written %25, the fragment dropped; then, before the query
//     only, runs of slashes collapsed and "." and ".." segments resolved
//     (§5.2.4), so //games, /./games, /x/../games and /%2e/games are all
//     /games. The query is part of the path, compared as written
//     (normalised escapes aside): example.com/forum?f=25 matches
//     /forum?f=25&t=1 but not /forum?t=1&f=25. List entries also lose
//     UT1's regex escapes (\.) and what truncation leaves at the end
//     ("...", a cut escape "%2").
//   - The prefix is squidGuard's: plain bytes, not path segments, so
//     example.org/games matches /games, /games/1 and /gamesx too. UT1
//     entries such as example.com/index.php?id= rely on it (they must
//     match /index.php?id=42).
//   - A request path already in normal form (no '#', no escape to decode or
//     upper-case, no empty, "." or ".." segment) is searched as it is: one
//     scan to check it, no copy. Any other is normalised once per lookup
//     into a stack buffer (the heap only past 1 KiB). Lookup never
//     allocates for a path up to that size.
//
// # Index
//
// About 640,000 distinct entries come from all the public lists together
// (1.2 million lines). Domain entries live in one byte arena indexed by an
// open-addressing hash table of 16-byte, pointer-free entries (see
// domainIndex), so the garbage collector has almost nothing to scan and a
// lookup is a few hash probes without allocation. URL entries are grouped
// by host and kept sorted by path: finding the longest prefix is a binary
// search even where one host has hundreds of entries.
//
// # List formats
//
// LoadFile reads plain or gzip files (gzip known by its magic bytes):
//
//   - "domains": one name a line, or host/path for a URL entry (a scheme
//     is allowed); a CIDR block (192.0.2.0/24) or a wildcard or AdBlock
//     leftover in the path ('*', '^', '|') is junk;
//   - "hosts": an address (any sink: 0.0.0.0, 127.0.0.1, ::, …) then one or
//     more names, each added (host names only: host/path is junk);
//   - "adblock": ||domain^ and ||domain^$options rules; exceptions (@@),
//     cosmetic rules (##), rules with a path or wildcard and rules narrowed
//     by options such as domain= are skipped;
//   - "": the format is detected line by line (so one file may mix them, and
//     host/path lines become URL entries).
//
// '#' starts a comment at the start of a line or after whitespace ('!' too
// in AdBlock lists). LoadUT1 reads a UT1/squidGuard tree:
// <category>/domains (read as "domains" above, so a host/path line there
// is a URL entry too) and <category>/urls, each plain, .gz or byte-split
// into domains.0, domains.1 … (joined before splitting lines); UT1 names
// are mapped onto ours by MapUT1, unmapped categories are skipped and
// named, symlinked alias folders are skipped so nothing counts twice.
//
// Loaders never fail a list for a bad line: IP addresses where a name
// belongs, dotless names, wildcards, regex leftovers (\ ^ $ ( ) [ ] |),
// empty or over-long labels are skipped and counted in Stats. Names glued
// together by a bad edit (rahaporn.commanhwax.top) look like real names
// and are kept. A missing file or a broken gzip stream is an error naming
// the file.
//
// The package exports no metrics; the caller reports Stats and DB.Len.
package categories
