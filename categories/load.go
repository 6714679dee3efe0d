package categories

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"github.com/schoolgate/schoolgate/internal/lines"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Stats counts what a loader took and what it skipped.
type Stats struct {
	Added   int
	Skipped int
	// A few of the skipped lines, for the program log.
	SkippedExamples []string
}

// maxExamples caps Stats.SkippedExamples.
const maxExamples = 10

func (s *Stats) skip(where string, lineNo int, text string) {
	s.Skipped++
	if len(s.SkippedExamples) < maxExamples {
		if len(text) > 80 {
			text = text[:80] + "…"
		}
		s.SkippedExamples = append(s.SkippedExamples, fmt.Sprintf("%s:%d: %q", where, lineNo, text))
	}
}

func (s *Stats) merge(o Stats) {
	s.Added += o.Added
	s.Skipped += o.Skipped
	for _, e := range o.SkippedExamples {
		if len(s.SkippedExamples) >= maxExamples {
			break
		}
		s.SkippedExamples = append(s.SkippedExamples, e)
	}
}

// lineFormat is how one line of a list is read.
type lineFormat uint8

const (
	fmtAuto     lineFormat = iota // decide per line
	fmtDomains                    // one domain (or host/path) a line
	fmtHosts                      // hosts file: address, then names
	fmtAdblock                    // ||domain^ rules
	fmtURLs                       // squidGuard urls: host/path a line
	fmtEmbedded                   // the curated data: domain or domain/path
)

func parseFormat(format string) (lineFormat, error) {
	switch strings.ToLower(format) {
	case "", "auto":
		return fmtAuto, nil
	case "domains", "domain", "plain":
		return fmtDomains, nil
	case "hosts":
		return fmtHosts, nil
	case "adblock":
		return fmtAdblock, nil
	case "urls":
		return fmtURLs, nil
	}
	return 0, fmt.Errorf("unknown list format %q (want domains, hosts, adblock or empty for auto)", format)
}

// LoadFile adds the entries of a list file (plain or .gz) under c. format
// is "domains", "hosts", "adblock" or "" to detect it line by line. In a
// "domains" or detected list a host/path line is a URL entry.
//
// Gzip is recognised by its magic bytes, whatever the file is called.
// A line that is not a usable entry is skipped and counted; only a file
// that cannot be opened or decompressed is an error.
func (b *Builder) LoadFile(path, format string, c Category) (Stats, error) {
	f, err := parseFormat(format)
	if err != nil {
		return Stats{}, fmt.Errorf("loading list %q: %w", path, err)
	}
	if c >= Unclassified {
		return Stats{}, fmt.Errorf("loading list %q: invalid category %v", path, c)
	}
	return b.loadFiles(path, []string{path}, f, c)
}

// loadFiles reads the files as one stream (the mirror's byte-split
// domains.0, domains.1 … are joined in order before splitting lines).
func (b *Builder) loadFiles(name string, paths []string, f lineFormat, c Category) (Stats, error) {
	var st Stats
	if b.dom == nil {
		return st, fmt.Errorf("loading list %q: builder already built", name)
	}
	r, closeAll, err := openLists(paths)
	if err != nil {
		return st, err
	}
	defer closeAll()
	// Two stages, so that both cores work: this goroutine inserts into the
	// index while another decompresses, splits and parses (about half the
	// work each). Chunks of parsed entries are recycled.
	chunks := make(chan []parsedEntry, 4)
	free := make(chan []parsedEntry, 6)
	var readErr error
	go func() {
		defer close(chunks)
		defer func() {
			if r := recover(); r != nil { // a bug, not bad input: report it, keep serving
				readErr = fmt.Errorf("parsing failed: %v", r)
			}
		}()
		readErr = b.parseChunks(r, name, f, &st, chunks, free)
	}()
	added, failed := b.insertChunks(chunks, free, SetOf(c))
	// the reader goroutine is done: st and readErr are ours again
	st.Added += added
	st.Skipped += failed
	if readErr != nil {
		return st, fmt.Errorf("loading list %q: %w", name, readErr)
	}
	return st, nil
}

// openLists opens the files at paths as one stream, and returns the
// function that closes them.
func openLists(paths []string) (io.Reader, func(), error) {
	readers := make([]io.Reader, 0, len(paths))
	closers := make([]io.Closer, 0, len(paths))
	closeAll := func() {
		for _, c := range closers {
			c.Close()
		}
	}
	for _, p := range paths {
		r, closer, err := openList(p)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("loading list %q: %w", p, err)
		}
		closers = append(closers, closer)
		readers = append(readers, r)
	}
	return io.MultiReader(readers...), closeAll, nil
}

// parseChunks splits r into lines and parses their entries, sending them
// on chunks chunkSize at a time (in a slice from free when there is one);
// the lines it skips are counted in st.
func (b *Builder) parseChunks(r io.Reader, name string, f lineFormat, st *Stats, chunks chan<- []parsedEntry, free <-chan []parsedEntry) error {
	buf := make([]parsedEntry, 0, chunkSize)
	err := readLines(r, func(lineNo int, line string) {
		scanLine(line, f, func(tok string) {
			host, path, isURL, ok := parseEntry(tok)
			if !ok {
				b.skip(st, name, lineNo, line)
				return
			}
			buf = append(buf, parsedEntry{host: host, path: path, isURL: isURL})
			if len(buf) == chunkSize {
				chunks <- buf
				select {
				case buf = <-free:
				default:
					buf = make([]parsedEntry, 0, chunkSize)
				}
			}
		}, func() { b.skip(st, name, lineNo, line) })
	}, func(lineNo int) {
		st.skip(name, lineNo, "(line too long)")
	})
	if len(buf) > 0 {
		chunks <- buf
	}
	return err
}

// insertChunks inserts the entries of each chunk into the index in set,
// handing the emptied chunk back on free; it counts the entries added and
// those the index refused.
func (b *Builder) insertChunks(chunks <-chan []parsedEntry, free chan<- []parsedEntry, set Set) (added, failed int) {
	for chunk := range chunks {
		for i := range chunk {
			if b.insert(chunk[i].host, chunk[i].path, chunk[i].isURL, set) {
				added++
			} else {
				failed++
			}
		}
		clear(chunk) // drop the strings for the collector
		select {
		case free <- chunk[:0]:
		default:
		}
	}
	return added, failed
}

// parsedEntry is an entry checked and normalised by parseEntry.
type parsedEntry struct {
	host, path string
	isURL      bool
}

// chunkSize is how many parsed entries travel together between stages.
const chunkSize = 4096

// maxListBytes bounds what one list file may hold once decompressed: the
// biggest real lists are tens of MiB, and a small gzip "bomb" must not
// keep a reload busy for minutes.
// (A variable so that a test can lower it.)
var maxListBytes int64 = 256 << 20

// capReader fails once more than n bytes have been read.
type capReader struct {
	r io.Reader
	n int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, fmt.Errorf("it holds more than %d MiB of text (decompressed): not a list this loader takes", maxListBytes>>20)
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	k, err := c.r.Read(p)
	c.n -= int64(k)
	return k, err
}

// openList opens a plain or gzip file, telling them apart by magic bytes,
// and reads at most maxListBytes of it.
func openList(path string) (io.Reader, io.Closer, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(file, 64<<10)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			file.Close()
			return nil, nil, fmt.Errorf("reading gzip: %w", err)
		}
		return &capReader{r: zr, n: maxListBytes}, file, nil
	}
	return &capReader{r: br, n: maxListBytes}, file, nil
}

// maxLine is the longest line read; longer ones are skipped.
const maxLine = 64 << 10

// readLines calls fn for every line of r (without its line ending) and
// tooLong for a line over maxLine bytes.
func readLines(r io.Reader, fn func(lineNo int, line string), tooLong func(lineNo int)) error {
	return lines.EachFit(r, maxLine, func(lineNo int, b []byte) {
		if lineNo == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
		}
		fn(lineNo, string(b))
	}, tooLong)
}

// skip counts a skipped line (and shows it to the tests' hook).
func (b *Builder) skip(st *Stats, where string, lineNo int, line string) {
	st.skip(where, lineNo, line)
	if b.onSkip != nil {
		b.onSkip(where, lineNo, line)
	}
}

// addLine reads one list line in format f and adds what it names.
func (b *Builder) addLine(line string, f lineFormat, c Category, st *Stats, where string, lineNo int) {
	scanLine(line, f, func(tok string) {
		if b.Add(tok, c) {
			st.Added++
		} else {
			b.skip(st, where, lineNo, line)
		}
	}, func() { b.skip(st, where, lineNo, line) })
}

// scanHostsLine splits a hosts-file line, "ADDRESS NAME...", into its
// names; a bare name is an entry too.
func scanHostsLine(line string, entry func(tok string), junk func()) {
	first, rest, _ := strings.Cut(line, " ")
	if i := strings.IndexByte(first, '\t'); i >= 0 {
		first, rest = line[:i], line[i+1:]
	}
	rest = strings.TrimSpace(rest)
	if !isIPToken(first) {
		if rest == "" && strings.IndexByte(line, '/') < 0 {
			entry(line) // a bare name in a hosts file
		} else {
			junk()
		}
		return
	}
	if rest == "" {
		junk()
		return
	}
	for rest != "" {
		name := rest
		if i := strings.IndexAny(rest, " \t"); i >= 0 {
			name, rest = rest[:i], strings.TrimLeft(rest[i+1:], " \t")
		} else {
			rest = ""
		}
		if strings.IndexByte(name, '/') >= 0 {
			junk()
			continue
		}
		entry(name)
	}
}

// scanLine splits one list line in format f into candidate entries,
// calling entry for each and junk for each part that is none. Comments and
// blank lines call neither.
func scanLine(line string, f lineFormat, entry func(tok string), junk func()) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return
	}
	if f == fmtAuto || f == fmtAdblock {
		if line[0] == '!' || line[0] == '[' {
			return // AdBlock comment or "[Adblock Plus 2.0]" header
		}
		if isCosmetic(line) {
			junk()
			return
		}
	}
	line = stripComment(line)
	if f == fmtAuto {
		f = detectFormat(line)
	}
	switch f {
	case fmtDomains, fmtEmbedded:
		if hasSpace(line) || isURLJunk(line) {
			junk()
			return
		}
		entry(line)
	case fmtURLs:
		if hasSpace(line) {
			junk()
			return
		}
		if strings.IndexByte(line, '/') < 0 {
			line += "/"
		}
		entry(line)
	case fmtHosts:
		scanHostsLine(line, entry, junk)
	case fmtAdblock:
		host, ok := adblockHost(line)
		if !ok {
			junk()
			return
		}
		entry(host)
	default:
		junk()
	}
}

// isURLJunk reports a host/path line of a plain list that is no URL entry:
// a wildcard or AdBlock leftover in the path ('*', '^', '|'), or a CIDR
// block (192.0.2.0/24) written where a name belongs. UT1's urls files are
// not checked: there an address with a short numeric path
// (107.172.238.16/42) is a real URL.
func isURLJunk(line string) bool {
	rest, _ := cutScheme(line)
	host, path, ok := strings.Cut(rest, "/")
	if !ok {
		return false
	}
	if strings.ContainsAny(path, "*^|") {
		return true
	}
	if path == "" || len(path) > 3 {
		return false
	}
	for i := 0; i < len(path); i++ {
		if path[i] < '0' || path[i] > '9' {
			return false
		}
	}
	return isIPToken(host)
}

// detectFormat guesses the format of one (comment-free, trimmed) line.
func detectFormat(line string) lineFormat {
	if strings.HasPrefix(line, "||") || strings.HasPrefix(line, "@@") ||
		strings.ContainsAny(line, "^$") {
		return fmtAdblock
	}
	if hasSpace(line) {
		return fmtHosts
	}
	return fmtEmbedded // a domain, or host/path
}

// stripComment removes a '#' comment that starts a line or follows
// whitespace ("0.0.0.0 a.example # ads").
func stripComment(line string) string {
	for i := 1; i < len(line); i++ {
		if line[i] == '#' && (line[i-1] == ' ' || line[i-1] == '\t') {
			return strings.TrimSpace(line[:i])
		}
	}
	return line
}

// isCosmetic reports AdBlock element-hiding and scriptlet rules.
func isCosmetic(line string) bool {
	return strings.Contains(line, "##") || strings.Contains(line, "#@#") ||
		strings.Contains(line, "#?#") || strings.Contains(line, "#$#") ||
		strings.Contains(line, "#%#")
}

// adblockHost extracts the domain of a "||domain^" or "||domain^$opts" rule.
// Exceptions (@@), rules with a path or wildcard, and rules whose options
// narrow them (domain=, client=, denyallow=, badfilter …) are not domain
// entries.
func adblockHost(line string) (string, bool) {
	if !strings.HasPrefix(line, "||") {
		// a bare domain in an AdBlock list blocks that domain
		if strings.ContainsAny(line, "|^$@*/ \t") {
			return "", false
		}
		return line, true
	}
	rule := line[2:]
	if i := strings.IndexByte(rule, '$'); i >= 0 {
		for _, opt := range strings.Split(rule[i+1:], ",") {
			if strings.IndexByte(opt, '=') >= 0 || strings.TrimSpace(opt) == "badfilter" {
				return "", false
			}
		}
		rule = rule[:i]
	}
	rule = strings.TrimSuffix(rule, "|")
	rule = strings.TrimSuffix(rule, "^")
	if rule == "" || strings.ContainsAny(rule, "|^$@*/ \t") {
		return "", false
	}
	return rule, true
}

func hasSpace(s string) bool { return strings.ContainsAny(s, " \t") }

func isIPToken(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// ut1Map maps UT1 names whose meaning is ours under another name. Names
// that equal one of ours map to it (see MapUT1).
var ut1Map = map[string]Category{
	"audio-video":         Streaming,
	"radio":               Streaming,
	"social_networks":     Social,
	"redirector":          ProxyAvoidance,
	"strict_redirector":   ProxyAvoidance,
	"strong_redirector":   ProxyAvoidance,
	"vpn":                 ProxyAvoidance,
	"residential-proxies": ProxyAvoidance,
	"proxy":               ProxyAvoidance, // alias of redirector
	"warez":               Piracy,
	"agressif":            Violence,
	"aggressive":          Violence, // alias of agressif
	"drogue":              Drugs,
	"mixed_adult":         Adult,
	"porn":                Adult, // alias of adult
	"arjel":               Gambling,
	"cryptojacking":       Malware,
	"ddos":                Hacking,
	"download":            Downloads,
	"filehosting":         Downloads,
	"educational_games":   Education,
	"liste_bu":            Education,
	"liste_blanche":       Education,
}

// ut1Aliases are the symlinks of the UT1 tree (alias → target). A walker
// skips them so that nothing counts twice.
var ut1Aliases = map[string]string{
	"ads":        "publicite",
	"aggressive": "agressif",
	"drugs":      "drogue",
	"mail":       "forums",
	"porn":       "adult",
	"proxy":      "redirector",
	"violence":   "agressif",
}

// MapUT1 maps a UT1/squidGuard category name onto ours.
func MapUT1(name string) (Category, bool) {
	name = strings.ToLower(strings.TrimSpace(name))
	if c, ok := ut1Map[name]; ok {
		return c, true
	}
	if name == "unclassified" {
		return 0, false
	}
	return Parse(name)
}

// LoadUT1 adds a UT1/squidGuard tree (<category>/domains and /urls, plain
// or .gz), mapping UT1 category names onto ours; categories with no
// mapping are skipped (and named in the stats' examples).
//
// Symlinked folders (UT1's aliases: ads, porn, proxy …) are skipped, and so
// is an alias folder that is a copy when its target is there too, so no
// list counts twice. Either file may be missing; the mirror's byte-split
// domains.0, domains.1 … are joined in order.
func (b *Builder) LoadUT1(dir string) (Stats, error) {
	var st Stats
	ents, err := os.ReadDir(dir)
	if err != nil {
		return st, fmt.Errorf("loading UT1 tree %q: %w", dir, err)
	}
	present := make(map[string]bool)
	for _, e := range ents {
		if e.IsDir() {
			present[e.Name()] = true
		}
	}
	var unmapped []string
	for _, e := range ents {
		name := e.Name()
		if e.Type()&fs.ModeSymlink != 0 || !e.IsDir() {
			continue
		}
		if target, ok := ut1Aliases[name]; ok && present[target] {
			continue
		}
		c, ok := MapUT1(name)
		if !ok {
			unmapped = append(unmapped, name)
			continue
		}
		catDir := filepath.Join(dir, name)
		for _, kind := range [...]struct {
			base string
			f    lineFormat
		}{{"domains", fmtDomains}, {"urls", fmtURLs}} {
			paths, err := ut1Files(catDir, kind.base)
			if err != nil {
				return st, fmt.Errorf("loading UT1 tree %q: %w", dir, err)
			}
			if len(paths) == 0 {
				continue
			}
			s, err := b.loadFiles(filepath.Join(catDir, kind.base), paths, kind.f, c)
			st.merge(s)
			if err != nil {
				return st, err
			}
		}
	}
	if len(unmapped) > 0 {
		sort.Strings(unmapped)
		st.SkippedExamples = append(st.SkippedExamples,
			"UT1 categories with no schoolgate category, not loaded: "+strings.Join(unmapped, ", "))
	}
	return st, nil
}

// ut1Files finds the file(s) holding a UT1 list: base, base.gz, or the
// byte-split chunks base.0, base.1 … (each plain or gzip) in order.
func ut1Files(dir, base string) ([]string, error) {
	for _, name := range [...]string{base, base + ".gz"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return []string{p}, nil
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	var paths []string
	for i := 0; ; i++ {
		found := false
		for _, name := range [...]string{base + "." + strconv.Itoa(i), base + "." + strconv.Itoa(i) + ".gz"} {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				paths = append(paths, p)
				found = true
				break
			}
		}
		if !found {
			return paths, nil
		}
	}
}
