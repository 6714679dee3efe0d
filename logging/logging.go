// Package logging writes the access log: one JSON line per proxied request,
// refused CONNECT and DNS query, a file per local day
// (access-YYYY-MM-DD.jsonl), each line chained to the one before by a
// SHA-256 hash so that `schoolgate logs verify` detects a removed,
// reordered or edited line.
package logging

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/categories"
)

// Entry is one access-log event; see CONTRACT.md §4 for the fields.
type Entry struct {
	Time       time.Time
	Src        string // "proxy" or "dns"
	User       string
	IP         string
	Profile    string
	Method     string // HTTP method, "CONNECT", or DNS qtype
	Host       string
	URL        string
	Categories categories.Set
	Verdict    string // "allow" or "block"
	Rule       string
	HTTPStatus int    // for src proxy: written as the number in `status`
	Rcode      string // for src dns: written as the name in `status`
	Bytes      int64
	Duration   time.Duration // written as `ms`
}

// Options configures a Writer.
type Options struct {
	Dir           string
	Location      *time.Location // the config's timezone: names the daily files
	RetentionDays int            // files older than this are deleted; 0 keeps all
	Registerer    prometheus.Registerer
	Logger        *zap.Logger // the program's own log, for trouble with writing
	Now           func() time.Time
}

// Writer is the access-log writer. Log may be called from many goroutines.
type Writer struct{}

// Open opens (or continues) today's file in o.Dir.
func Open(o Options) (*Writer, error) { return nil, errors.New("logging.Open: not implemented yet") }

// Log records e. It never blocks long on disk I/O and never drops a line
// silently.
func (w *Writer) Log(e *Entry) {}

// Close flushes and closes the log.
func (w *Writer) Close() error { return nil }
