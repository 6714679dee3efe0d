// Package lines reads a stream line by line out of a bufio.Reader's
// buffer, without a copy, as bufio.Reader.ReadSlice does; and handles what
// ReadSlice leaves to its caller, a line longer than the buffer, in one of
// two ways: Next gathers it whole (up to a limit), NextFit skips it. The
// access log's readers, the report, the list loader and `check` share it.
package lines

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// ErrTooLong is Next's error for a line longer than its limit.
var ErrTooLong = errors.New("line too long")

// Reader reads lines from a bufio.Reader of its own.
type Reader struct {
	br   *bufio.Reader
	long []byte // a line longer than the buffer, gathered by Next
}

// NewReader reads r through a buffer of size bytes.
func NewReader(r io.Reader, size int) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, size)}
}

// Size is the buffer's size: the longest line NextFit returns.
func (r *Reader) Size() int { return r.br.Size() }

// Next returns the next line with its '\n'. At the end of the stream it
// returns io.EOF with what follows the last '\n' (often nothing); any
// other error comes with what was read before it. A line longer than the
// buffer is gathered into a slice of the Reader's own; one longer than
// max bytes (0: no limit) is ErrTooLong, and reading stops inside it. The
// line is valid until the next call.
func (r *Reader) Next(max int) ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, err
	}
	r.long = append(r.long[:0], line...)
	for errors.Is(err, bufio.ErrBufferFull) && (max <= 0 || len(r.long) <= max) {
		line, err = r.br.ReadSlice('\n')
		r.long = append(r.long, line...)
	}
	if max > 0 && len(r.long) > max {
		return nil, ErrTooLong
	}
	return r.long, err
}

// NextFit is Next for a caller that wants no line longer than the
// buffer: such a line is read to its end and dropped, and NextFit reports
// tooLong with no line, and the error that ended it (nil, io.EOF or a
// read error).
func (r *Reader) NextFit() (line []byte, tooLong bool, err error) {
	line, err = r.br.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, false, err
	}
	for errors.Is(err, bufio.ErrBufferFull) {
		_, err = r.br.ReadSlice('\n')
	}
	return nil, true, err
}

// EachFit calls line for each line of r that fits a buffer of size bytes,
// numbered from 1, with its line ending ("\n", "\r\n") cut; and tooLong
// with the number of each line that does not, which it skips. It returns
// nil at the end of r, or the read error that stopped it. b is valid
// until line returns.
func EachFit(r io.Reader, size int, line func(n int, b []byte), tooLong func(n int)) error {
	lr := NewReader(r, size)
	n := 0
	for {
		b, long, err := lr.NextFit()
		switch {
		case long:
			n++
			tooLong(n)
		case len(b) > 0:
			n++
			line(n, bytes.TrimRight(b, "\r\n"))
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
