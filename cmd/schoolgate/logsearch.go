package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/logging"
)

const logsSearchUsage = `usage: schoolgate logs search [-config FILE] [-dir DIR] [-user U] [-ip ADDR] [-host H]
                              [-category C] [-verdict V] [-from TIME] [-to TIME] [-json | -csv]

Prints the access-log lines that match every filter given, sorted by time,
across days, and then whether each day searched verifies (its hash chain):
what to hand to an investigation ("everything pupil X did last Tuesday").

  -user U      the line's user; a failed sign-in is under the name tried
  -ip ADDR     the client's address
  -host H      the host or any subdomain of it
  -category C  lines in that category
  -verdict V   allow or block
  -from TIME   from this time (RFC 3339, 2026-11-24T12:30 in the config's
               timezone, or a date: its midnight); default: the first day
  -to TIME     up to this time (a date: the end of that day); default: now
  -json        the lines exactly as logged (with seq and hash), then a
               last line {"verified":[...]}
  -csv         CSV with a header, then a last line "# verified: ..."

A closed day is read through its index (access-DATE.jsonl.idx), built the
first time the day is searched (or when it is compressed): a -user search
then reads only that user's lines, and the day's verification is the one
made when the index was built (the day's file has not changed in size or
time since; 'schoolgate logs verify' reads it again in full). Today's file
is read and verified whole.

Exit status: 0 when every day searched verifies, 1 when one does not (the
lines are printed all the same), 2 for bad usage.
`

func runLogsSearch(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("logs search", logsSearchUsage, stderr)
	cfgPath := configFlag(fs, configUsage)
	dirFlag := fs.String("dir", "", "read the logs from `DIR` instead of the config's log.dir")
	var q logging.Query
	fs.StringVar(&q.User, "user", "", "")
	fs.StringVar(&q.IP, "ip", "", "")
	fs.StringVar(&q.Host, "host", "", "")
	fs.StringVar(&q.Category, "category", "", "")
	fs.StringVar(&q.Verdict, "verdict", "", "")
	fromFlag := fs.String("from", "", "")
	toFlag := fs.String("to", "", "")
	asJSON := fs.Bool("json", false, "")
	asCSV := fs.Bool("csv", false, "")
	if err := fs.Parse(args); err != nil {
		return parseStatus(err)
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "schoolgate logs search: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	if *asJSON && *asCSV {
		return fail("give -json or -csv, not both")
	}
	if msg := checkQuery(&q); msg != "" {
		return fail("%s", msg)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "schoolgate logs search: loading config:\n%v\n", err)
		return 2
	}
	loc := cfg.Location
	if loc == nil {
		loc = time.Local
	}
	if err := searchRange(&q, *fromFlag, *toFlag, loc); err != nil {
		return fail("%v", err)
	}
	dir := cfg.Log.Dir
	if *dirFlag != "" {
		dir = *dirFlag
	}

	bw := bufio.NewWriterSize(stdout, 64<<10)
	defer bw.Flush()
	out := newSearchOutput(bw, loc, *asJSON, *asCSV)
	checks, err := logging.Search(dir, loc, q, time.Now(), out.line)
	if out.csv != nil {
		out.csv.Flush()
	}
	if err != nil {
		bw.Flush()
		fmt.Fprintf(stderr, "schoolgate logs search: %v\n", err)
		return 2
	}
	status := out.verified(checks)
	if err := bw.Flush(); err != nil {
		fmt.Fprintf(stderr, "schoolgate logs search: %v\n", err)
		return 2
	}
	return status
}

// searchRange sets the query's From and To from -from and -to, read in loc.
func searchRange(q *logging.Query, from, to string, loc *time.Location) error {
	var err error
	if from != "" {
		if q.From, err = parseSearchTime(from, loc, false); err != nil {
			return fmt.Errorf("-from: %v", err)
		}
	}
	if to != "" {
		if q.To, err = parseSearchTime(to, loc, true); err != nil {
			return fmt.Errorf("-to: %v", err)
		}
	}
	return nil
}

// newSearchOutput writes the lines found to bw: as written (asJSON), as
// CSV with a header row, or as text with times in loc.
func newSearchOutput(bw *bufio.Writer, loc *time.Location, asJSON, asCSV bool) *searchOutput {
	out := &searchOutput{w: bw, loc: loc, json: asJSON}
	if asCSV {
		out.csv = csv.NewWriter(bw)
		out.csv.Write([]string{"ts", "user", "ip", "profile", "method", "host", "url", "categories", "verdict", "rule", "status", "bytes", "ms", "src", "seq"}) //nolint:errcheck
	}
	return out
}

// checkQuery checks and normalises what the flags ask for; it returns
// what is wrong, or "".
func checkQuery(q *logging.Query) string {
	if q.Verdict != "" && q.Verdict != "allow" && q.Verdict != "block" {
		return fmt.Sprintf("-verdict %q: want allow or block", q.Verdict)
	}
	if q.Category != "" {
		if _, ok := categories.Parse(q.Category); !ok {
			return fmt.Sprintf("-category %q: not a category", q.Category)
		}
	}
	if q.Host != "" {
		h, ok := categories.NormalizeHost(q.Host)
		if !ok {
			return fmt.Sprintf("-host %q: not a host name", q.Host)
		}
		q.Host = h
	}
	return ""
}

// searchOutput writes the matching lines as text, JSON lines or CSV, then
// the last line saying whether each day searched verifies.
type searchOutput struct {
	w    *bufio.Writer
	csv  *csv.Writer
	loc  *time.Location
	json bool
	n    int // lines written
}

func (o *searchOutput) line(l *logging.Line) {
	o.n++
	switch {
	case o.json:
		o.w.Write(l.Raw)    //nolint:errcheck // the caller's Flush reports
		o.w.WriteByte('\n') //nolint:errcheck
	case o.csv != nil:
		o.csv.Write([]string{l.TS.UTC().Format(time.RFC3339Nano), l.User, l.IP, l.Profile, l.Method, l.Host, l.URL, //nolint:errcheck
			strings.Join(l.Categories, " "), l.Verdict, l.Rule, fmt.Sprint(l.Status), strconv.FormatInt(l.Bytes, 10),
			strconv.FormatFloat(l.MS, 'f', -1, 64), l.Src, strconv.FormatInt(l.Seq, 10)})
	default:
		user := l.User
		if user == "" {
			user = "-"
		}
		target := l.URL
		if target == "" {
			target = l.Host
		}
		cats := strings.Join(l.Categories, ",")
		if cats == "" {
			cats = "-"
		}
		fmt.Fprintf(o.w, "%s  %s %s %s %s %s %v %s %s\n", l.TS.In(o.loc).Format("2006-01-02 15:04:05.000"), user, l.IP,
			l.Method, target, l.Verdict, l.Status, l.Rule, cats)
	}
}

// searchVerified is one day searched, and whether it verifies.
type searchVerified struct {
	Date    string   `json:"date"`
	File    string   `json:"file"`
	Lines   int      `json:"lines"`
	OK      bool     `json:"ok"`
	Problem string   `json:"problem,omitempty"`
	Checked string   `json:"checked"`
	Gaps    []string `json:"gaps,omitempty"`
}

// verified writes the last line: whether each day searched verifies
// (the chain, its gaps, parts a restart set aside). It returns the exit
// status: 1 when any day does not.
func (o *searchOutput) verified(checks []logging.DayCheck) int {
	status := 0
	var vs []searchVerified
	for _, c := range checks {
		v := searchVerified{Date: c.Date.Format("2006-01-02"), File: filepath.Base(c.Path), Lines: c.Lines, Problem: c.Problem,
			Checked: "now"}
		if c.Indexed != "" {
			v.Checked = "when indexed at " + c.Indexed + ", unchanged since"
		}
		for _, g := range c.Gaps {
			v.Gaps = append(v.Gaps, g.String())
		}
		// Parts a restart set aside as damaged break the day too.
		if aside, _ := filepath.Glob(strings.TrimSuffix(c.Path, ".gz") + ".damaged-*"); len(aside) > 0 && v.Problem == "" {
			v.Problem = "the writer set aside damaged parts of this day at a restart: " + strings.Join(aside, ", ")
		}
		v.OK = v.Problem == "" && len(v.Gaps) == 0
		if !v.OK {
			status = 1
		}
		vs = append(vs, v)
	}
	if o.json {
		b, _ := json.Marshal(struct {
			Verified []searchVerified `json:"verified"`
		}{vs})
		o.w.Write(append(b, '\n')) //nolint:errcheck
		return status
	}
	var parts []string
	for _, v := range vs {
		s := fmt.Sprintf("%s %s (%d lines, checked %s)", v.Date, map[bool]string{true: "intact", false: "NOT INTACT"}[v.OK], v.Lines, v.Checked)
		if v.Problem != "" {
			s += ": " + v.Problem
		}
		for _, g := range v.Gaps {
			s += "; " + g
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		parts = []string{"no access log for the period"}
	}
	prefix := ""
	if o.csv != nil {
		prefix = "# "
	}
	fmt.Fprintf(o.w, "%sverified: %d matching lines; %s\n", prefix, o.n, strings.Join(parts, "; "))
	return status
}

// parseSearchTime reads -from/-to: what `check -at` takes, or a date
// (its midnight; for -to, the next midnight, so that the day is included).
func parseSearchTime(s string, loc *time.Location, end bool) (time.Time, error) {
	if d, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		if end {
			return d.AddDate(0, 0, 1), nil
		}
		return d, nil
	}
	t, err := parseAt(s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want a date (2026-11-24), RFC 3339, or 2026-11-24T12:30 in the config's timezone (%s)", s, loc)
	}
	return t, nil
}
