package logging

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/schoolgate/schoolgate/categories"
)

// The tail every line ends with: `,"hash":"` + 64 hex digits + `"}`.
const (
	hashKey  = `,"hash":"`
	seqKey   = `,"seq":`
	hashHex  = sha256.Size * 2
	tailLen  = len(hashKey) + hashHex + len(`"}`)
	tsLayout = "2006-01-02T15:04:05.000Z"
	// tsSecLayout is tsLayout up to the milliseconds.
	tsSecLayout = "2006-01-02T15:04:05."
)

// lineEncoder turns an Entry into one chained line. It is not safe for
// concurrent use: the writer goroutine owns one.
//
// The line is written by appendObject, byte for byte what zap's JSON
// encoder wrote for the same typed fields (TestEncoderMatchesZap compares
// the two over random and hostile values): zap's field plumbing was over
// half of a DNS cache hit's access-log cost, most of it generic work
// (a Field per value, an interface call and a separator check per key).
type lineEncoder struct {
	ts    []byte // tsSecLayout of the second tsSec
	tsSec int64
	h     hash.Hash
	sum   [sha256.Size]byte
}

type catName struct {
	cat    categories.Category
	name   string
	quoted string // name as a JSON string
}

// sortedNames lists every category by name in byte order, as
// categories.Set.Names does, without allocating a slice per line.
var sortedNames = func() []catName {
	var out []catName
	for _, c := range categories.All() {
		out = append(out, catName{c, c.String(), string(appendJSONString(nil, c.String()))})
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].name < out[j-1].name; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}()

func newLineEncoder() *lineEncoder {
	return &lineEncoder{h: sha256.New(), ts: make([]byte, 0, 64)}
}

// appendTime appends t as a JSON string in tsLayout (RFC 3339 UTC with
// milliseconds). Lines come many to a second, so the text up to the
// seconds is formatted once per second and only the milliseconds per
// line: formatting the whole layout was a quarter of a DNS line's
// encoding.
func (le *lineEncoder) appendTime(dst []byte, t time.Time) []byte {
	if sec := t.Unix(); sec != le.tsSec || len(le.ts) == 0 {
		le.ts = t.UTC().AppendFormat(le.ts[:0], tsSecLayout)
		le.tsSec = sec
	}
	ms := t.Nanosecond() / 1e6 // truncated, as the layout's .000 is
	dst = append(dst, '"')
	dst = append(dst, le.ts...)
	return append(dst, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z', '"')
}

// appendObject appends e's fields as a JSON object in contract order,
// without its closing brace: `{"ts":…,"ms":0.42`. A zero Time has no ts
// (the Writer stamps every entry; zap's encoder left it out).
func (le *lineEncoder) appendObject(dst []byte, e *Entry) []byte {
	if e.Time.IsZero() {
		dst = append(dst, `{"src":`...)
	} else {
		dst = append(dst, `{"ts":`...)
		dst = le.appendTime(dst, e.Time)
		dst = append(dst, `,"src":`...)
	}
	dst = appendJSONString(dst, e.Src)
	dst = appendJSONString(append(dst, `,"user":`...), e.User)
	dst = appendJSONString(append(dst, `,"ip":`...), e.IP)
	dst = appendJSONString(append(dst, `,"profile":`...), e.Profile)
	dst = appendJSONString(append(dst, `,"method":`...), e.Method)
	dst = appendJSONString(append(dst, `,"host":`...), e.Host)
	dst = appendJSONString(append(dst, `,"url":`...), e.URL)
	dst = append(dst, `,"categories":[`...)
	if e.Categories != 0 {
		first := true
		for _, n := range sortedNames {
			if e.Categories.Has(n.cat) {
				if !first {
					dst = append(dst, ',')
				}
				dst = append(dst, n.quoted...)
				first = false
			}
		}
	}
	dst = appendJSONString(append(dst, `],"verdict":`...), e.Verdict)
	dst = appendJSONString(append(dst, `,"rule":`...), e.Rule)
	if e.Rcode != "" {
		dst = appendJSONString(append(dst, `,"status":`...), e.Rcode)
	} else {
		dst = strconv.AppendInt(append(dst, `,"status":`...), int64(e.HTTPStatus), 10)
	}
	dst = strconv.AppendInt(append(dst, `,"bytes":`...), e.Bytes, 10)
	dst = appendJSONFloat(append(dst, `,"ms":`...), durationMS(e.Duration))
	if e.Classified != "" {
		dst = appendJSONString(append(dst, `,"classified":`...), e.Classified)
	}
	if e.SafeSearch {
		dst = append(dst, `,"safe_search":true`...)
	}
	if e.Mode != "" {
		dst = appendJSONString(append(dst, `,"mode":`...), e.Mode)
	}
	if e.AuthFailed {
		dst = append(dst, `,"auth":"failed"`...)
	}
	if e.Ended != "" {
		dst = appendJSONString(append(dst, `,"ended":`...), e.Ended)
	}
	if e.Src == SrcLog {
		dst = strconv.AppendInt(append(dst, `,"lost":`...), e.Lost, 10)
		dst = appendJSONString(append(dst, `,"note":`...), e.Note)
	}
	return dst
}

// jsonPlain marks the ASCII bytes a JSON string holds as they are.
var jsonPlain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way zap's encoder does:
// quote and backslash escaped, \n \r \t, other bytes below 0x20 as
// \u00XX, each byte of invalid UTF-8 as \ufffd, everything else (DEL,
// U+2028, valid U+FFFD) as it is. So an attacker-chosen host, URL or user
// can never break a line.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonPlain[c] {
				i++
				continue
			}
			dst = append(dst, s[last:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			last = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[last:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			last = i
			continue
		}
		i += size
	}
	dst = append(dst, s[last:]...)
	return append(dst, '"')
}

// appendJSONFloat appends f as zap's encoder does: the shortest decimal,
// no exponent; NaN and infinities as strings.
func appendJSONFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Inf"`...)
	}
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}

// appendLine appends e's line to dst: the fields in contract order, then
// seq, then the hash of prev (the previous line's hex hash, empty for the
// first line of a file), "\n" and the line up to seq. It returns the
// extended dst and the new hash in hex.
func (le *lineEncoder) appendLine(dst []byte, e *Entry, seq int64, prev []byte) ([]byte, [hashHex]byte) {
	start := len(dst)
	dst = le.appendObject(dst, e)
	dst = append(dst, seqKey...)
	dst = strconv.AppendInt(dst, seq, 10)
	le.chain(prev, dst[start:])
	dst = append(dst, hashKey...)
	var sum [hashHex]byte
	hex.Encode(sum[:], le.sum[:])
	dst = append(dst, sum[:]...)
	dst = append(dst, '"', '}', '\n')
	return dst, sum
}

// newline separates the previous hash from the line in the hash input;
// a package variable so that hashing does not allocate it.
var newline = []byte{'\n'}

// chain sets le.sum to SHA-256(prev "\n" p).
func (le *lineEncoder) chain(prev, p []byte) {
	le.h.Reset()
	le.h.Write(prev)
	le.h.Write(newline)
	le.h.Write(p)
	le.h.Sum(le.sum[:0])
}

// durationMS is d in milliseconds, rounded to the microsecond; negative
// durations (a clock step) are written as 0.
func durationMS(d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(d.Microseconds()) / 1000
}

// chainHash returns the hex hash of a line whose text before `,"hash":`
// is p, given the previous line's hex hash; Verify and Open use it.
func chainHash(prev, p []byte) [hashHex]byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(newline)
	h.Write(p)
	var sum [sha256.Size]byte
	var out [hashHex]byte
	hex.Encode(out[:], h.Sum(sum[:0]))
	return out
}

// splitLine splits a line (without its newline) into P (the text up to
// `,"hash":`), the seq found at the end of P, and the hex hash. ok is
// false when the line does not end with `,"seq":N,"hash":"<64 hex>"}`.
func splitLine(line []byte) (p []byte, seq int64, sum []byte, ok bool) {
	if len(line) < tailLen+len(seqKey)+2 || line[0] != '{' {
		return nil, 0, nil, false
	}
	t := len(line) - tailLen
	if string(line[t:t+len(hashKey)]) != hashKey || string(line[len(line)-2:]) != `"}` {
		return nil, 0, nil, false
	}
	sum = line[t+len(hashKey) : len(line)-2]
	for _, c := range sum {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return nil, 0, nil, false
		}
	}
	p = line[:t]
	// seq: the digits after the last `,"seq":`.
	i := len(p)
	for i > 0 && '0' <= p[i-1] && p[i-1] <= '9' {
		i--
	}
	if i == len(p) || len(p)-i > 18 || i < len(seqKey) || string(p[i-len(seqKey):i]) != seqKey {
		return nil, 0, nil, false
	}
	n, err := strconv.ParseInt(string(p[i:]), 10, 64)
	if err != nil {
		return nil, 0, nil, false
	}
	return p, n, sum, true
}
