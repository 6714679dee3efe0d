package logging

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names. Report, verify and the writer all go through these so that
// they agree on what a day's file is called.
const (
	filePrefix = "access-"
	fileSuffix = ".jsonl"
	dateLayout = "2006-01-02"

	// TipSuffix names the sidecar the writer rewrites after every flush
	// with the seq and hash of the last line it made durable; Verify uses
	// it to detect lines removed from the end of the file.
	TipSuffix = ".tip"
)

// FileName returns the base name of the access log for the local date of
// t (in t's location): access-YYYY-MM-DD.jsonl.
func FileName(t time.Time) string {
	return filePrefix + t.Format(dateLayout) + fileSuffix
}

// PathFor returns the path of the access log for date's day in dir.
func PathFor(dir string, date time.Time) string {
	return filepath.Join(dir, FileName(date))
}

// TipPath returns the path of the sidecar of the log file at path.
func TipPath(path string) string { return path + TipSuffix }

// ParseFileName returns the date named by an access log's base name
// (access-YYYY-MM-DD.jsonl) as midnight in loc; ok is false for any other
// name, sidecars included.
func ParseFileName(name string, loc *time.Location) (date time.Time, ok bool) {
	if !strings.HasPrefix(name, filePrefix) || !strings.HasSuffix(name, fileSuffix) {
		return time.Time{}, false
	}
	mid := name[len(filePrefix) : len(name)-len(fileSuffix)]
	if len(mid) != len(dateLayout) {
		return time.Time{}, false
	}
	if loc == nil {
		loc = time.Local
	}
	d, err := time.ParseInLocation(dateLayout, mid, loc)
	if err != nil {
		return time.Time{}, false
	}
	return d, true
}

// logFileOf returns the access log that a directory entry belongs to: the
// name itself for a log, the log's name for one of its sidecars (.tip, the
// .tip.tmp being written, or a .damaged-* copy set aside at Open).
func logFileOf(name string) string {
	i := strings.Index(name, fileSuffix)
	if i < 0 {
		return ""
	}
	base, rest := name[:i+len(fileSuffix)], name[i+len(fileSuffix):]
	switch {
	case rest == "", rest == TipSuffix, rest == TipSuffix+".tmp", strings.HasPrefix(rest, ".damaged-"),
		rest == gzSuffix, rest == gzSuffix+".tmp", rest == IndexSuffix, rest == IndexSuffix+".tmp", rest == ".idxsrc.tmp":
		return base
	}
	return ""
}

// gzSuffix is added to a day's name when it is compressed.
const gzSuffix = ".gz"

// OpenDay opens a day's log for reading: path itself, or, when path (a
// .jsonl) is gone, its compressed copy path.gz, decompressed as read.
// A path ending in .gz is decompressed.
func OpenDay(path string) (io.ReadCloser, error) {
	if !strings.HasSuffix(path, gzSuffix) {
		f, err := os.Open(path)
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return f, err
		}
		if _, gzErr := os.Stat(path + gzSuffix); gzErr != nil {
			return nil, err
		}
		path += gzSuffix
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bufio.NewReaderSize(f, 256<<10))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return &gzFile{Reader: zr, f: f}, nil
}

type gzFile struct {
	*gzip.Reader
	f *os.File
}

func (g *gzFile) Close() error {
	g.Reader.Close()
	return g.f.Close()
}

// Day is one day's log in a folder.
type Day struct {
	Date time.Time // local midnight
	Path string    // access-DATE.jsonl, or access-DATE.jsonl.gz once compressed
}

// ListDays lists the days with an access log in dir, oldest first. A day
// whose .jsonl and .jsonl.gz are both there (compression was interrupted)
// is listed once, by its .jsonl.
func ListDays(dir string, loc *time.Location) ([]Day, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var days []Day
	for _, de := range ents { // sorted by name, and the names sort by date
		if !de.Type().IsRegular() {
			continue
		}
		name := de.Name()
		d, ok := ParseFileName(strings.TrimSuffix(name, gzSuffix), loc)
		if !ok {
			continue
		}
		if n := len(days); n > 0 && days[n-1].Date.Equal(d) {
			continue // the .gz of a day listed by its .jsonl
		}
		days = append(days, Day{Date: d, Path: filepath.Join(dir, name)})
	}
	return days, nil
}

// day returns midnight of t's local date in loc.
func day(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// removeExpired deletes the access logs (and their sidecars) in dir whose
// local date is more than keepDays days before today's. It touches
// nothing whose name is not an access log's or a sidecar's. It returns the
// names removed.
func removeExpired(dir string, today time.Time, keepDays int, loc *time.Location) ([]string, error) {
	if keepDays <= 0 {
		return nil, nil
	}
	cutoff := day(today, loc).AddDate(0, 0, -keepDays)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	var firstErr error
	for _, de := range ents {
		if !de.Type().IsRegular() {
			continue
		}
		base := logFileOf(de.Name())
		if base == "" {
			continue
		}
		d, ok := ParseFileName(base, loc)
		if !ok || !d.Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, de.Name())); err != nil && !os.IsNotExist(err) {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		removed = append(removed, de.Name())
	}
	return removed, firstErr
}
