package logging

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/schoolgate/schoolgate/categories"
)

// zapObject is how the line was encoded before appendObject: zap's JSON
// encoder with typed fields, the line up to its closing brace. It is the
// reference appendObject must match byte for byte, so that lines do not
// change with the encoder (and old files, docs and parsers stay true).
func zapObject(t testing.TB, e *Entry) []byte {
	t.Helper()
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{
		TimeKey: "ts",
		EncodeTime: func(t time.Time, enc zapcore.PrimitiveArrayEncoder) {
			enc.AppendString(t.UTC().Format(tsLayout))
		},
		EncodeDuration: zapcore.MillisDurationEncoder,
		SkipLineEnding: true,
	})
	f := []zapcore.Field{
		zap.String("src", e.Src),
		zap.String("user", e.User),
		zap.String("ip", e.IP),
		zap.String("profile", e.Profile),
		zap.String("method", e.Method),
		zap.String("host", e.Host),
		zap.String("url", e.URL),
		zap.Strings("categories", e.Categories.Names()),
		zap.String("verdict", e.Verdict),
		zap.String("rule", e.Rule),
	}
	if e.Rcode != "" {
		f = append(f, zap.String("status", e.Rcode))
	} else {
		f = append(f, zap.Int64("status", int64(e.HTTPStatus)))
	}
	f = append(f, zap.Int64("bytes", e.Bytes), zap.Float64("ms", durationMS(e.Duration)))
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
	buf, err := enc.EncodeEntry(zapcore.Entry{Time: e.Time}, f)
	if err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	return b[:len(b)-1]
}

// hostile returns a string built to trip an encoder: control bytes,
// quotes, backslashes, invalid and odd UTF-8 (surrogates, overlong forms,
// cut sequences, beyond U+10FFFF), valid runes of every width incl.
// U+2028 and U+FFFD, random bytes, and long runs.
func hostile(rng *rand.Rand) string {
	pieces := []string{
		"", "a", "www.example.org", `"`, `\`, "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "\b\f",
		"\xff", "\xfe\xff", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82", "\xf4\x90\x80\x80", "\xf0\x9f\x99",
		"\u2028", "\u2029", "\ufffd", "é", "ダミー", "🙂", "\u0080", "\U0010ffff",
		`","hash":"`, `{"seq":1}`, "</script>", "%00", "\x1b[31m",
	}
	var b strings.Builder
	for range rng.IntN(12) {
		switch rng.IntN(6) {
		case 0: // random bytes
			for range rng.IntN(40) {
				b.WriteByte(byte(rng.IntN(256)))
			}
		case 1: // a random rune, maybe invalid (surrogates) when encoded
			r := rune(rng.IntN(0x110000))
			if utf8.ValidRune(r) {
				b.WriteRune(r)
			} else {
				b.WriteString("\xed\xb0\x80")
			}
		case 2: // a long name
			b.WriteString(strings.Repeat("label-"+string(rune('a'+rng.IntN(26)))+".", rng.IntN(700)))
		default:
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
	}
	return b.String()
}

// randomEntry fills every field, often with hostile values and the
// optional fields in every combination.
func randomEntry(rng *rand.Rand) *Entry {
	pick := func(plain ...string) string {
		if rng.IntN(3) == 0 {
			return hostile(rng)
		}
		return plain[rng.IntN(len(plain))]
	}
	e := &Entry{
		Src: pick("dns", "proxy", SrcLog), User: pick("", "alice"), IP: pick("", "10.10.1.7", "fd00::1"),
		Profile: pick("", "student"), Method: pick("A", "GET", "CONNECT"), Host: pick("", "www.bbc.co.uk"),
		URL: pick("", "https://www.bbc.co.uk/news?q=1"), Categories: categories.Set(rng.Uint32()),
		Verdict: pick("allow", "block"), Rule: pick("student#default", "gap"), HTTPStatus: int(rng.Int32()) - 1<<20,
		Bytes: rng.Int64() - math.MaxInt64/2, Duration: time.Duration(rng.Int64() - math.MaxInt64/2),
		Lost: rng.Int64N(1 << 40), Note: pick("", "tail"),
	}
	switch rng.IntN(4) {
	case 0:
		e.Rcode = pick("NOERROR", "NXDOMAIN")
	case 1:
		e.Categories = 0
		e.Bytes, e.HTTPStatus = 0, 0
	}
	switch rng.IntN(5) {
	case 0: // zero: zap leaves ts out
	case 1:
		e.Time = time.Unix(rng.Int64N(1<<40)-1<<39, rng.Int64N(1e9)) // years ±17,000
	default:
		e.Time = time.Date(2026, 11, 23, 9, 0, 0, 0, london).Add(time.Duration(rng.Int64N(int64(48 * time.Hour))))
	}
	switch rng.IntN(5) {
	case 0:
		e.Duration = time.Duration(rng.Int64N(int64(10 * time.Second)))
	case 1:
		e.Duration = time.Duration(rng.Int64N(1000)) * time.Microsecond
	}
	if rng.IntN(2) == 0 {
		e.Classified = pick("gambling=0.83")
	}
	if rng.IntN(2) == 0 {
		e.Mode = pick("transparent")
	}
	if rng.IntN(3) == 0 {
		e.Ended = pick("crash")
	}
	e.SafeSearch = rng.IntN(2) == 0
	e.AuthFailed = rng.IntN(3) == 0
	return e
}

// TestEncoderMatchesZap: appendObject writes exactly zap's bytes, over
// random and hostile field values.
func TestEncoderMatchesZap(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, uint64(time.Now().UnixNano())))
	le := newLineEncoder()
	n := 20000
	if testing.Short() {
		n = 2000
	}
	var got []byte
	for i := range n {
		e := randomEntry(rng)
		got = le.appendObject(got[:0], e)
		if want := zapObject(t, e); !bytes.Equal(got, want) {
			t.Fatalf("entry %d %+v:\n got %q\nwant %q", i, e, got, want)
		}
	}
	for _, s := range weird {
		e := sample(1, time.Date(2026, 11, 23, 9, 0, 0, 0, london))
		e.User, e.Host, e.URL, e.Rule, e.Note, e.Src = s, s, s, s, s, SrcLog
		if got, want := le.appendObject(nil, e), zapObject(t, e); !bytes.Equal(got, want) {
			t.Fatalf("%q:\n got %q\nwant %q", s, got, want)
		}
	}
}

// FuzzEncoderMatchesZap: as TestEncoderMatchesZap, for any string in
// the attacker-chosen fields and any numbers.
func FuzzEncoderMatchesZap(f *testing.F) {
	for _, s := range weird {
		f.Add(s, int64(len(s)), uint32(len(s)))
	}
	f.Add("", int64(math.MinInt64), uint32(math.MaxUint32))
	le := newLineEncoder()
	f.Fuzz(func(t *testing.T, s string, n int64, cats uint32) {
		e := &Entry{Time: time.Unix(0, n), Src: "proxy", User: s, IP: s, Method: s, Host: s, URL: s + s,
			Categories: categories.Set(cats), Verdict: s, Rule: s, HTTPStatus: int(n), Bytes: n,
			Duration: time.Duration(n), Classified: s, Mode: s, Ended: s, SafeSearch: n&1 == 0}
		if n&2 == 0 {
			e.Src, e.Lost, e.Note, e.Rcode = SrcLog, n, s, s
		}
		if got, want := le.appendObject(nil, e), zapObject(t, e); !bytes.Equal(got, want) {
			t.Fatalf("\n got %q\nwant %q", got, want)
		}
	})
}
