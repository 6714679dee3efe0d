package logging

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/internal/atomicfile"
)

// A request's line is written when it ends, and tunnels, WebSockets and
// long downloads last for hours: a crash must not lose the ones that were
// open. Such a request is a Session from the moment it is decided. Every
// second the writer journals the sessions open for a second or more (the
// entry as the decision made it, the bytes counted so far, and when it was
// last seen alive) to LOGDIR/open-sessions.journal, after the log lines
// written before it are synced; the next Open writes a line for each
// session in the journal, marked "ended":"crash", with the bytes and
// duration known at the last journal write.
const (
	// JournalName is the session journal's name in the log folder.
	JournalName = "open-sessions.journal"
	// journalAfter is how long a session must be open to be journaled:
	// shorter ones are covered by their own line, written within a second.
	journalAfter = time.Second
)

// Session is an open request whose line is written when it ends (End),
// or by the next start if the gateway dies first. A nil *Session is valid
// and does nothing.
type Session struct {
	w      *Writer
	id     uint64
	e      Entry // the decision, as Begin got it; read-only after Begin
	bytes  atomic.Int64
	status atomic.Int64
	done   atomic.Bool // its line is written (by End, or at Close)
}

// Begin starts a session for e (the line as it would read if the request
// ended now). Call End with the final entry when it ends.
func (w *Writer) Begin(e *Entry) *Session {
	if w == nil || e == nil {
		return nil
	}
	s := &Session{w: w, e: *e}
	if s.e.Time.IsZero() {
		s.e.Time = w.o.Now()
	}
	s.status.Store(int64(e.HTTPStatus))
	s.bytes.Store(e.Bytes)
	w.smu.Lock()
	w.nextSID++
	s.id = w.nextSID
	w.sessions[s.id] = s
	w.smu.Unlock()
	return s
}

// Add counts n more bytes for the journal.
func (s *Session) Add(n int64) {
	if s != nil {
		s.bytes.Add(n)
	}
}

// SetStatus records the status the client was sent, for the journal.
func (s *Session) SetStatus(code int) {
	if s != nil {
		s.status.Store(int64(code))
	}
}

// End logs the session's final line, e. On a nil session it is Log.
func (s *Session) End(w *Writer, e *Entry) {
	if s == nil {
		w.Log(e)
		return
	}
	if !s.done.CompareAndSwap(false, true) {
		return // written at Close already
	}
	e2 := *e
	e2.sid = s.id
	s.w.Log(&e2)
}

// ended forgets a session whose line the writer has chained. On the
// writer goroutine.
func (w *Writer) ended(sid uint64) {
	w.smu.Lock()
	delete(w.sessions, sid)
	w.smu.Unlock()
}

// journalRecord is one line of the journal.
type journalRecord struct {
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
	Status     int       `json:"status"`
	Bytes      int64     `json:"bytes"`
	Classified string    `json:"classified,omitempty"`
	SafeSearch bool      `json:"safe_search,omitempty"`
	Mode       string    `json:"mode,omitempty"`
	Alive      time.Time `json:"alive"` // last seen open
}

// journal returns the journal's content for the sessions open for
// journalAfter or more, and whether there are none; nil when there are
// none and the journal written last was empty too.
func (w *Writer) journal(now time.Time) ([]byte, bool) {
	w.smu.Lock()
	open := make([]*Session, 0, len(w.sessions))
	for _, s := range w.sessions {
		if now.Sub(s.e.Time) >= journalAfter {
			open = append(open, s)
		}
	}
	w.smu.Unlock()
	if len(open) == 0 && w.lastJournalEmpty {
		return nil, true
	}
	sort.Slice(open, func(i, j int) bool { return open[i].id < open[j].id })
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, s := range open {
		e := &s.e
		_ = enc.Encode(journalRecord{
			TS: e.Time, Src: e.Src, User: e.User, IP: e.IP, Profile: e.Profile, Method: e.Method,
			Host: e.Host, URL: e.URL, Categories: e.Categories.Names(), Verdict: e.Verdict, Rule: e.Rule,
			Status: int(s.status.Load()), Bytes: s.bytes.Load(), Classified: e.Classified, SafeSearch: e.SafeSearch, Mode: e.Mode, Alive: now,
		})
	}
	w.journalGen++
	if b.Len() == 0 {
		return []byte{}, true // non-nil: write the empty journal
	}
	return b.Bytes(), false
}

// writeJournal replaces the journal atomically and durably with b, the
// journal of generation gen, unless a newer one was written already (the
// syncer may write late what the writer computed before a later Flush).
func (w *Writer) writeJournal(b []byte, gen uint64) error {
	w.jmu.Lock()
	defer w.jmu.Unlock()
	if gen <= w.journalWritten {
		return nil
	}
	if err := atomicfile.WriteFile(filepath.Join(w.o.Dir, JournalName), b, 0o640); err != nil {
		return err
	}
	w.journalWritten = gen
	return nil
}

// replayJournal writes a line, marked ended by the crash, for each session
// the previous run journaled as open; then syncs them and empties the
// journal. Called by Open before the goroutines start.
func (w *Writer) replayJournal() {
	path := filepath.Join(w.o.Dir, JournalName)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		w.lastJournalEmpty = true
		return
	}
	if err != nil {
		w.log.Error("access log: cannot read the session journal; sessions open at the last crash may have no line",
			zap.String("file", path), zap.Error(err))
		return
	}
	var entries []Entry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	bad := 0
	for sc.Scan() {
		var r journalRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.TS.IsZero() {
			bad++
			continue
		}
		e := Entry{Time: r.TS, Src: r.Src, User: r.User, IP: r.IP, Profile: r.Profile, Method: r.Method,
			Host: r.Host, URL: r.URL, Verdict: r.Verdict, Rule: r.Rule, Bytes: r.Bytes,
			Duration: r.Alive.Sub(r.TS), Classified: r.Classified, SafeSearch: r.SafeSearch, Mode: r.Mode, Ended: "crash"}
		for _, n := range r.Categories {
			if c, ok := categories.Parse(n); ok {
				e.Categories = e.Categories.Add(c)
			}
		}
		if e.Src == "dns" {
			e.Rcode = "NOERROR"
		} else {
			e.HTTPStatus = r.Status
		}
		entries = append(entries, e)
	}
	f.Close()
	if bad > 0 {
		// A crash while the journal was being replaced leaves the old one
		// (the new one is renamed into place whole): this is damage.
		w.log.Error("access log: unreadable lines in the session journal", zap.Int("lines", bad))
		if len(entries) == 0 {
			w.noteLost(bad, "")
		}
	}
	if len(entries) > 0 {
		w.log.Warn("access log: writing the lines of sessions that were open when the gateway stopped without closing",
			zap.Int("sessions", len(entries)))
	}
	for i := range entries {
		w.handle(&entries[i])
	}
	if err := w.flushOpen(); err != nil {
		return // the journal stays for the next start
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		w.writeError("removing the session journal in", w.o.Dir, err)
		return
	}
	w.lastJournalEmpty = true
}

// closeSessions writes, at Close, the lines of sessions still open (marked
// "ended":"stop"); their End later does nothing.
func (w *Writer) closeSessions() {
	w.smu.Lock()
	open := make([]*Session, 0, len(w.sessions))
	for _, s := range w.sessions {
		open = append(open, s)
	}
	w.sessions = map[uint64]*Session{}
	w.smu.Unlock()
	sort.Slice(open, func(i, j int) bool { return open[i].id < open[j].id })
	now := w.o.Now()
	for _, s := range open {
		if !s.done.CompareAndSwap(false, true) {
			continue // its End is queued or handled
		}
		e := s.e
		e.Bytes = s.bytes.Load()
		if e.Src != "dns" {
			e.HTTPStatus = int(s.status.Load())
		}
		e.Duration = now.Sub(e.Time)
		e.Ended = "stop"
		w.handle(&e)
	}
}
