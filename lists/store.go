package lists

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/schoolgate/schoolgate/internal/atomicfile"
)

// Meta is what is kept beside a list's copy (PATH.meta.json): how to ask
// for it conditionally next time, when it last succeeded, and why the last
// try failed.
type Meta struct {
	URL          string    `json:"url"`
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	Success      time.Time `json:"success,omitzero"` // last download accepted or answered 304
	Changed      time.Time `json:"changed,omitzero"` // when the copy last changed
	Entries      int       `json:"entries"`
	LastError    string    `json:"last_error,omitempty"`
	LastErrorAt  time.Time `json:"last_error_at,omitzero"`
	Reason       string    `json:"reason,omitempty"` // of the last error
}

func metaPath(copyPath string) string { return copyPath + ".meta.json" }

// ReadMeta returns the meta kept beside the copy at path (zero when there
// is none or it cannot be read: the next download is then unconditional).
func ReadMeta(path string) Meta {
	var m Meta
	b, err := os.ReadFile(metaPath(path))
	if err == nil {
		_ = json.Unmarshal(b, &m) // a damaged meta only costs a full download
	}
	return m
}

// writeMeta replaces the meta beside path atomically.
func writeMeta(path string, m Meta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(metaPath(path), append(b, '\n'))
}

func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o640)
}

// hasCopy reports whether a last good copy exists at path.
func hasCopy(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
