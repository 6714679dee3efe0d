package logging

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/internal/atomicfile"
	"github.com/schoolgate/schoolgate/internal/lines"
)

// A hash chain cannot stop someone who rewrites it; a copy of its head
// kept where they cannot write can. The writer sends the head of each day
// it wrote to (file, seq, hash) as a Checkpoint: at Open, every
// Options.CheckpointInterval and at Close, each checkpoint chained to the
// one before (Prev, CheckpointHash). serve hands them to the alert sinks
// (webhook, file); `logs verify -checkpoints FILE` proves a day against
// them. The last one sent is kept in Options.StateDir, and Open compares
// the log with it: a log whose end does not match is logged as a
// `checkpoint mismatch` and gets a chained mismatch record.

// CheckpointType is the Type of every checkpoint.
const CheckpointType = "schoolgate_log_checkpoint"

// Reasons a checkpoint was sent.
const (
	CheckpointStart    = "start"
	CheckpointInterval = "interval"
	CheckpointStop     = "stop" // the writer's last word on the file until the next start
)

const checkpointState = "checkpoint.json"

// Checkpoint is the head of one day's log as sent.
type Checkpoint struct {
	Type   string `json:"type"`
	N      int64  `json:"n"`      // its number in the checkpoint chain, from 1
	Time   string `json:"time"`   // RFC 3339, UTC, when sent
	Reason string `json:"reason"` // start, interval or stop
	File   string `json:"file"`   // the log's base name, access-DATE.jsonl
	Seq    int64  `json:"seq"`    // its last line
	Hash   string `json:"hash"`   // that line's hash ("" for an empty file)
	Prev   string `json:"prev"`   // the previous checkpoint's CheckpointHash
	// CheckpointHash is the hex SHA-256 of Prev, a newline, and
	// "N|Time|Reason|File|Seq|Hash".
	CheckpointHash string `json:"checkpoint_hash"`
}

func (c *Checkpoint) sum() string {
	h := sha256.New()
	io.WriteString(h, c.Prev+"\n"+strconv.FormatInt(c.N, 10)+"|"+c.Time+"|"+c.Reason+"|"+c.File+"|"+ //nolint:errcheck
		strconv.FormatInt(c.Seq, 10)+"|"+c.Hash)
	return hex.EncodeToString(h.Sum(nil))
}

// head is a file's last chained line.
type head struct {
	seq  int64
	hash [hashHex]byte
}

func (h head) hex() string {
	if h.seq == 0 {
		return ""
	}
	return string(h.hash[:])
}

// loadCheckpoint reads the last checkpoint sent from the state folder.
func loadCheckpoint(dir string) (*Checkpoint, error) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointState))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c Checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", filepath.Join(dir, checkpointState), err)
	}
	return &c, nil
}

func saveCheckpoint(dir string, c *Checkpoint) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	b, _ := json.Marshal(c)
	return atomicfile.WriteFile(filepath.Join(dir, checkpointState), append(b, '\n'), 0o640)
}

// checkpointsOn reports whether the writer sends checkpoints.
func (w *Writer) checkpointsOn() bool { return w.o.StateDir != "" || w.o.OnCheckpoint != nil }

// noteFinished records the final head of a file the writer closed, for
// the next checkpoint. On the writer goroutine.
func (w *Writer) noteFinished(df *dayFile) {
	if w.checkpointsOn() {
		w.cpPending[df.path] = head{df.seq, df.hash}
	}
}

// checkpoint sends a checkpoint for each file closed since the last one
// and for the current file when it has new lines (or force), after
// syncing it. On the writer goroutine.
func (w *Writer) checkpoint(reason string, force bool) {
	if !w.checkpointsOn() {
		return
	}
	heads := w.cpPending
	w.cpPending = map[string]head{}
	if df := w.cur; df != nil && df.f != nil && (force || df.seq != df.cpSeq || !df.cpSent) {
		if err := w.service(df); err == nil && w.syncNow(df) == nil {
			heads[df.path] = head{df.seq, df.hash}
			df.cpSeq, df.cpSent = df.seq, true
		}
	}
	paths := make([]string, 0, len(heads))
	for p := range heads {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		h := heads[p]
		c := Checkpoint{Type: CheckpointType, Time: w.o.Now().UTC().Format(time.RFC3339Nano), Reason: reason,
			File: filepath.Base(p), Seq: h.seq, Hash: h.hex(), N: 1}
		if w.lastCP != nil {
			c.N, c.Prev = w.lastCP.N+1, w.lastCP.CheckpointHash
		}
		c.CheckpointHash = c.sum()
		if w.o.StateDir != "" {
			if err := saveCheckpoint(w.o.StateDir, &c); err != nil {
				w.writeError("recording the checkpoint in", w.o.StateDir, err)
			}
		}
		w.lastCP = &c
		if w.o.OnCheckpoint != nil {
			func() {
				defer func() {
					if r := recover(); r != nil {
						w.log.Error("access log: OnCheckpoint panicked", zap.Any("panic", r))
					}
				}()
				w.o.OnCheckpoint(c)
			}()
		}
	}
}

// checkLastCheckpoint compares the log with the last checkpoint sent, at
// Open: a file that is shorter, differs at the checkpointed line, or (after
// a stop checkpoint) has lines the writer did not write, gets a mismatch
// record, and the program log says `checkpoint mismatch`.
func (w *Writer) checkLastCheckpoint() {
	c := w.lastCP
	if c == nil {
		return
	}
	date, ok := ParseFileName(c.File, w.o.Location)
	if !ok {
		w.log.Error("checkpoint mismatch: the last checkpoint names no access log", zap.String("file", c.File))
		return
	}
	path := PathFor(w.o.Dir, date)
	lines, hashAt, err := readHead(path, c.Seq)
	var problem string
	var lost int64
	switch {
	case errors.Is(err, fs.ErrNotExist) && c.Seq > 0:
		problem = fmt.Sprintf("%s is gone; checkpoint %d named its line %d", c.File, c.N, c.Seq)
		lost = c.Seq
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		problem = fmt.Sprintf("%s cannot be read back to line %d: %v", c.File, c.Seq, err)
	case lines < c.Seq:
		problem = fmt.Sprintf("%s ends at line %d; checkpoint %d named line %d (lines were cut)", c.File, lines, c.N, c.Seq)
		lost = c.Seq - lines
	case c.Seq > 0 && hashAt != c.Hash:
		problem = fmt.Sprintf("line %d of %s is not the line checkpoint %d named (the file was rewritten)", c.Seq, c.File, c.N)
	case c.Reason == CheckpointStop && lines > c.Seq:
		problem = fmt.Sprintf("%s has %d lines after line %d, where the writer's stop checkpoint %d left it (lines were added while it was stopped)",
			c.File, lines-c.Seq, c.Seq, c.N)
	}
	if problem == "" {
		return
	}
	w.log.Error("checkpoint mismatch: the log does not end where the last checkpoint sent said; a mismatch record goes into the chain",
		zap.String("file", path), zap.String("problem", problem), zap.Int64("checkpoint", c.N))
	if w.cur == nil || !w.cur.date.Equal(date) {
		w.switchTo(date)
	}
	if df := w.cur; df != nil && df.f != nil {
		w.encode(df, &Entry{Time: w.o.Now(), Src: SrcLog, Rule: RuleCheckpointMismatch, Lost: lost,
			Note: "checkpoint mismatch: " + problem})
	}
}

// readHead returns how many lines the log at path (or its .gz) holds and
// the hash of line seq.
func readHead(path string, seq int64) (count int64, hashAt string, err error) {
	rc, err := OpenDay(path)
	if err != nil {
		return 0, "", err
	}
	defer rc.Close()
	lr := lines.NewReader(rc, 256<<10)
	for {
		line, err := lr.Next(0)
		if len(line) > 0 && line[len(line)-1] == '\n' {
			count++
			if count == seq {
				l := line[:len(line)-1]
				if len(l) >= tailLen {
					hashAt = string(l[len(l)-2-hashHex : len(l)-2])
				}
			}
		}
		if err == io.EOF {
			return count, hashAt, nil
		}
		if err != nil {
			return count, hashAt, err
		}
	}
}

// ReadCheckpoints reads checkpoints from r, one JSON object a line as the
// webhook or the alerts file received them; other lines (alerts) are
// skipped. They are returned in chain order.
func ReadCheckpoints(r io.Reader) ([]Checkpoint, error) {
	var out []Checkpoint
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		b := sc.Bytes()
		if !strings.Contains(string(b), CheckpointType) {
			continue
		}
		var c Checkpoint
		if err := json.Unmarshal(b, &c); err != nil || c.Type != CheckpointType {
			return nil, fmt.Errorf("line %d: not a checkpoint: %v", n, err)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].N < out[j].N })
	return out, nil
}

// CheckChain checks the checkpoints' own chain: each one's hash, and each
// one's link to the one before. A missing number is a problem (a
// checkpoint withheld); the first one is taken as given.
func CheckChain(cps []Checkpoint) []string {
	var problems []string
	for i := range cps {
		c := &cps[i]
		if c.sum() != c.CheckpointHash {
			problems = append(problems, fmt.Sprintf("checkpoint %d: its hash does not match its fields (edited)", c.N))
		}
		if i == 0 {
			continue
		}
		p := &cps[i-1]
		switch {
		case c.N == p.N:
			if c.CheckpointHash != p.CheckpointHash {
				problems = append(problems, fmt.Sprintf("checkpoint %d: two different checkpoints with that number", c.N))
			}
		case c.N != p.N+1:
			problems = append(problems, fmt.Sprintf("checkpoints %d to %d are missing", p.N+1, c.N-1))
		case c.Prev != p.CheckpointHash:
			problems = append(problems, fmt.Sprintf("checkpoint %d does not follow checkpoint %d (prev differs)", c.N, p.N))
		}
	}
	return problems
}

// VerifyAgainst is VerifyFile, and then proves the file against the
// checkpoints naming it: each checkpointed line must be there with the
// checkpointed hash, and no line may follow the writer's stop checkpoint
// unless a later checkpoint covers it. It returns what does not hold.
func VerifyAgainst(path string, cps []Checkpoint) (VerifyResult, []string, error) {
	base := filepath.Base(strings.TrimSuffix(path, gzSuffix))
	want := map[int64]string{}
	var mine []Checkpoint
	for _, c := range cps {
		if c.File == base {
			mine = append(mine, c)
			if c.Seq > 0 {
				want[c.Seq] = c.Hash
			}
		}
	}
	res, err := verifyFile(path, want)
	if err != nil {
		return res, nil, err
	}
	var problems []string
	for _, c := range mine {
		switch {
		case c.Seq > int64(res.Lines):
			problems = append(problems, fmt.Sprintf("checkpoint %d (%s) named line %d, but the file ends at line %d: lines were cut",
				c.N, c.Time, c.Seq, res.Lines))
		case c.Seq > 0 && res.at[c.Seq] != c.Hash:
			problems = append(problems, fmt.Sprintf("checkpoint %d (%s): line %d is not the line it named: the file was rewritten",
				c.N, c.Time, c.Seq))
		}
	}
	if len(mine) > 0 {
		last := mine[len(mine)-1]
		if last.Reason == CheckpointStop && int64(res.Lines) > last.Seq {
			problems = append(problems, fmt.Sprintf("%d lines after line %d, where the writer's stop checkpoint %d (%s) left the file: added by someone else",
				int64(res.Lines)-last.Seq, last.Seq, last.N, last.Time))
		}
	}
	return res, problems, nil
}
