package policy

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/config"
)

// statutoryConfig is the example config with a staff profile that allows
// everything (first rule) and one statutory list holding a URL entry and a
// domain entry.
func statutoryConfig(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "iwf.txt")
	if err := os.WriteFile(path, []byte("# test entries\nimages.example/albums/1234/\nhttp://whole-site.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := exampleConfig(t)
	staff := cfg.Profiles["staff"]
	staff.Rules = append([]config.Rule{{Action: "allow"}}, staff.Rules...)
	cfg.Profiles["staff"] = staff
	cfg.Statutory = []config.Statutory{{Name: "iwf", File: path, MaxAge: config.DefaultStatutoryMaxAge, Line: 90}}
	return cfg
}

// A statutory list is decided before everything, for every profile,
// whatever the rules allow; a URL entry only where the path is seen.
func TestStatutory(t *testing.T) {
	snap, err := Build(statutoryConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	engine := NewEngine(snap, 1000, nil)
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name, host, path string
		want             string // rule, "" for not statutory
	}{
		{"URL entry", "images.example", "/albums/1234/photo.jpg", "statutory:iwf"},
		{"URL entry, %2F reading", "images.example", "/albums%2F1234/photo.jpg", "statutory:iwf"},
		{"URL entry, dot segments", "images.example", "/x/../albums/1234/a.jpg", "statutory:iwf"},
		{"URL entry's host, other path", "images.example", "/albums/99/", ""},
		{"URL entry's host only (CONNECT, DNS)", "images.example", "", ""},
		{"domain entry", "whole-site.example", "", "statutory:iwf"},
		{"domain entry's subdomain", "cdn.whole-site.example", "/a", "statutory:iwf"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, who := range []Args{{User: "alice"}, {User: "bob"}, {}} { // staff, student, default
				a := who
				a.Host, a.Path, a.Time = c.host, c.path, at
				for _, d := range []Decision{snap.Decide(a), engine.Decide(a), engine.Decide(a)} { // cached twice
					got := ""
					if IsStatutory(d.Rule) {
						got = d.Rule
						if d.Verdict != Block || !d.Categories.Empty() {
							t.Errorf("%+v: %v with categories %v, want a block with none", a, d.Verdict, d.Categories)
						}
					}
					if got != c.want {
						t.Errorf("%s %s%s for %q: rule %q, want %q", c.name, c.host, c.path, a.User, d.Rule, c.want)
					}
				}
			}
		})
	}
	st := snap.StatutoryStats()
	if len(st) != 1 || st[0].Name != "iwf" || st[0].Entries != 2 || st[0].Modified.IsZero() {
		t.Errorf("StatutoryStats = %+v, want iwf with 2 entries", st)
	}
}

// A statutory list that cannot be read fails the build (and so a reload,
// which keeps the old one blocking).
func TestStatutoryMissingFile(t *testing.T) {
	cfg := statutoryConfig(t)
	cfg.Statutory[0].File = filepath.Join(t.TempDir(), "gone.txt")
	if _, err := Build(cfg); err == nil {
		t.Fatal("Build with a missing statutory list succeeded")
	}
}
