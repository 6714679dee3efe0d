package logging

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"github.com/schoolgate/schoolgate/internal/lines"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Query selects access-log lines for Search. Empty fields match anything.
type Query struct {
	User     string // the line's user (for a failed sign-in: the name tried)
	IP       string
	Host     string // the host or a subdomain of it
	Category string
	Verdict  string
	From, To time.Time // ts in [From, To); zero: open

	userKeyB []byte
}

// userKey is `"user":"NAME"` as a line holds it, for a quick test
// before decoding (a name with characters JSON escapes is decoded always).
func (q *Query) userKey() []byte {
	if q.userKeyB == nil {
		b, _ := json.Marshal(q.User)
		if bytes.ContainsRune(b, '\\') {
			q.userKeyB = []byte(`"user":`) // no shortcut
		} else {
			q.userKeyB = append([]byte(`"user":`), b...)
		}
	}
	return q.userKeyB
}

// Line is a matching line: its fields, and the line itself as written.
type Line struct {
	TS         time.Time `json:"ts"`
	Src        string    `json:"src"`
	User       string    `json:"user"`
	IP         string    `json:"ip"`
	Profile    string    `json:"profile"`
	Method     string    `json:"method"`
	Host       string    `json:"host"`
	URL        string    `json:"url"`
	Categories []string  `json:"categories"`
	Verdict    string    `json:"verdict"`
	Rule       string    `json:"rule"`
	Status     any       `json:"status"`
	Bytes      int64     `json:"bytes"`
	MS         float64   `json:"ms"`
	Seq        int64     `json:"seq"`
	Raw        []byte    `json:"-"`
}

// DayCheck is whether a searched day verifies.
type DayCheck struct {
	Date    time.Time
	Path    string
	Lines   int
	Problem string // the chain's first fault, "" when intact
	Gaps    []Gap
	// Indexed is when the result was obtained, for a result taken from
	// the day's index (the file unchanged in size and time since); zero
	// when the day was verified now.
	Indexed string
}

// Search calls emit with every line in dir that matches q, day by day
// (the days that q.From and q.To cover), each day's lines sorted by ts,
// and returns whether each day searched verifies. A closed day (before
// today in loc) is read through its index, built on first use; a user
// query then reads only that user's lines. Today's file is read whole.
func Search(dir string, loc *time.Location, q Query, now time.Time, emit func(*Line)) ([]DayCheck, error) {
	days, err := ListDays(dir, loc)
	if err != nil {
		return nil, err
	}
	today := day(now, loc)
	var checks []DayCheck
	for _, d := range days {
		next := d.Date.AddDate(0, 0, 1)
		if !q.From.IsZero() && !next.After(q.From) || !q.To.IsZero() && !d.Date.Before(q.To) {
			continue
		}
		chk, lines, err := searchDay(d, d.Date.Before(today), q)
		if err != nil {
			return checks, err
		}
		sort.SliceStable(lines, func(i, j int) bool { return lines[i].TS.Before(lines[j].TS) })
		for _, l := range lines {
			emit(l)
		}
		checks = append(checks, chk)
	}
	return checks, nil
}

func searchDay(d Day, closed bool, q Query) (DayCheck, []*Line, error) {
	chk := DayCheck{Date: d.Date, Path: d.Path}
	var out []*Line
	keep := func(raw []byte) {
		if l, ok := match(raw, &q); ok {
			out = append(out, l)
		}
	}
	if closed {
		ix, err := openIndex(d.Path)
		if err != nil {
			// Missing or stale: build it (this is the one full read).
			if berr := BuildIndex(d.Path); berr == nil {
				ix, err = openIndex(d.Path)
			} else if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errStaleIndex) {
				return chk, nil, berr
			}
		}
		if err == nil {
			defer ix.Close()
			h := &ix.hdr
			chk.Lines, chk.Problem, chk.Gaps, chk.Indexed = h.Lines, h.Problem, h.Gaps, h.Indexed
			if q.User != "" {
				return chk, out, ix.userLines(q.User, keep)
			}
			return chk, out, scanDay(d.Path, keep)
		}
		// No index can be written here (a read-only copy): read it all.
	}
	res, err := VerifyFile(d.Path)
	var ve *VerifyError
	switch {
	case errors.As(err, &ve):
		chk.Problem = ve.Error()
	case err != nil:
		return chk, nil, err
	}
	chk.Lines, chk.Gaps = res.Lines, res.Gaps
	return chk, out, scanDay(d.Path, keep)
}

// scanDay calls fn with every complete line of the day (without newline).
func scanDay(path string, fn func([]byte)) error {
	rc, err := OpenDay(path)
	if err != nil {
		return err
	}
	defer rc.Close()
	return eachLine(rc, func(line []byte, _ int64) { fn(line[:len(line)-1]) })
}

// eachLine calls fn with every complete line of r (with its newline),
// however long, and its offset in r; a last line without a newline is
// not one.
func eachLine(r io.Reader, fn func(line []byte, off int64)) error {
	lr := lines.NewReader(r, 1<<20)
	var off int64
	for {
		line, err := lr.Next(0)
		if len(line) > 0 && line[len(line)-1] == '\n' {
			fn(line, off)
		}
		off += int64(len(line))
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// match decodes raw if it can match q (cheap byte tests first) and
// reports whether it does.
func match(raw []byte, q *Query) (*Line, bool) {
	if q.User != "" && !bytes.Contains(raw, q.userKey()) ||
		q.IP != "" && !bytes.Contains(raw, []byte(`"ip":"`+q.IP+`"`)) ||
		q.Verdict != "" && !bytes.Contains(raw, []byte(`"verdict":"`+q.Verdict+`"`)) ||
		q.Host != "" && !bytes.Contains(raw, []byte(q.Host)) ||
		q.Category != "" && !bytes.Contains(raw, []byte(`"`+q.Category+`"`)) ||
		isLogRecord(raw) {
		return nil, false
	}
	l := &Line{}
	if err := json.Unmarshal(raw, l); err != nil {
		return nil, false
	}
	switch {
	case q.User != "" && l.User != q.User,
		q.IP != "" && l.IP != q.IP,
		q.Verdict != "" && l.Verdict != q.Verdict,
		q.Host != "" && l.Host != q.Host && !strings.HasSuffix(l.Host, "."+q.Host),
		q.Category != "" && !contains(l.Categories, q.Category),
		!q.From.IsZero() && l.TS.Before(q.From),
		!q.To.IsZero() && !l.TS.Before(q.To):
		return nil, false
	}
	l.Raw = append([]byte(nil), raw...)
	return l, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// compressAfterDays is how old a day must be to be compressed.
const compressAfterDays = 7

// CompressOld compresses the days in dir older than a week before today
// (access-DATE.jsonl → access-DATE.jsonl.gz), indexing each first; the
// .tip sidecar stays as it is. stop ends it between days. It returns the
// days compressed.
func CompressOld(dir string, loc *time.Location, today time.Time, stop <-chan struct{}) ([]string, error) {
	days, err := ListDays(dir, loc)
	if err != nil {
		return nil, err
	}
	cutoff := day(today, loc).AddDate(0, 0, -compressAfterDays)
	var done []string
	for _, d := range days {
		if !d.Date.Before(cutoff) || strings.HasSuffix(d.Path, gzSuffix) {
			continue
		}
		select {
		case <-stop:
			return done, nil
		default:
		}
		if err := compressDay(d.Path, stop); err != nil {
			return done, err
		}
		done = append(done, filepath.Base(d.Path))
	}
	return done, nil
}

var errStopped = errors.New("stopped")

// newGzipWriter compresses at gzip's fastest level: a day is written once
// and read rarely, and the fast level still shrinks it several times.
func newGzipWriter(w io.Writer) (*gzip.Writer, error) {
	return gzip.NewWriterLevel(w, gzip.BestSpeed)
}

// compressDay writes path.gz, indexes the day from the plain file (the
// index describes the .gz), then removes the plain file.
func compressDay(path string, stop <-chan struct{}) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	gz := path + gzSuffix
	tmp := gz + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // after the rename, a no-op
	bw := bufio.NewWriterSize(out, 1<<20)
	zw, _ := newGzipWriter(bw)
	buf := make([]byte, 1<<20)
	for {
		select {
		case <-stop:
			out.Close()
			return errStopped
		default:
		}
		n, rerr := in.Read(buf)
		if n > 0 {
			if _, err := zw.Write(buf[:n]); err != nil {
				out.Close()
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			out.Close()
			return rerr
		}
	}
	if err := zw.Close(); err != nil {
		out.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, gz); err != nil {
		return err
	}
	syncDir(filepath.Dir(path))
	if err := buildIndexFrom(path, gz); err != nil {
		return err
	}
	return os.Remove(path)
}
