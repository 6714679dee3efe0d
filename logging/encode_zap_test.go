package logging

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/schoolgate/schoolgate/categories"
)

// zapLine is the line as zap's JSON encoder writes it, the way the
// writer produced lines before it wrote them by hand (up to seq: the
// chain is added the same way by both). The hand-written encoder must
// match it byte for byte, or old files and new ones would differ.
func zapLine(t testing.TB, e *Entry, seq int64) []byte {
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{
		TimeKey: "ts",
		EncodeTime: func(t time.Time, enc zapcore.PrimitiveArrayEncoder) {
			enc.AppendByteString(t.UTC().AppendFormat(nil, tsLayout))
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
	buf, err := enc.EncodeEntry(zapcore.Entry{Time: e.Time}, f)
	if err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	return strconv.AppendInt(append(bytes.Clone(b[:len(b)-1]), seqKey...), seq, 10)
}

func checkSameAsZap(t testing.TB, le *lineEncoder, e *Entry, seq int64) {
	t.Helper()
	line, _, err := le.appendLine(nil, e, seq, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, _, _, ok := splitLine(line[:len(line)-1])
	if !ok {
		t.Fatalf("not a chained line: %q", line)
	}
	if want := zapLine(t, e, seq); !bytes.Equal(p, want) {
		t.Fatalf("line differs from zap's:\n got %s\nwant %s", p, want)
	}
}

func TestEncoderMatchesZap(t *testing.T) {
	le := newLineEncoder()
	base := time.Date(2026, 11, 23, 9, 0, 0, 0, london)
	times := []time.Time{
		base, base.Add(999 * time.Millisecond), base.Add(999999999), base.Add(time.Second),
		base.Add(1500 * time.Millisecond), base.Add(-time.Nanosecond), base.Add(24 * time.Hour),
		time.Unix(0, 0), time.Date(999, 1, 2, 3, 4, 5, 6e6, time.UTC), time.Date(12345, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC), {},
	}
	durations := []time.Duration{0, -time.Second, 1, 999, 1000, 137 * time.Microsecond, 1234567, time.Hour, math.MaxInt64}
	i := 0
	for _, at := range times {
		for _, d := range durations {
			e := sample(i, at)
			e.Time = at // sample may have stamped nothing; keep the zero time too
			e.Duration = d
			e.Categories = categories.Set(uint32(i * 2654435761))
			if i%4 == 1 {
				e.Classified = "gambling=0.83"
			}
			if i%5 == 2 {
				e.HTTPStatus, e.Bytes = -1, math.MinInt64
			}
			checkSameAsZap(t, le, e, int64(i+1))
			i++
		}
	}
	for _, s := range weird {
		e := sample(i, base)
		e.Src, e.User, e.IP, e.Profile, e.Method, e.Host, e.URL, e.Verdict, e.Rule, e.Rcode, e.Classified = s, s, s, s, s, s, s, s, s, s, s
		checkSameAsZap(t, le, e, int64(i+1))
		i++
	}
	// Every byte value, alone and after a multi-byte rune.
	for c := 0; c < 256; c++ {
		e := sample(i, base)
		e.User, e.Host = string([]byte{byte(c)}), "é"+string([]byte{byte(c)})+"x"
		checkSameAsZap(t, le, e, int64(i+1))
		i++
		// At each place of an 8-byte word, in a longer string.
		for at := 0; at < 9; at++ {
			e.URL = strings.Repeat("a", at) + string([]byte{byte(c)}) + strings.Repeat("b", 17-at)
			checkSameAsZap(t, le, e, int64(i+1))
			i++
		}
	}
}

// FuzzEncoderMatchesZap: for any field values the hand-written line is
// the one zap wrote.
func FuzzEncoderMatchesZap(f *testing.F) {
	for _, s := range weird {
		f.Add(s, s, int64(200), int64(1e18), uint32(5))
	}
	f.Fuzz(func(t *testing.T, user, url string, n, ns int64, cats uint32) {
		e := &Entry{Time: time.Unix(0, ns), Src: "proxy", User: user, IP: "10.0.0.1", Host: user + url, URL: url,
			Categories: categories.Set(cats), HTTPStatus: int(n), Bytes: n, Duration: time.Duration(n), Classified: url}
		if n%2 == 0 {
			e.Rcode = user
		}
		checkSameAsZap(t, newLineEncoder(), e, n&(1<<40-1)+1)
	})
}
