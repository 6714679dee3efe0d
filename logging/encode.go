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
)

// lineEncoder turns an Entry into one chained line. It is not safe for
// concurrent use: the writer goroutine owns one.
//
// The line is the JSON that zap's JSON encoder wrote for these fields
// when the format was fixed (TestGolden pins it, and encode_zap_test.go
// checks this encoder against zap byte for byte). It is written by hand
// because zap's field and encoder machinery cost about half of a line's
// CPU time.
type lineEncoder struct {
	h   hash.Hash
	sum [sha256.Size]byte
	// The time formatted up to the second, for the second tsSec; most
	// lines fall in the same second as the one before.
	tsSec    int64
	tsPrefix []byte
}

type catName struct {
	cat  categories.Category
	name string
}

// sortedNames lists every category by name in byte order, as
// categories.Set.Names does, without allocating a slice per line.
var sortedNames = func() []catName {
	var out []catName
	for _, c := range categories.All() {
		out = append(out, catName{c, c.String()})
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].name < out[j-1].name; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}()

func newLineEncoder() *lineEncoder {
	return &lineEncoder{h: sha256.New(), tsSec: math.MinInt64, tsPrefix: make([]byte, 0, 32)}
}

// appendTime appends t as RFC 3339 UTC with milliseconds (tsLayout).
func (le *lineEncoder) appendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	sec := t.Unix()
	if sec != le.tsSec {
		// "2006-01-02T15:04:05." by the time package, as the whole
		// layout was.
		le.tsPrefix = t.AppendFormat(le.tsPrefix[:0], tsLayout[:len("2006-01-02T15:04:05.")])
		le.tsSec = sec
	}
	dst = append(dst, le.tsPrefix...)
	ms := t.Nanosecond() / 1e6 // truncated, as the layout's .000 is
	return append(dst, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as zap escapes: `"`,
// `\`, \n, \r, \t, other bytes below 0x20 as \u00XX, each byte of
// invalid UTF-8 as \ufffd; everything else as is.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			dst = append(dst, s[last:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			last = i
			continue
		}
		if c >= 0x20 && c != '\\' && c != '"' {
			i++
			continue
		}
		dst = append(dst, s[last:i]...)
		switch c {
		case '\\', '"':
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
	}
	dst = append(dst, s[last:]...)
	return append(dst, '"')
}

// appendFloat appends f as zap does: shortest decimal, no exponent.
func appendFloat(dst []byte, f float64) []byte {
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
func (le *lineEncoder) appendLine(dst []byte, e *Entry, seq int64, prev []byte) ([]byte, [hashHex]byte, error) {
	start := len(dst)
	if e.Time.IsZero() {
		// As zap did: no ts at all (the writer stamps every entry).
		dst = append(dst, `{"src":`...)
	} else {
		dst = append(dst, `{"ts":"`...)
		dst = le.appendTime(dst, e.Time)
		dst = append(dst, `","src":`...)
	}
	dst = appendString(dst, e.Src)
	dst = append(dst, `,"user":`...)
	dst = appendString(dst, e.User)
	dst = append(dst, `,"ip":`...)
	dst = appendString(dst, e.IP)
	dst = append(dst, `,"profile":`...)
	dst = appendString(dst, e.Profile)
	dst = append(dst, `,"method":`...)
	dst = appendString(dst, e.Method)
	dst = append(dst, `,"host":`...)
	dst = appendString(dst, e.Host)
	dst = append(dst, `,"url":`...)
	dst = appendString(dst, e.URL)
	dst = append(dst, `,"categories":[`...)
	first := true
	for _, n := range sortedNames {
		if e.Categories.Has(n.cat) {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendString(dst, n.name)
		}
	}
	dst = append(dst, `],"verdict":`...)
	dst = appendString(dst, e.Verdict)
	dst = append(dst, `,"rule":`...)
	dst = appendString(dst, e.Rule)
	dst = append(dst, `,"status":`...)
	if e.Rcode != "" {
		dst = appendString(dst, e.Rcode)
	} else {
		dst = strconv.AppendInt(dst, int64(e.HTTPStatus), 10)
	}
	dst = append(dst, `,"bytes":`...)
	dst = strconv.AppendInt(dst, e.Bytes, 10)
	dst = append(dst, `,"ms":`...)
	dst = appendFloat(dst, durationMS(e.Duration))
	if e.Classified != "" {
		dst = append(dst, `,"classified":`...)
		dst = appendString(dst, e.Classified)
	}
	dst = append(dst, seqKey...)
	dst = strconv.AppendInt(dst, seq, 10)
	le.chain(prev, dst[start:])
	dst = append(dst, hashKey...)
	var sum [hashHex]byte
	hex.Encode(sum[:], le.sum[:])
	dst = append(dst, sum[:]...)
	dst = append(dst, '"', '}', '\n')
	return dst, sum, nil
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
