package logging

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

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
type lineEncoder struct {
	enc    zapcore.Encoder
	fields []zapcore.Field
	cats   catArray
	ts     []byte // tsSecLayout of the second tsSec
	tsSec  int64
	h      hash.Hash
	sum    [sha256.Size]byte
}

// catArray encodes a category set as a sorted JSON array of names. It is
// held by pointer in the encoder so that passing it to zap.Array does not
// allocate.
type catArray struct{ set categories.Set }

func (c *catArray) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, n := range sortedNames {
		if c.set.Has(n.cat) {
			enc.AppendString(n.name)
		}
	}
	return nil
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
	le := &lineEncoder{h: sha256.New(), fields: make([]zapcore.Field, 0, 16), ts: make([]byte, 0, 64)}
	le.enc = zapcore.NewJSONEncoder(zapcore.EncoderConfig{
		// Only the time key: no level, logger name, caller, message or
		// stack trace. The line ending is added with the hash.
		TimeKey:        "ts",
		EncodeTime:     le.encodeTime,
		EncodeDuration: zapcore.MillisDurationEncoder,
		SkipLineEnding: true,
	})
	return le
}

// encodeTime writes RFC 3339 UTC with milliseconds (tsLayout) without
// allocating. Lines come many to a second, so the text up to the seconds
// is formatted once per second and only the milliseconds per line:
// formatting the whole layout was a quarter of a DNS line's encoding.
func (le *lineEncoder) encodeTime(t time.Time, enc zapcore.PrimitiveArrayEncoder) {
	if sec := t.Unix(); sec != le.tsSec || len(le.ts) == 0 {
		le.ts = t.UTC().AppendFormat(le.ts[:0], tsSecLayout)
		le.tsSec = sec
	}
	ms := t.Nanosecond() / 1e6 // truncated, as the layout's .000 is
	n := len(le.ts)
	le.ts = append(le.ts, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
	enc.AppendByteString(le.ts)
	le.ts = le.ts[:n]
}

// appendLine appends e's line to dst: the fields in contract order, then
// seq, then the hash of prev (the previous line's hex hash, empty for the
// first line of a file), "\n" and the line up to seq. It returns the
// extended dst and the new hash in hex.
func (le *lineEncoder) appendLine(dst []byte, e *Entry, seq int64, prev []byte) ([]byte, [hashHex]byte, error) {
	le.cats.set = e.Categories
	f := le.fields[:0]
	f = append(f,
		zap.String("src", e.Src),
		zap.String("user", e.User),
		zap.String("ip", e.IP),
		zap.String("profile", e.Profile),
		zap.String("method", e.Method),
		zap.String("host", e.Host),
		zap.String("url", e.URL),
		zap.Array("categories", &le.cats),
		zap.String("verdict", e.Verdict),
		zap.String("rule", e.Rule),
	)
	if e.Rcode != "" {
		f = append(f, zap.String("status", e.Rcode))
	} else {
		f = append(f, zap.Int64("status", int64(e.HTTPStatus)))
	}
	f = append(f,
		zap.Int64("bytes", e.Bytes),
		zap.Float64("ms", durationMS(e.Duration)),
	)
	if e.Classified != "" {
		f = append(f, zap.String("classified", e.Classified))
	}
	if e.SafeSearch {
		f = append(f, zap.Bool("safe_search", true))
	}
	if e.Mode != "" {
		f = append(f, zap.String("mode", e.Mode))
	}
	if e.AuthFailed {
		f = append(f, zap.String("auth", "failed"))
	}
	if e.Ended != "" {
		f = append(f, zap.String("ended", e.Ended))
	}
	if e.Src == SrcLog {
		f = append(f, zap.Int64("lost", e.Lost), zap.String("note", e.Note))
	}
	le.fields = f[:0]
	buf, err := le.enc.EncodeEntry(zapcore.Entry{Time: e.Time}, f)
	if err != nil {
		return dst, [hashHex]byte{}, err
	}
	b := buf.Bytes()
	// b is `{"ts":…,"ms":…}`: drop the closing brace, append seq, hash.
	start := len(dst)
	dst = append(dst, b[:len(b)-1]...)
	buf.Free()
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
