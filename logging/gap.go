package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
)

// Lines the writer could not write leave a gap record in the chain: a line
// of Src SrcLog, Rule RuleGap, naming how many lines were lost (Lost) and
// when the loss began (ts). While the gateway runs, the record is written
// as soon as the disk takes lines again. Lines still unwritten at a stop
// (a full disk) are counted in the gap marker, a small file in the log
// folder that is allocated at Open and rewritten in place, so that it can
// be written when the disk has no room for anything new; the next Open
// turns it into a gap record.
const (
	// RuleGap marks a gap record.
	RuleGap = "gap"
	// RuleCheckpointMismatch marks a restart whose log did not end where
	// the last checkpoint sent said it did.
	RuleCheckpointMismatch = "checkpoint_mismatch"

	// MarkerName is the gap marker's name in the log folder.
	MarkerName = "lost-lines.marker"
	markerSize = 512
)

// gapState counts lines lost since the last gap record.
type gapState struct {
	lost int64
	at   time.Time // when the first of them was lost
	file string    // the file they belonged to, when known
}

// markerBody is what the gap marker holds.
type markerBody struct {
	Lost int64     `json:"lost"`
	At   time.Time `json:"at"`
	File string    `json:"file,omitempty"`
}

// noteLost counts n lost lines for the next gap record. Safe for
// concurrent use (Log drops lines after Close on the caller's goroutine).
func (w *Writer) noteLost(n int, file string) {
	w.gapMu.Lock()
	defer w.gapMu.Unlock()
	if w.gap.lost == 0 {
		w.gap.at = w.o.Now()
		w.gap.file = file
	}
	w.gap.lost += int64(n)
}

// takeGap returns the lost lines counted so far and forgets them.
func (w *Writer) takeGap() gapState {
	w.gapMu.Lock()
	defer w.gapMu.Unlock()
	g := w.gap
	w.gap = gapState{}
	return g
}

// gapEntry is the gap record for g.
func gapEntry(g gapState, why string) *Entry {
	return &Entry{
		Time: g.at, Src: SrcLog, Rule: RuleGap, Lost: g.lost,
		Note: fmt.Sprintf("%d lines could not be written: %s", g.lost, why),
	}
}

// recordGap writes a gap record for the lines lost so far, once the
// current file takes writes again. On the writer goroutine.
func (w *Writer) recordGap() {
	if df := w.cur; df == nil || df.f == nil || df.failing {
		return
	}
	g := w.takeGap()
	if g.lost == 0 {
		return
	}
	w.log.Error("access log: writing a gap record for lines that were lost",
		zap.Int64("lines", g.lost), zap.Time("since", g.at))
	w.handle(gapEntry(g, "the disk refused them (full or failing)"))
}

// openMarker opens (creating and allocating if needed) the gap marker and
// returns what it records from the previous run.
func (w *Writer) openMarker() (markerBody, error) {
	var mb markerBody
	path := filepath.Join(w.o.Dir, MarkerName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return mb, err
	}
	buf := make([]byte, markerSize)
	n, _ := f.ReadAt(buf, 0)
	if b := bytes.TrimSpace(bytes.TrimRight(buf[:n], "\x00")); len(b) > 0 {
		if err := json.Unmarshal(b, &mb); err != nil {
			w.log.Error("access log: the gap marker is unreadable; lines lost at the last stop cannot be ruled out",
				zap.String("file", path), zap.Error(err))
			mb = markerBody{Lost: -1, At: w.o.Now()}
		}
	}
	if n < markerSize {
		// Allocate the whole marker now, while there is room: a later
		// rewrite in place then needs no new block.
		if err := writeMarker(f, markerBody{}); err != nil {
			f.Close()
			return mb, err
		}
	}
	w.marker = f
	return mb, nil
}

// writeMarker rewrites the marker in place and syncs it.
func writeMarker(f *os.File, mb markerBody) error {
	buf := bytes.Repeat([]byte{' '}, markerSize)
	buf[markerSize-1] = '\n'
	if mb.Lost != 0 {
		b, err := json.Marshal(mb)
		if err != nil {
			return err
		}
		if len(b) >= markerSize {
			return errors.New("gap marker too long")
		}
		copy(buf, b)
	}
	if _, err := f.WriteAt(buf, 0); err != nil {
		return err
	}
	return f.Sync()
}

// replayMarker turns a gap the previous run recorded in the marker into a
// gap record, syncs it and clears the marker. Called by Open before the
// goroutines start.
func (w *Writer) replayMarker(mb markerBody) {
	if mb.Lost == 0 {
		return
	}
	g := gapState{lost: mb.Lost, at: mb.At, file: mb.File}
	why := "the disk refused them at the last stop"
	if mb.Lost < 0 {
		g.lost = 0
		why = "the gap marker was unreadable: an unknown number"
	}
	w.log.Error("access log: the last stop could not write every line; writing a gap record",
		zap.Int64("lines", mb.Lost), zap.Time("at", mb.At), zap.String("file", mb.File))
	w.handle(gapEntry(g, why))
	if err := w.flushOpen(); err != nil {
		return // the marker stays: the next start tries again
	}
	if err := writeMarker(w.marker, markerBody{}); err != nil {
		w.writeError("clearing the gap marker in", w.o.Dir, err)
	}
}

// flushOpen writes and syncs every open file; for Open, before the
// goroutines start.
func (w *Writer) flushOpen() error {
	var errs []error
	for _, df := range append(w.stuck, w.cur) {
		if df == nil {
			continue
		}
		if err := w.service(df); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := w.syncNow(df); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// saveMarker records the lines lost at the stop in the marker, for the
// next start. It returns an error when it cannot.
func (w *Writer) saveMarker() error {
	g := w.takeGap()
	if g.lost == 0 {
		return nil
	}
	if w.marker == nil {
		return fmt.Errorf("%d lines lost and no gap marker to record them in", g.lost)
	}
	name := ""
	if g.file != "" {
		name = filepath.Base(g.file)
	}
	if err := writeMarker(w.marker, markerBody{Lost: g.lost, At: g.at, File: name}); err != nil {
		return fmt.Errorf("recording %d lost lines in the gap marker: %w", g.lost, err)
	}
	return nil
}
