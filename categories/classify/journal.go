package classify

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/schoolgate/schoolgate/categories"
)

// JournalName is the file, in the access-log folder, where the server
// keeps what the classifier learned: a restart keeps it, and `schoolgate
// check` shows it.
const JournalName = "classified-hosts.jsonl"

// journalLine is one remembered host or page in the journal. Kind is
// "host" (the host as a whole) or "page" (Path, and the Visitor who asked
// for it, so that a restart keeps counting towards the host's agreement).
// A line without a kind was written before pages were remembered apart
// from their host, when one page could condemn its host: it is not loaded.
type journalLine struct {
	Kind    string             `json:"kind"`
	Host    string             `json:"host"`
	Path    string             `json:"path,omitempty"`
	Visitor string             `json:"visitor,omitempty"`
	Via     string             `json:"via,omitempty"`
	Expires time.Time          `json:"expires"`
	Scores  map[string]float64 `json:"scores"`
}

type journal struct {
	mu     sync.Mutex
	f      *os.File
	errors int
}

// Journal makes m keep its entries in the file at path (JSON lines): the
// entries still valid at now are loaded, the file is rewritten with just
// them, and every later Remember is appended. A line that cannot be read
// is skipped (the journal is a cache of what was learned, not a record).
func (m *Memory) Journal(path string, now time.Time) error {
	if err := m.load(path, now); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("writing classifier journal: %w", err)
	}
	w := bufio.NewWriter(f)
	m.mu.RLock()
	for _, host := range m.sites.Keys() {
		s, ok := m.sites.Peek(host)
		if !ok {
			continue
		}
		if s.host != nil {
			w.Write(encodeHost(host, *s.host))
		}
		for _, p := range s.pages {
			w.Write(encodePage(host, p))
		}
	}
	m.mu.RUnlock()
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("writing classifier journal: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing classifier journal: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing classifier journal: %w", err)
	}
	f, err = os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("opening classifier journal: %w", err)
	}
	m.jmu.Lock()
	if m.j != nil {
		m.j.f.Close()
	}
	m.j = &journal{f: f}
	m.jmu.Unlock()
	return nil
}

// CloseJournal stops writing the journal.
func (m *Memory) CloseJournal() error {
	m.jmu.Lock()
	defer m.jmu.Unlock()
	if m.j == nil {
		return nil
	}
	err := m.j.f.Close()
	m.j = nil
	return err
}

// LoadMemory reads a journal without writing to it, for `check`: a
// missing file is an empty memory.
func LoadMemory(path string, now time.Time) (*Memory, error) {
	m := NewMemory(0, 0)
	if err := m.load(path, now); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return m, nil
}

// JournalPath is the journal's path in a log folder.
func JournalPath(logDir string) string { return filepath.Join(logDir, JournalName) }

func (m *Memory) load(path string, now time.Time) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		var l journalLine
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Host == "" || !now.Before(l.Expires) {
			continue
		}
		var scores []CategoryScore
		for name, v := range l.Scores {
			if c, ok := categories.Parse(name); ok && v > 0 && v <= 1 {
				scores = append(scores, CategoryScore{c, v})
			}
		}
		scores = keepScores(scores)
		if len(scores) == 0 {
			continue
		}
		switch l.Kind {
		case "host":
			m.setHost(l.Host, Remembered{Scores: scores, Via: l.Via, Expires: l.Expires}, false)
		case "page":
			if strings.HasPrefix(l.Path, "/") && !strings.ContainsAny(l.Path, "?#") {
				m.loadPage(l.Host, pageMemory{path: l.Path, visitor: l.Visitor, scores: scores, expires: l.Expires})
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading classifier journal %s: %w", path, err)
	}
	return nil
}

func encodeHost(host string, r Remembered) []byte {
	return encodeLine(journalLine{Kind: "host", Host: host, Via: r.Via, Expires: r.Expires}, r.Scores)
}

func encodePage(host string, p pageMemory) []byte {
	return encodeLine(journalLine{Kind: "page", Host: host, Path: p.path, Visitor: p.visitor, Expires: p.expires}, p.scores)
}

func encodeLine(l journalLine, scores []CategoryScore) []byte {
	l.Expires = l.Expires.UTC()
	l.Scores = make(map[string]float64, len(scores))
	for _, cs := range scores {
		l.Scores[cs.Category.String()] = cs.Score
	}
	b, _ := json.Marshal(l) // strings, a time and floats in 0..1: cannot fail
	return append(b, '\n')
}

// JournalErrors returns how many journal writes failed.
func (m *Memory) JournalErrors() int {
	m.jmu.Lock()
	defer m.jmu.Unlock()
	if m.j == nil {
		return 0
	}
	return m.j.errors
}

func (m *Memory) writeJournal(line []byte) {
	m.jmu.Lock()
	defer m.jmu.Unlock()
	if m.j == nil {
		return
	}
	if _, err := m.j.f.Write(line); err != nil {
		m.j.errors++
	}
}
