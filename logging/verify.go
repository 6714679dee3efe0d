package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/schoolgate/schoolgate/internal/atomicfile"
	"github.com/schoolgate/schoolgate/internal/lines"
)

// maxLine bounds one line when reading a log back; the writer never
// produces longer lines unless a URL is megabytes long.
const maxLine = 4 << 20

// VerifyError names the first bad line of a log file. Line 0 means the
// problem is not with one line (e.g. an unreadable sidecar).
type VerifyError struct {
	Line int
	Msg  string
	// Incomplete is set when the only fault found is a last line without
	// its newline: a cut file, or one the writer is writing right now.
	Incomplete bool
}

func (e *VerifyError) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

// VerifyResult is what Verify found in an intact file.
type VerifyResult struct {
	Lines    int
	LastHash string // hex hash of the last line, "" for an empty file
	// Tip is true when the .tip sidecar was present and agreed, so that
	// lines removed from the end would have been detected.
	Tip bool
	// Gaps are the writer's own records in the file: lines it could not
	// write, and restarts whose log did not match the last checkpoint.
	// The chain is intact, but the day is not complete while there are any.
	Gaps []Gap

	at map[int64]string // hashes of the lines verifyFile was asked for
}

// Gap is a gap or checkpoint-mismatch record found by VerifyFile.
type Gap struct {
	Line int       // its line number
	Time time.Time // when the lines were lost (the record's ts)
	Rule string    // RuleGap or RuleCheckpointMismatch
	Lost int64     // lines lost (0: unknown, or a mismatch)
	Note string
}

func (g Gap) String() string {
	ts := g.Time.UTC().Format(time.RFC3339)
	if g.Rule == RuleCheckpointMismatch {
		return fmt.Sprintf("checkpoint mismatch at %s (line %d): %s", ts, g.Line, g.Note)
	}
	return fmt.Sprintf("gap: %d lines lost at %s (line %d)", g.Lost, ts, g.Line)
}

// logRecordAt is where `"src":"log"` starts in one of the writer's own
// records: after `{"ts":"` and the 24-character timestamp and `",`.
const logRecordAt = len(`{"ts":"`) + len(tsLayout) + len(`",`)

// isLogRecord reports whether a chained line is one of the writer's own
// records; the check is a prefix comparison, so ordinary lines cost nothing.
func isLogRecord(line []byte) bool {
	return len(line) > logRecordAt && bytes.HasPrefix(line[logRecordAt:], []byte(`"src":"log"`))
}

// parseGap reads a writer's record.
func parseGap(line []byte, n int) Gap {
	var v struct {
		TS   time.Time `json:"ts"`
		Rule string    `json:"rule"`
		Lost int64     `json:"lost"`
		Note string    `json:"note"`
	}
	_ = json.Unmarshal(line, &v) // the chain checked it is valid JSON
	return Gap{Line: n, Time: v.TS, Rule: v.Rule, Lost: v.Lost, Note: v.Note}
}

// Verify checks the hash chain of the log file at path; see the package
// doc for what it proves. It returns the number of lines, and a
// *VerifyError naming the first bad line, or another error if the file
// cannot be read.
func Verify(path string) (lines int, err error) {
	r, err := VerifyFile(path)
	return r.Lines, err
}

// VerifyFile is Verify with more detail about an intact file. path may
// name a compressed day (.jsonl.gz), or a .jsonl that was compressed.
func VerifyFile(path string) (VerifyResult, error) {
	return verifyFile(path, nil)
}

// verifyFile is VerifyFile that also records in res.at the hashes of the
// lines want names.
func verifyFile(path string, want map[int64]string) (VerifyResult, error) {
	return verifyWithTip(path, TipPath(strings.TrimSuffix(path, gzSuffix)), want)
}

// verifyWithTip is verifyFile with the sidecar at tipPath (an index built
// from a decompressed copy uses the day's own).
func verifyWithTip(path, tipPath string, want map[int64]string) (VerifyResult, error) {
	var res VerifyResult
	f, err := OpenDay(path)
	if err != nil {
		return res, err
	}
	defer f.Close()
	// The sidecar first: the writer rewrites it only after the lines it
	// names are on disk, so read in this order it never runs ahead of the
	// file, even while the gateway is writing.
	tip, tipErr := readTip(tipPath)
	switch {
	case errors.Is(tipErr, os.ErrNotExist):
		tip.seq = -1
	case tipErr != nil:
		return res, &VerifyError{Msg: fmt.Sprintf("the sidecar %s is unreadable: %v", tipPath, tipErr)}
	}

	lr := lines.NewReader(f, 256<<10)
	var prev []byte
	var prevBuf [hashHex]byte
	n := 0
	for {
		line, err := lr.Next(maxLine)
		if errors.Is(err, lines.ErrTooLong) {
			return res, &VerifyError{Line: n + 1, Msg: fmt.Sprintf("longer than %d bytes: not a line of the access log", maxLine)}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return res, fmt.Errorf("reading %s: %w", path, err)
		}
		if len(line) == 0 {
			break // clean end of file
		}
		n++
		if line[len(line)-1] != '\n' {
			return res, &VerifyError{Line: n, Msg: "incomplete last line (no newline: the file was cut, or is being written right now)", Incomplete: true}
		}
		line = line[:len(line)-1]
		if msg := checkLine(line, n, prev); msg != "" {
			return res, &VerifyError{Line: n, Msg: msg}
		}
		if _, ok := want[int64(n)]; ok {
			if res.at == nil {
				res.at = map[int64]string{}
			}
			res.at[int64(n)] = string(line[len(line)-2-hashHex : len(line)-2])
		}
		if isLogRecord(line) {
			res.Gaps = append(res.Gaps, parseGap(line, n))
		}
		copy(prevBuf[:], line[len(line)-2-hashHex:len(line)-2])
		prev = prevBuf[:]
		if int64(n) == tip.seq && string(prev) != string(tip.hash[:]) {
			return res, &VerifyError{Line: n, Msg: "hash differs from the one the writer recorded in the .tip sidecar (the file was rewritten)"}
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if tip.seq > int64(n) {
		return res, &VerifyError{Line: n + 1, Msg: fmt.Sprintf(
			"missing: the file ends after line %d but the writer recorded %d lines (lines were removed from the end)", n, tip.seq)}
	}
	res.Lines = n
	res.LastHash = string(prev)
	res.Tip = tip.seq >= 0
	return res, nil
}

// checkLine checks one line (without its newline) as line n after a line
// whose hash is prev; it returns what is wrong, or "".
func checkLine(line []byte, n int, prev []byte) string {
	if len(line) == 0 {
		return "empty line"
	}
	if !json.Valid(line) {
		return "not valid JSON"
	}
	p, seq, sum, ok := splitLine(line)
	if !ok {
		return `does not end with "seq" and "hash" fields`
	}
	if seq != int64(n) {
		what := "a line was removed or inserted"
		if seq > int64(n) && n == 1 {
			what = "lines were removed from the start"
		}
		return fmt.Sprintf("seq %d, expected %d (%s)", seq, n, what)
	}
	want := chainHash(prev, p)
	if !bytes.Equal(sum, want[:]) {
		return "hash does not match (edited, or a line before it was removed or reordered)"
	}
	return ""
}

// tipState is the content of a .tip sidecar.
type tipState struct {
	seq  int64
	hash [hashHex]byte
}

// readTip reads a .tip sidecar: {"seq":N,"hash":"<hex>"}.
func readTip(path string) (tipState, error) {
	var t tipState
	b, err := os.ReadFile(path)
	if err != nil {
		return t, err
	}
	var v struct {
		Seq  *int64 `json:"seq"`
		Hash string `json:"hash"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return t, fmt.Errorf("decoding: %w", err)
	}
	if v.Seq == nil || *v.Seq < 1 || len(v.Hash) != hashHex {
		return t, errors.New("decoding: needs seq >= 1 and a 64-digit hash")
	}
	t.seq = *v.Seq
	copy(t.hash[:], v.Hash)
	return t, nil
}

// writeTip replaces the sidecar of the log at path atomically and durably.
func writeTip(path string, seq int64, hash [hashHex]byte) error {
	b := make([]byte, 0, 100)
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"hash":"`...)
	b = append(b, hash[:]...)
	b = append(b, "\"}\n"...)
	return atomicfile.WriteFile(TipPath(path), b, 0o640)
}

// damagedError says the end of an existing log is not a line of ours.
type damagedError struct{ msg string }

func (e *damagedError) Error() string { return "damaged access log: " + e.msg }

// readTail returns the seq and hash of the last complete line of f,
// first truncating an incomplete last line (returning how many bytes were
// cut).
func readTail(f *os.File) (seq int64, sum [hashHex]byte, cut int64, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, sum, 0, err
	}
	size := fi.Size()
	if size == 0 {
		return 0, sum, 0, nil
	}
	nl, err := lastNewline(f, size)
	if err != nil {
		return 0, sum, 0, err
	}
	end := nl + 1 // length of the complete lines
	if end < size {
		if err := f.Truncate(end); err != nil {
			return 0, sum, 0, fmt.Errorf("cutting an incomplete last line: %w", err)
		}
		cut = size - end
	}
	if end == 0 {
		return 0, sum, cut, nil
	}
	start, err := lastNewline(f, end-1)
	if err != nil {
		return 0, sum, cut, err
	}
	start++
	line := make([]byte, end-1-start)
	if _, err := f.ReadAt(line, start); err != nil {
		return 0, sum, cut, err
	}
	if !json.Valid(line) {
		return 0, sum, cut, &damagedError{"the last line is not valid JSON"}
	}
	_, seq, s, ok := splitLine(line)
	if !ok || seq < 1 {
		return 0, sum, cut, &damagedError{"the last line has no seq and hash at its end"}
	}
	copy(sum[:], s)
	return seq, sum, cut, nil
}

// lastNewline returns the offset of the last '\n' before offset before,
// or -1 if there is none; it gives up (damagedError) after maxLine bytes.
func lastNewline(f *os.File, before int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for pos := before; pos > 0; {
		if before-pos > maxLine {
			return 0, &damagedError{fmt.Sprintf("no line break in the last %d bytes", maxLine)}
		}
		n := int64(len(buf))
		if pos < n {
			n = pos
		}
		pos -= n
		if _, err := f.ReadAt(buf[:n], pos); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return pos + int64(i), nil
		}
	}
	return -1, nil
}
