package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// ev is one access-log event for the test generator.
type ev struct {
	ts      time.Time
	src     string // "proxy" (default) or "dns"
	user    string
	ip      string
	profile string
	method  string
	host    string
	url     string
	cats    []string
	verdict string // "allow" (default) or "block"
	rule    string
	bytes   int64
}

// logWriter writes events in the access log's exact format (docs/contract.md
// §4: field order, ms timestamps in UTC, status a number for proxy lines
// and an rcode name for DNS lines). The hash is a stand-in: the report
// does not verify the chain.
type logWriter struct {
	w   *bufio.Writer
	seq int64
}

func newLogWriter(w io.Writer) *logWriter { return &logWriter{w: bufio.NewWriterSize(w, 64<<10)} }

func jstr(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (lw *logWriter) write(e ev) {
	lw.seq++
	src := e.src
	if src == "" {
		src = "proxy"
	}
	verdict := e.verdict
	if verdict == "" {
		verdict = "allow"
	}
	method := e.method
	var status string
	if src == "dns" {
		if method == "" {
			method = "A"
		}
		if verdict == "block" {
			status = `"NXDOMAIN"`
		} else {
			status = `"NOERROR"`
		}
	} else {
		if method == "" {
			method = "CONNECT"
		}
		if verdict == "block" {
			status = "403"
		} else {
			status = "200"
		}
	}
	cats := "["
	for i, c := range e.cats {
		if i > 0 {
			cats += ","
		}
		cats += jstr(c)
	}
	cats += "]"
	rule := e.rule
	if rule == "" {
		rule = e.profile + "#default"
	}
	fmt.Fprintf(lw.w, `{"ts":%q,"src":%q,"user":%s,"ip":%q,"profile":%q,"method":%q,"host":%s,"url":%s,"categories":%s,"verdict":%q,"rule":%q,"status":%s,"bytes":%d,"ms":%s,"seq":%d,"hash":"%064x"}`+"\n",
		e.ts.UTC().Format("2006-01-02T15:04:05.000Z07:00"), src, jstr(e.user), e.ip, e.profile, method,
		jstr(e.host), jstr(e.url), cats, verdict, rule, status, e.bytes, "12.5", lw.seq, lw.seq*7919)
}

func (lw *logWriter) raw(s string) {
	lw.seq++
	lw.w.WriteString(s + "\n")
}

func (lw *logWriter) flush() error { return lw.w.Flush() }

// writeDay writes events to dir/access-DAY.jsonl.
func writeDay(t testing.TB, dir, day string, fill func(lw *logWriter)) string {
	t.Helper()
	path := filepath.Join(dir, "access-"+day+".jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	lw := newLogWriter(f)
	fill(lw)
	if err := lw.flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

var genHosts = []struct {
	host string
	cats []string
	url  string
}{
	{"www.bbc.co.uk", nil, ""},
	{"classroom.google.com", []string{"education"}, ""},
	{"www.youtube.com", []string{"education", "streaming"}, "http://www.youtube.com/results?search_query=volcano+eruption"},
	{"www.google.com", []string{"search-engines"}, "http://www.google.com/search?q=photosynthesis+diagram"},
	{"www.tiktok.com", []string{"social"}, ""},
	{"www.pornhub.com", []string{"adult"}, ""},
	{"www.bet365.com", []string{"gambling"}, ""},
	{"nordvpn.com", []string{"proxy-avoidance"}, ""},
	{"wikipedia.org", []string{"education"}, ""},
	{"cdn.jsdelivr.net", nil, ""},
	{"steamcommunity.com", []string{"games"}, ""},
	{"dns.google", []string{"doh"}, ""},
}

// genRandomDay writes n lines of a plausible school day (users u0001…,
// devices 10.10.x.y, hosts from genHosts plus a long tail of random ones).
func genRandomDay(w io.Writer, day time.Time, n int, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 1))
	lw := newLogWriter(w)
	start := day.Add(7 * time.Hour)
	step := 10 * time.Hour / time.Duration(n)
	for i := 0; i < n; i++ {
		u := rng.IntN(2000)
		e := ev{ts: start.Add(time.Duration(i) * step), ip: "10.10." + strconv.Itoa(u/250) + "." + strconv.Itoa(u%250+1),
			profile: "student"}
		if rng.IntN(10) > 0 {
			e.user = fmt.Sprintf("u%04d", u)
		}
		if rng.IntN(3) == 0 {
			e.src, e.method = "dns", "A"
		}
		if rng.IntN(4) == 0 {
			e.host = fmt.Sprintf("h%d.example.net", rng.IntN(200000))
		} else {
			h := genHosts[rng.IntN(len(genHosts))]
			e.host, e.cats, e.url = h.host, h.cats, h.url
			for _, c := range h.cats {
				switch c {
				case "adult", "gambling", "social", "proxy-avoidance", "games", "doh":
					e.verdict, e.rule = "block", "student#2"
				}
			}
		}
		e.bytes = int64(rng.IntN(50000))
		lw.write(e)
	}
	return lw.flush()
}
