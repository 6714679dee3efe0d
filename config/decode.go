package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// decoder walks a yaml.Node tree into a Config, collecting problems
// instead of stopping at the first. Checks that refer to something
// defined elsewhere in the file (a schedule named in a rule, a profile
// named in networks) are queued in later and run once the whole file has
// been read, so the order of the top-level keys does not matter.
type decoder struct {
	file  string
	cfg   *Config
	probs Problems
	later []func()

	// items counts list items walked: aliases can make a small file name
	// billions of them, so the walk stops at maxItems.
	items, maxItems int

	// lines of keys whose problems are found after decoding (0: absent)
	line struct {
		timezone, defaultProfile, profiles, requireAuth, alerts int
		listen                                                  map[string]int
	}
}

func (d *decoder) addf(line int, format string, args ...any) {
	d.probs = append(d.probs, Problem{File: d.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// parseDoc parses data into its single document's root node (nil for an
// empty document). A YAML syntax error becomes a problem with the
// parser's line.
func (d *decoder) parseDoc(data []byte) (root *yaml.Node) {
	defer func() {
		// yaml.v3 turns its own failures into errors, but a parser bug
		// must still not take the program down.
		if r := recover(); r != nil {
			root = nil
			d.addf(1, "cannot parse YAML: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		d.yamlError(err, data)
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		d.addf(extra.Line, "a second YAML document starts here: a config is one document")
	case !errors.Is(err, io.EOF):
		d.yamlError(err, data)
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return doc.Content[0]
	}
	return nil
}

var (
	yamlLineRE   = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)
	yamlAnchorRE = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
)

// yamlParserErrors are the messages of yaml.v3's parser (not its scanner):
// yaml.v3 reports their line counted from 0, and omits it on the first line.
var yamlParserErrors = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// yamlError turns a yaml.v3 syntax error into a problem on the right line.
func (d *decoder) yamlError(err error, data []byte) {
	m := yamlLineRE.FindStringSubmatch(err.Error())
	if m == nil {
		d.addf(lineOfTab(data), "broken YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		return
	}
	line, _ := strconv.Atoi(m[1])
	msg := m[2]
	if yamlParserErrors[msg] {
		line++
	}
	if a := yamlAnchorRE.FindStringSubmatch(msg); a != nil && line == 0 {
		for i, l := range bytes.Split(data, []byte("\n")) {
			if bytes.Contains(l, []byte("*"+a[1])) {
				line = i + 1
				break
			}
		}
	}
	if line < 1 {
		line = lineOfTab(data)
	}
	d.addf(line, "broken YAML: %s", msg)
}

// lineOfTab is where to point when the YAML scanner names no line: a tab
// where YAML wants spaces is the common cause, so the first line indented
// with a tab, else the top of the file.
func lineOfTab(data []byte) int {
	for i, l := range bytes.Split(data, []byte("\n")) {
		if t := bytes.TrimLeft(l, " "); len(t) > 0 && t[0] == '\t' {
			return i + 1
		}
	}
	return 1
}

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names what a node holds, for "expected X, got Y".
func describe(n *yaml.Node) string {
	switch {
	case isNull(n):
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "something else"
}

// field is one known key of a mapping and what to do with its value.
type field struct {
	key string
	fn  func(k, v *yaml.Node)
}

// mapping decodes a mapping with a fixed set of keys: unknown and
// duplicate keys are problems. A null value (a key with nothing after it)
// is an empty mapping.
func (d *decoder) mapping(n *yaml.Node, where string, fields []field) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		if where == "" {
			where = "the config"
		}
		d.addf(n.Line, "%s: expected a mapping, got %s", where, describe(n))
		return
	}
	for _, kv := range d.entries(n) {
		var f *field
		for i := range fields {
			if fields[i].key == kv.key {
				f = &fields[i]
				break
			}
		}
		if f == nil {
			known := make([]string, len(fields))
			for i := range fields {
				known[i] = fields[i].key
			}
			in := ""
			if where != "" {
				in = " in " + where
			}
			hint := ""
			if s := suggest(kv.key, known); s != "" {
				hint = fmt.Sprintf("did you mean %q? ", s)
			}
			d.addf(kv.k.Line, "unknown key %q%s (%sknown: %s)", kv.key, in, hint, strings.Join(known, ", "))
			continue
		}
		f.fn(kv.k, kv.v)
	}
}

type keyValue struct {
	key  string
	k, v *yaml.Node
}

// entries returns a mapping's pairs with scalar keys, in file order,
// reporting duplicate and non-scalar keys.
func (d *decoder) entries(n *yaml.Node) []keyValue {
	seen := make(map[string]int)
	out := make([]keyValue, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			line := n.Line
			if k != nil {
				line = k.Line
			}
			d.addf(line, "a key must be a plain name, got %s", describe(k))
			continue
		}
		if k.Value == "<<" && k.ShortTag() == "!!merge" {
			d.addf(k.Line, "merge keys (<<) are not supported: write the keys out")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.addf(k.Line, "duplicate key %q (first at line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, keyValue{key: k.Value, k: k, v: v})
	}
	return out
}

// namedMapping decodes a mapping whose keys are names the user chose
// (schedules, profiles, networks).
func (d *decoder) namedMapping(n *yaml.Node, where string) []keyValue {
	n = deref(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.addf(n.Line, "%s: expected a mapping, got %s", where, describe(n))
		return nil
	}
	return d.entries(n)
}

// str decodes a scalar as a string; null is "".
func (d *decoder) str(n *yaml.Node, where string) (string, bool) {
	n = deref(n)
	if isNull(n) {
		return "", true
	}
	if n.Kind != yaml.ScalarNode {
		d.addf(n.Line, "%s: expected a string, got %s", where, describe(n))
		return "", false
	}
	return n.Value, true
}

// integer decodes a whole number.
func (d *decoder) integer(n *yaml.Node, where string) (int, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		line := 0
		if n != nil {
			line = n.Line
		}
		d.addf(line, "%s: expected a whole number, got %s", where, describe(n))
		return 0, false
	}
	var v int64
	if err := n.Decode(&v); err != nil || v > math.MaxInt32 || v < math.MinInt32 {
		d.addf(n.Line, "%s: number %s is too large", where, n.Value)
		return 0, false
	}
	return int(v), true
}

// nonNegative decodes a whole number that must be 0 or more (min 1 when
// positive is set).
func (d *decoder) nonNegative(n *yaml.Node, where string, positive bool) (int, bool) {
	v, ok := d.integer(n, where)
	if !ok {
		return 0, false
	}
	switch {
	case v < 0:
		d.addf(deref(n).Line, "%s must not be negative, got %d", where, v)
		return 0, false
	case v == 0 && positive:
		d.addf(deref(n).Line, "%s must be at least 1, got 0", where)
		return 0, false
	}
	return v, true
}

// boolean decodes true or false.
func (d *decoder) boolean(n *yaml.Node, where string) (bool, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		line := 0
		if n != nil {
			line = n.Line
		}
		d.addf(line, "%s: expected true or false, got %s", where, describe(n))
		return false, false
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		d.addf(n.Line, "%s: expected true or false, got %s", where, describe(n))
		return false, false
	}
	return b, true
}

// number decodes a number, whole or not.
func (d *decoder) number(n *yaml.Node, where string) (float64, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") {
		line := 0
		if n != nil {
			line = n.Line
		}
		d.addf(line, "%s: expected a number, got %s", where, describe(n))
		return 0, false
	}
	var f float64
	if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		d.addf(n.Line, "%s: expected a number, got %s", where, describe(n))
		return 0, false
	}
	return f, true
}

// item is one string of a list, with its line.
type item struct {
	val  string
	line int
}

// list decodes a list of nodes; null is the empty list.
func (d *decoder) list(n *yaml.Node, where string) ([]*yaml.Node, bool) {
	n = deref(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.ScalarNode {
			hint = fmt.Sprintf(" (write [%s])", n.Value)
		}
		d.addf(n.Line, "%s: expected a list, got %s%s", where, describe(n), hint)
		return nil, false
	}
	d.items += len(n.Content)
	if d.items > d.maxItems {
		if d.items-len(n.Content) <= d.maxItems {
			d.addf(n.Line, "%s: too many entries: aliases expand the lists past %d items", where, d.maxItems)
		}
		return nil, false
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	for _, c := range n.Content {
		out = append(out, deref(c))
	}
	return out, true
}

// strList decodes a list of strings; empty strings are problems.
func (d *decoder) strList(n *yaml.Node, where string) []item {
	nodes, _ := d.list(n, where)
	out := make([]item, 0, len(nodes))
	for _, c := range nodes {
		s, ok := d.str(c, where)
		if !ok {
			continue
		}
		s = strings.TrimSpace(s)
		if s == "" {
			d.addf(c.Line, "%s: empty entry", where)
			continue
		}
		out = append(out, item{s, c.Line})
	}
	return out
}

// sortProblems orders problems by line, keeping the order of problems on
// the same line; problems with no line come first.
func sortProblems(ps Problems) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].File != ps[j].File {
			return ps[i].File < ps[j].File
		}
		return ps[i].Line < ps[j].Line
	})
}

// suggest returns the candidate closest to s, if it is close enough to be
// a likely typo.
func suggest(s string, candidates []string) string {
	best, bestD := "", 3
	ls := strings.ToLower(s)
	for _, c := range candidates {
		dist := editDistance(ls, strings.ToLower(c))
		if dist < bestD && dist <= len(c)/3+1 {
			best, bestD = c, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between two short strings.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 20
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
