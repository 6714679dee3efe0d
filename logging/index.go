package logging

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/schoolgate/schoolgate/internal/atomicfile"
)

// A closed day's index (access-DATE.jsonl.idx) makes "everything user X
// did" fast without reading the day: it holds, per user (the line's `user`,
// which for a failed sign-in is the name tried), that user's lines as they
// are in the log, gzip-compressed, in file order; a directory of the users
// at the end; and, in its header, the result of verifying the day's chain
// when the index was built, with the size and modification time of the
// day's file then. An index whose file has changed since is rebuilt (or
// ignored). The lines are copies: `logs verify` reads the day itself.
//
// Layout: a header line (JSON, indexHeader), the users' gzip blocks, the
// directory (JSON: user → [offset, length, lines]), and a 21-byte trailer:
// "\n" and the directory's offset as 20 decimal digits.

// IndexSuffix names a day's index beside its log.
const IndexSuffix = ".idx"

const (
	indexVersion = 1
	trailerLen   = 21
)

// indexHeader is the first line of an index.
type indexHeader struct {
	Version  int    `json:"version"`
	File     string `json:"file"`     // the day's file the index was built from
	Size     int64  `json:"size"`     // its size then
	MtimeNS  int64  `json:"mtime_ns"` // its modification time then
	Indexed  string `json:"indexed"`  // when, RFC 3339
	Lines    int    `json:"lines"`
	LastHash string `json:"last_hash"`
	Tip      bool   `json:"tip"`
	Problem  string `json:"problem,omitempty"` // the first fault Verify found, "" when intact
	Gaps     []Gap  `json:"gaps,omitempty"`
}

// IndexPath is where the index of the day whose log is at path goes: the
// .jsonl name plus IndexSuffix, for a compressed day too.
func IndexPath(path string) string {
	return strings.TrimSuffix(path, gzSuffix) + IndexSuffix
}

// BuildIndex (re)builds the index of the day at path (.jsonl or .gz),
// verifying the day's chain on the way.
func BuildIndex(path string) error {
	src := path
	if strings.HasSuffix(path, gzSuffix) {
		tmp, err := decompressTemp(path)
		if err != nil {
			return err
		}
		defer os.Remove(tmp)
		src = tmp
	}
	return buildIndexFrom(src, path)
}

// decompressTemp writes the decompressed day beside it, for indexing.
func decompressTemp(path string) (string, error) {
	in, err := OpenDay(path)
	if err != nil {
		return "", err
	}
	defer in.Close()
	tmp := strings.TrimSuffix(path, gzSuffix) + ".idxsrc.tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("decompressing %s: %w", path, err)
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// buildIndexFrom indexes the plain log at src as the index of the day
// whose file is at path (src itself, or the .gz made from it).
func buildIndexFrom(src, path string) error {
	hdr, err := indexHeaderFor(src, path)
	if err != nil {
		return err
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	ul, err := readUserLines(f)
	if err != nil {
		return err
	}
	return atomicfile.Write(IndexPath(path), 0o640, func(bw io.Writer) error {
		return ul.writeIndex(bw, hdr, f, src)
	})
}

// indexHeaderFor is the index header of the day whose file is at path,
// with what verifying its plain log at src found.
func indexHeaderFor(src, path string) (indexHeader, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return indexHeader{}, err
	}
	hdr := indexHeader{Version: indexVersion, File: filepath.Base(path), Size: fi.Size(),
		MtimeNS: fi.ModTime().UnixNano(), Indexed: time.Now().UTC().Format(time.RFC3339)}
	res, verr := verifyWithTip(src, TipPath(strings.TrimSuffix(path, gzSuffix)), nil)
	var ve *VerifyError
	switch {
	case errors.As(verr, &ve):
		hdr.Problem = ve.Error()
	case verr != nil:
		return indexHeader{}, verr
	}
	hdr.Lines, hdr.LastHash, hdr.Tip, hdr.Gaps = res.Lines, res.LastHash, res.Tip, res.Gaps
	return hdr, nil
}

// userLines is where each user's lines are in a day's log: refs sorted
// by user, in the order of the file within a user.
type userLines struct {
	names []string // by user id
	refs  []lineRef
}

type lineRef struct {
	user uint32 // index in names
	off  int64
	n    uint32
}

func readUserLines(f *os.File) (*userLines, error) {
	ul := &userLines{}
	ids := map[string]uint32{}
	err := eachLine(f, func(line []byte, off int64) {
		u := lineUser(line)
		id, ok := ids[string(u)]
		if !ok {
			id = uint32(len(ul.names))
			ids[string(u)] = id
			ul.names = append(ul.names, string(u))
		}
		ul.refs = append(ul.refs, lineRef{id, off, uint32(len(line))})
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(ul.refs, func(i, j int) bool { return ul.refs[i].user < ul.refs[j].user })
	return ul, nil
}

// writeIndex writes the index to bw: the header line, each user's lines
// (read from f, the log at src) as a gzip member of its own, the
// directory of the members, and the directory's offset.
func (ul *userLines) writeIndex(bw io.Writer, hdr indexHeader, f *os.File, src string) error {
	refs := ul.refs
	hb, _ := json.Marshal(hdr)
	if _, err := bw.Write(append(hb, '\n')); err != nil {
		return err
	}
	pos := int64(len(hb) + 1)
	dir := make(map[string][3]int64, len(ul.names))
	cw := &countWriter{w: bw}
	zw, _ := gzip.NewWriterLevel(cw, gzip.BestSpeed)
	buf := make([]byte, 0, 64<<10)
	for i := 0; i < len(refs); {
		j := i
		for j < len(refs) && refs[j].user == refs[i].user {
			j++
		}
		cw.n = 0
		zw.Reset(cw)
		for _, r := range refs[i:j] {
			buf = buf[:r.n]
			if cap(buf) < int(r.n) {
				buf = make([]byte, r.n)
			}
			if _, err := f.ReadAt(buf, r.off); err != nil {
				return fmt.Errorf("indexing %s: %w", src, err)
			}
			zw.Write(buf) //nolint:errcheck // to cw, whose errors the buffered writer keeps for Flush
		}
		zw.Close()
		dir[ul.names[refs[i].user]] = [3]int64{pos, cw.n, int64(j - i)}
		pos += cw.n
		i = j
	}
	db, _ := json.Marshal(dir)
	bw.Write(db)                              //nolint:errcheck // Flush reports
	_, err := fmt.Fprintf(bw, "\n%020d", pos) // Flush reports the buffered writer's errors
	return err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// lineUser returns the `user` field of a line as written (JSON-escaped
// text; unescaped when it has escapes).
func lineUser(line []byte) []byte {
	const key = `,"user":"`
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return nil
	}
	s := line[i+len(key):]
	esc := false
	for j := 0; j < len(s); j++ {
		switch s[j] {
		case '\\':
			esc = true
			j++
		case '"':
			if !esc {
				return s[:j]
			}
			var u string
			if json.Unmarshal(line[i+len(key)-1:i+len(key)+j+1], &u) == nil {
				return []byte(u)
			}
			return s[:j]
		}
	}
	return nil
}

// dayIndex is an open index.
type dayIndex struct {
	f   *os.File
	hdr indexHeader
	dir map[string][3]int64
}

// openIndex opens the index of the day at path if it is current: built
// from the file as it is now (same size and modification time).
func openIndex(path string) (*dayIndex, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(IndexPath(path))
	if err != nil {
		return nil, err
	}
	ix := &dayIndex{f: f}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	hl, err := bufio.NewReaderSize(f, 4096).ReadSlice('\n')
	if err != nil {
		return nil, fmt.Errorf("index of %s: no header", path)
	}
	if err := json.Unmarshal(hl, &ix.hdr); err != nil || ix.hdr.Version != indexVersion {
		return nil, fmt.Errorf("index of %s: unreadable header", path)
	}
	if ix.hdr.File != filepath.Base(path) || ix.hdr.Size != fi.Size() || ix.hdr.MtimeNS != fi.ModTime().UnixNano() {
		return nil, errStaleIndex
	}
	ist, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var tr [trailerLen]byte
	if ist.Size() < trailerLen {
		return nil, fmt.Errorf("index of %s: cut short", path)
	}
	if _, err := f.ReadAt(tr[:], ist.Size()-trailerLen); err != nil {
		return nil, err
	}
	dirOff, err := strconv.ParseInt(string(tr[1:]), 10, 64)
	if err != nil || dirOff <= 0 || dirOff > ist.Size()-trailerLen {
		return nil, fmt.Errorf("index of %s: bad trailer", path)
	}
	db := make([]byte, ist.Size()-trailerLen-dirOff)
	if _, err := f.ReadAt(db, dirOff); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(db, &ix.dir); err != nil {
		return nil, fmt.Errorf("index of %s: unreadable directory: %w", path, err)
	}
	ok = true
	return ix, nil
}

var errStaleIndex = errors.New("the index is older than the day's file")

// userLines calls fn with each line (without its newline) of user's.
func (ix *dayIndex) userLines(user string, fn func(line []byte)) error {
	e, ok := ix.dir[user]
	if !ok {
		return nil
	}
	zr, err := gzip.NewReader(io.NewSectionReader(ix.f, e[0], e[1]))
	if err != nil {
		return err
	}
	br := bufio.NewReaderSize(zr, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 1 {
			fn(line[:len(line)-1])
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (ix *dayIndex) Close() error { return ix.f.Close() }
