package categories

import (
	"testing"
	"testing/fstest"
)

// TestEmbeddedData checks the curated database that ships in the binary:
// every file is named after a category and parses completely, and every
// category has a file with entries.
func TestEmbeddedData(t *testing.T) {
	b := NewBuilder()
	files := b.AddEmbeddedStats()
	have := make(map[Category]int)
	for _, f := range files {
		if !f.Known {
			t.Errorf("data/%s: not named after a category (want one of %v)", f.Name, SetOf(All()[:Unclassified]...))
			continue
		}
		if f.Stats.Skipped > 0 {
			t.Errorf("data/%s: %d lines are not valid entries: %q", f.Name, f.Stats.Skipped, f.Stats.SkippedExamples)
		}
		have[f.Category] += f.Stats.Added
	}
	for _, c := range All() {
		if c.Pseudo() {
			continue
		}
		if have[c] == 0 {
			t.Errorf("category %s: no entries in data/%s.txt", c, c)
		}
	}
	db := b.Build()
	if db.Len() == 0 {
		t.Fatal("embedded database is empty")
	}
	t.Logf("embedded database: %d files, %d entries (%d URL entries)", len(files), db.Len(), db.URLEntries())
}

// TestAddEmbeddedBadData feeds addEmbedded a broken data set: it must not
// panic, must load what is valid and must report what is not.
func TestAddEmbeddedBadData(t *testing.T) {
	fsys := fstest.MapFS{
		"data/gambling.txt":     {Data: []byte("# comment\nbet365.com  # inline\n\nnot a domain\n1.2.3.4\nbbc.co.uk/sport\n")},
		"data/gamblng.txt":      {Data: []byte("typo.example.com\n")},
		"data/unclassified.txt": {Data: []byte("x.example.com\n")},
		"data/README.md":        {Data: []byte("not loaded\n")},
	}
	b := NewBuilder()
	files := b.addEmbedded(fsys)
	if len(files) != 3 {
		t.Fatalf("%d files, want 3", len(files))
	}
	byName := make(map[string]EmbeddedFile)
	for _, f := range files {
		byName[f.Name] = f
	}
	g := byName["gambling.txt"]
	if !g.Known || g.Category != Gambling || g.Stats.Added != 2 || g.Stats.Skipped != 2 {
		t.Fatalf("gambling.txt: %+v", g)
	}
	if byName["gamblng.txt"].Known || byName["unclassified.txt"].Known {
		t.Fatal("file not named after a category was taken as one")
	}
	db := b.Build()
	if db.Lookup("www.bet365.com", "") != SetOf(Gambling) || db.Lookup("bbc.co.uk", "/sport/x") != SetOf(Gambling) {
		t.Fatal("valid lines not loaded")
	}
	if !db.Lookup("typo.example.com", "").Empty() {
		t.Fatal("file with an unknown name loaded")
	}
}
