// Package testenv holds what several packages' tests need from their
// surroundings: the repository's example config (docs/example.yaml) and
// the shared/ folder beside the repository (the public lists), found by
// walking up from the package.
package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// FindUp returns the path of rel in the nearest ancestor of the working
// directory (a test's package folder) that holds it, or "" when none does.
func FindUp(tb testing.TB, rel string) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// ExampleConfig returns the path of the repository's example config
// (docs/example.yaml), the one the reference documents.
func ExampleConfig(tb testing.TB) string {
	tb.Helper()
	p := FindUp(tb, filepath.Join("docs", "example.yaml"))
	if p == "" {
		tb.Fatal("docs/example.yaml not found above the package folder")
	}
	return p
}
