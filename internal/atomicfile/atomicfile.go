// Package atomicfile replaces a file whole: what is written goes to a
// temporary file beside it, is synced to disk, and is renamed over the
// file, so that a reader — or the next start after a crash — sees the old
// file or the new one, never part of one. The log's sidecars, indexes and
// journals, the checkpoints and the downloaded lists' state use it.
package atomicfile

import (
	"bufio"
	"io"
	"io/fs"
	"os"
)

// Write replaces path with what write produces (through a buffer). The
// temporary file is path+".tmp": callers that may write one path from
// several goroutines serialise their calls.
func Write(path string, perm fs.FileMode, write func(w io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// WriteFile replaces path with data.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
