package logging

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/categories"
)

func TestLineFormat(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		e    Entry
		want string // the line up to and including seq
	}{
		{
			name: "proxy",
			e: Entry{
				Time: time.Date(2026, 11, 23, 10, 15, 2, 123456789, paris), Src: "proxy", User: "alice",
				IP: "10.10.1.7", Profile: "student", Method: "GET", Host: "www.bet365.com",
				URL: "http://www.bet365.com/en", Categories: categories.SetOf(categories.Streaming, categories.Gambling),
				Verdict: "block", Rule: "student#2", HTTPStatus: 403, Bytes: 2345, Duration: 420 * time.Microsecond,
			},
			want: `{"ts":"2026-11-23T09:15:02.123Z","src":"proxy","user":"alice","ip":"10.10.1.7","profile":"student",` +
				`"method":"GET","host":"www.bet365.com","url":"http://www.bet365.com/en","categories":["gambling","streaming"],` +
				`"verdict":"block","rule":"student#2","status":403,"bytes":2345,"ms":0.42,"seq":1`,
		},
		{
			name: "dns with rcode and no categories",
			e: Entry{
				Time: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), Src: "dns", IP: "10.10.1.8", Profile: "student",
				Method: "AAAA", Host: "example.org", Verdict: "allow", Rule: "student#default", Rcode: "NOERROR",
				Bytes: 0, Duration: 12345678 * time.Nanosecond,
			},
			want: `{"ts":"2026-11-23T00:00:00.000Z","src":"dns","user":"","ip":"10.10.1.8","profile":"student",` +
				`"method":"AAAA","host":"example.org","url":"","categories":[],"verdict":"allow","rule":"student#default",` +
				`"status":"NOERROR","bytes":0,"ms":12.345,"seq":1`,
		},
		{
			name: "refused connect, status 0, negative duration",
			e: Entry{
				Time: time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.UTC), Src: "proxy", Method: "CONNECT",
				Host: "evil.example:25", Verdict: "block", Rule: "not_a_client", Duration: -time.Second,
			},
			want: `{"ts":"2026-01-02T03:04:05.999Z","src":"proxy","user":"","ip":"","profile":"","method":"CONNECT",` +
				`"host":"evil.example:25","url":"","categories":[],"verdict":"block","rule":"not_a_client",` +
				`"status":0,"bytes":0,"ms":0,"seq":1`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			le := newLineEncoder()
			line, sum := le.appendLine(nil, &tt.e, 1, nil)
			h := sha256.Sum256([]byte("\n" + tt.want))
			wantHash := hex.EncodeToString(h[:])
			want := tt.want + `,"hash":"` + wantHash + "\"}\n"
			if string(line) != want {
				t.Fatalf("line\n got %s\nwant %s", line, want)
			}
			if string(sum[:]) != wantHash {
				t.Fatalf("returned hash %s, want %s", sum, wantHash)
			}
			keys, types := jsonKeys(t, line)
			wantKeys := "ts src user ip profile method host url categories verdict rule status bytes ms seq hash"
			if got := strings.Join(keys, " "); got != wantKeys {
				t.Fatalf("keys %q, want %q", got, wantKeys)
			}
			wantStatus := "number"
			if tt.e.Rcode != "" {
				wantStatus = "string"
			}
			if types["status"] != wantStatus || types["categories"] != "array" || types["ms"] != "number" ||
				types["seq"] != "number" || types["bytes"] != "number" {
				t.Fatalf("types %v", types)
			}
		})
	}
}

// jsonKeys returns a line's top-level keys in order and each value's JSON type.
func jsonKeys(t *testing.T, line []byte) ([]string, map[string]string) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %v %v", tok, err)
	}
	var keys []string
	types := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		k := tok.(string)
		keys = append(keys, k)
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		switch v.(type) {
		case json.Number:
			types[k] = "number"
		case string:
			types[k] = "string"
		case []any:
			types[k] = "array"
		default:
			types[k] = "other"
		}
	}
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("trailing data after the object: %v", err)
	}
	return keys, types
}

// weird holds attacker-chosen strings that must not break a line.
var weird = []string{
	"line\nbreak", "carriage\rreturn", `quote"inside`, `back\slash`, "tab\there",
	"nul\x00byte", "bad utf8 \xff\xfe", "line sep \u2028 para \u2029", `","hash":"` + strings.Repeat("a", 64) + `"}`,
	`{"seq":1}` + "\n" + `{"ts":"x"}`, "ünïcödé ダミー 🙂", "\x1b[31mred", "</script><script>alert(1)</script>",
}

func TestWeirdCharactersStayOnOneLine(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, london)
	w := openTest(t, dir, now, nil)
	for i, s := range weird {
		e := sample(i, now)
		e.User, e.Host, e.URL, e.Rule = s, s, "http://x.example/"+s, s
		w.Log(e)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := PathFor(dir, now)
	mustVerify(t, path, len(weird))
	for i, line := range readLines(t, path) {
		var got struct{ User, Host, URL string }
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		want := string([]rune(weird[i])) // zap writes U+FFFD for each invalid byte
		if got.User != want || got.Host != want || got.URL != "http://x.example/"+want {
			t.Errorf("line %d: decoded %q / %q / %q, want %q", i+1, got.User, got.Host, got.URL, want)
		}
	}
}

func TestSplitLineRejects(t *testing.T) {
	good := `{"ts":"x","seq":12,"hash":"` + strings.Repeat("0123456789abcdef", 4) + `"}`
	if _, seq, _, ok := splitLine([]byte(good)); !ok || seq != 12 {
		t.Fatalf("good line: seq %d ok %v", seq, ok)
	}
	for _, bad := range []string{
		"", "{}", `{"seq":1}`,
		strings.Replace(good, "0123", "0A23", 1),               // uppercase hex
		strings.Replace(good, `"seq":12`, `"seq":-1`, 1),       // negative
		strings.Replace(good, `"seq":12`, `"seq":"12"`, 1),     // string seq
		strings.Replace(good, `"seq":12`, `"seq":1e3`, 1),      // not digits
		strings.Replace(good, `,"hash"`, ` ,"hash"`, 1),        // spacing
		strings.Replace(good, "0123456789abcdef\"", "01\"", 1), // short hash
		good + " ",
	} {
		if _, _, _, ok := splitLine([]byte(bad)); ok {
			t.Errorf("splitLine(%q) accepted", bad)
		}
	}
}

// TestEncodeTimeMatchesLayout: the per-second shortcut writes exactly what
// formatting tsLayout would, for times in and across seconds, before 1970,
// in other zones and in far years.
func TestEncodeTimeMatchesLayout(t *testing.T) {
	le := newLineEncoder()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		ny = time.FixedZone("EST", -5*3600)
	}
	base := []time.Time{
		time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 29, 0, 59, 59, 999_999_999, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 500_000_000, time.UTC),
		time.Date(2026, 10, 25, 1, 30, 0, 1_000_000, ny),
		time.Date(12026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-5, 6, 1, 12, 0, 0, 0, time.UTC),
		{},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, b := range base {
		for i := 0; i < 300; i++ {
			tm := b.Add(time.Duration(rng.Int64N(int64(3 * time.Second))))
			if i%7 == 0 {
				tm = b // back to an earlier second
			}
			got := string(le.appendTime(nil, tm))
			if want := `"` + tm.UTC().Format(tsLayout) + `"`; got != want {
				t.Fatalf("appendTime(%v) = %s, want %s", tm, got, want)
			}
		}
	}
}

func BenchmarkEncodeLine(b *testing.B) {
	le := newLineEncoder()
	e := sample(1, time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	var buf []byte
	var prev [hashHex]byte
	b.ReportAllocs()
	cpu0 := processCPU(b)
	n := 0
	for i := 0; b.Loop(); i++ {
		buf, prev = le.appendLine(buf[:0], e, int64(i+1), prev[:])
		n++
	}
	// CPU time, steadier than ns/op on a shared machine.
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(n), "cpu-ns/op")
	b.SetBytes(int64(len(buf)))
}

// FuzzLine: whatever the attacker-chosen fields hold, the line is one
// line of valid JSON that verifies and decodes back to the same text.
func FuzzLine(f *testing.F) {
	for _, s := range weird {
		f.Add(s, s, "http://x.example/"+s, int64(200))
	}
	f.Add("", "", "", int64(-1))
	f.Fuzz(func(t *testing.T, user, host, url string, n int64) {
		le := newLineEncoder()
		e := &Entry{Time: time.Unix(0, n).UTC(), Src: "proxy", User: user, Host: host, URL: url,
			Categories: categories.Set(uint32(n)), HTTPStatus: int(n % 1000), Bytes: n, Duration: time.Duration(n)}
		line, sum := le.appendLine(nil, e, 1, nil)
		if bytes.IndexByte(line, '\n') != len(line)-1 {
			t.Fatalf("line break inside the line: %q", line)
		}
		body := line[:len(line)-1]
		if msg := checkLine(body, 1, nil); msg != "" {
			t.Fatalf("own line fails verification: %s: %q", msg, line)
		}
		if string(hashOf(line)) != string(sum[:]) {
			t.Fatal("returned hash differs from the written one")
		}
		var got struct{ User, Host, URL string }
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		if got.User != string([]rune(user)) || got.Host != string([]rune(host)) || got.URL != string([]rune(url)) {
			t.Fatalf("round trip: %q %q %q", got.User, got.Host, got.URL)
		}
	})
}
