package categories

import (
	"bytes"
	"embed"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// data holds the project's curated database: data/<category>.txt, one
// entry a line (domain, or domain/path-prefix for a URL entry), '#'
// comments, blank lines ignored. The file name is the stable category name.
//
//go:embed data
var data embed.FS

// EmbeddedFile is what loading one embedded data file gave.
type EmbeddedFile struct {
	Name     string   // file name, e.g. "gambling.txt"
	Category Category // the category named by the file; valid when Known
	Known    bool     // the file name is a stable category name
	Stats    Stats
}

// AddEmbedded adds the project's curated embedded database.
//
// It never panics: a data file named after no category is ignored and a
// junk line is skipped; the package's tests fail on either, so that cannot
// ship.
func (b *Builder) AddEmbedded() { b.addEmbedded(data) }

// AddEmbeddedStats is AddEmbedded, returning what each file gave.
func (b *Builder) AddEmbeddedStats() []EmbeddedFile { return b.addEmbedded(data) }

func (b *Builder) addEmbedded(fsys fs.FS) []EmbeddedFile {
	names, err := fs.Glob(fsys, "data/*.txt")
	if err != nil {
		return nil
	}
	sort.Strings(names)
	out := make([]EmbeddedFile, 0, len(names))
	for _, p := range names {
		base := path.Base(p)
		ef := EmbeddedFile{Name: base}
		ef.Category, ef.Known = Parse(strings.TrimSuffix(base, ".txt"))
		if ef.Category.Pseudo() {
			ef.Known = false
		}
		raw, err := fs.ReadFile(fsys, p)
		if err != nil || !ef.Known {
			out = append(out, ef)
			continue
		}
		_ = readLines(bytes.NewReader(raw), func(lineNo int, line string) {
			b.addLine(line, fmtEmbedded, ef.Category, &ef.Stats, "data/"+base, lineNo)
		}, func(lineNo int) {
			ef.Stats.skip("data/"+base, lineNo, "(line too long)")
		})
		out = append(out, ef)
	}
	return out
}
