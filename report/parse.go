package report

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"
)

// line is one access-log line as the report needs it. The string fields
// may alias a reusable buffer (see parser); copy them before keeping them.
type line struct {
	ts         time.Time
	src        []byte
	user       []byte
	ip         []byte
	profile    []byte
	method     []byte
	host       []byte
	url        []byte
	categories [][]byte
	verdict    []byte
	rule       []byte
	classified []byte // the content classifier's note, when it spoke
	status     []byte // raw JSON: a number (proxy) or a string's contents (dns)
	bytes      int64
}

var errMalformed = errors.New("malformed line")

// parser decodes the flat JSON objects of the access log (docs/contract.md §4)
// without reflection and, for lines without escapes, without allocating:
// a school's day is millions of lines and the report must read them in a
// few seconds. Anything that is not a flat object of strings, numbers,
// booleans, nulls and arrays of strings is refused as malformed.
type parser struct {
	buf  []byte // unescaped strings for this line
	cats [][]byte
	// fixups are offsets into buf for unescaped strings, resolved after
	// the line because appending may move buf.
	fixups []fixup
}

func (p *parser) parse(b []byte, l *line) error {
	*l = line{categories: p.cats[:0]}
	p.buf = p.buf[:0]
	p.fixups = p.fixups[:0]

	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errMalformed
	}
	i = skipWS(b, i+1)
	var haveTS, haveVerdict bool
	first := true
	for {
		if i >= len(b) {
			return errMalformed
		}
		if b[i] == '}' {
			i++
			break
		}
		if !first {
			if b[i] != ',' {
				return errMalformed
			}
			i = skipWS(b, i+1)
		}
		first = false
		if i >= len(b) || b[i] != '"' {
			return errMalformed
		}
		key, esc, next, err := p.str(b, i)
		if err != nil {
			return err
		}
		if esc >= 0 {
			// Keys of ours never need escapes; an escaped key is unknown.
			key = nil
		}
		i = skipWS(b, next)
		if i >= len(b) || b[i] != ':' {
			return errMalformed
		}
		i = skipWS(b, i+1)
		if i >= len(b) {
			return errMalformed
		}
		haveVerdict = haveVerdict || string(key) == "verdict"
		ts, next, err := p.value(b, i, key, l)
		if err != nil {
			return err
		}
		haveTS = haveTS || ts
		i = skipWS(b, next)
	}
	if skipWS(b, i) != len(b) || !haveTS || !haveVerdict {
		return errMalformed
	}
	for _, f := range p.fixups {
		*f.dst = p.buf[f.from:f.to]
	}
	p.cats = l.categories
	return nil
}

// field is where the value of key goes in l (nil: a key the report does
// not read).
func (l *line) field(key []byte) *[]byte {
	switch string(key) {
	case "src":
		return &l.src
	case "user":
		return &l.user
	case "ip":
		return &l.ip
	case "profile":
		return &l.profile
	case "method":
		return &l.method
	case "host":
		return &l.host
	case "url":
		return &l.url
	case "verdict":
		return &l.verdict
	case "rule":
		return &l.rule
	case "classified":
		return &l.classified
	case "status":
		return &l.status
	}
	return nil
}

// value reads the value of key at b[i:] into l; ts says it was the time
// stamp. It returns the offset after the value.
func (p *parser) value(b []byte, i int, key []byte, l *line) (ts bool, next int, err error) {
	switch c := b[i]; {
	case c == '"':
		s, esc, next, err := p.str(b, i)
		if err != nil {
			return false, 0, err
		}
		if string(key) == "ts" {
			if esc >= 0 {
				s = p.buf[esc:]
			}
			t, ok := parseTS(s)
			if !ok {
				return false, 0, errMalformed
			}
			l.ts = t
			return true, next, nil
		}
		if dst := l.field(key); dst != nil {
			if esc >= 0 {
				p.fixups = append(p.fixups, fixup{dst, esc, len(p.buf)})
			} else {
				*dst = s
			}
		}
		return false, next, nil
	case c == '[':
		next, err := p.strings(b, i, string(key) == "categories", l)
		return false, next, err
	case c == '-' || (c >= '0' && c <= '9'):
		j := scanNumber(b, i)
		if j < 0 {
			return false, 0, errMalformed
		}
		num := b[i:j]
		switch string(key) {
		case "bytes":
			n, err := strconv.ParseInt(string(num), 10, 64)
			if err != nil {
				return false, 0, errMalformed
			}
			l.bytes = n
		case "status":
			l.status = num
		}
		return false, j, nil
	case hasPrefix(b[i:], "true"):
		return false, i + 4, nil
	case hasPrefix(b[i:], "false"):
		return false, i + 5, nil
	case hasPrefix(b[i:], "null"):
		return false, i + 4, nil
	}
	return false, 0, errMalformed
}

// strings reads the array of strings at b[i:], keeping its elements as
// l's categories when keep. It returns the offset after the array.
func (p *parser) strings(b []byte, i int, keep bool, l *line) (int, error) {
	i = skipWS(b, i+1)
	first := true
	for {
		if i >= len(b) {
			return 0, errMalformed
		}
		if b[i] == ']' {
			return i + 1, nil
		}
		if !first {
			if b[i] != ',' {
				return 0, errMalformed
			}
			i = skipWS(b, i+1)
		}
		first = false
		if i >= len(b) || b[i] != '"' {
			return 0, errMalformed
		}
		s, esc, next, err := p.str(b, i)
		if err != nil {
			return 0, err
		}
		if keep {
			if esc >= 0 {
				s = append([]byte(nil), p.buf[esc:]...)
			}
			l.categories = append(l.categories, s)
		}
		i = skipWS(b, next)
	}
}

type fixup struct {
	dst      *[]byte
	from, to int
}

// str reads the JSON string starting at b[i] (a quote). Without escapes it
// returns the bytes inside the quotes, aliasing b, and esc -1; with
// escapes it appends the unescaped text to p.buf and returns its offset
// there as esc (s is then only valid until the next append).
func (p *parser) str(b []byte, i int) (s []byte, esc int, next int, err error) {
	j := i + 1
	for j < len(b) {
		c := b[j]
		if c == '"' {
			return b[i+1 : j], -1, j + 1, nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return nil, 0, 0, errMalformed
		}
		j++
	}
	if j >= len(b) {
		return nil, 0, 0, errMalformed
	}
	// Slow path: find the closing quote and let encoding/json unescape.
	k := j
	for k < len(b) {
		if b[k] == '\\' {
			k += 2
			continue
		}
		if b[k] == '"' {
			break
		}
		k++
	}
	if k >= len(b) {
		return nil, 0, 0, errMalformed
	}
	var out string
	if err := json.Unmarshal(b[i:k+1], &out); err != nil {
		return nil, 0, 0, errMalformed
	}
	if !utf8.ValidString(out) {
		out = string([]rune(out))
	}
	esc = len(p.buf)
	p.buf = append(p.buf, out...)
	return p.buf[esc:], esc, k + 1, nil
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

func hasPrefix(b []byte, s string) bool {
	return len(b) >= len(s) && string(b[:len(s)]) == s
}

// parseTS reads the log's timestamp: the fixed form
// 2006-01-02T15:04:05.000Z without allocating, anything else RFC 3339
// through time.Parse.
func parseTS(s []byte) (time.Time, bool) {
	if len(s) == 24 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':' && s[19] == '.' && s[23] == 'Z' {
		var v [7]int
		fields := [7][2]int{{0, 4}, {5, 7}, {8, 10}, {11, 13}, {14, 16}, {17, 19}, {20, 23}}
		ok := true
		for i, f := range fields {
			for _, c := range s[f[0]:f[1]] {
				if c < '0' || c > '9' {
					ok = false
					break
				}
				v[i] = v[i]*10 + int(c-'0')
			}
		}
		if ok && v[1] >= 1 && v[1] <= 12 && v[2] >= 1 && v[2] <= 31 && v[3] < 24 && v[4] < 60 && v[5] < 60 {
			t := time.Date(v[0], time.Month(v[1]), v[2], v[3], v[4], v[5], v[6]*1e6, time.UTC)
			if t.Day() == v[2] { // not normalised (e.g. 31 November)
				return t, true
			}
			return time.Time{}, false
		}
	}
	t, err := time.Parse(time.RFC3339Nano, string(s))
	return t, err == nil
}

// scanNumber returns the end of the JSON number (RFC 8259 §6) at b[i],
// or -1 if there is none.
func scanNumber(b []byte, i int) int {
	digits := func(j int) int {
		k := j
		for k < len(b) && b[k] >= '0' && b[k] <= '9' {
			k++
		}
		return k
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}
