package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/categories"
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

// A downloaded list serves from its last good copy in state_dir, with no
// network at all (a gateway that boots while the internet is down still
// filters); before its first download it blocks nothing and says so.
func TestDownloadedListFromCopy(t *testing.T) {
	state := t.TempDir()
	cfg := exampleConfig(t)
	cfg.StateDir = state
	cfg.Lists = append(cfg.Lists, config.List{Category: "gambling", URL: "http://192.0.2.1/unreachable.txt", Name: "remote", Line: 77},
		config.List{Category: "gambling", URL: "http://192.0.2.1/never.txt", Name: "never", Line: 78})
	cfg.Statutory = []config.Statutory{{Name: "iwf", URL: "http://192.0.2.1/iwf.txt", MaxAge: config.DefaultStatutoryMaxAge, Line: 79}}
	if err := os.MkdirAll(filepath.Join(state, "lists"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.Lists[len(cfg.Lists)-2].CopyPath(state), []byte("copied-casino.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.Statutory[0].CopyPath(state), []byte("copied-iwf.example/a/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	snap, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	if d := snap.Decide(Args{Host: "copied-casino.example", Time: at}); !d.Categories.Has(categories.Gambling) {
		t.Errorf("the copy's entry: %+v, want gambling", d)
	}
	if d := snap.Decide(Args{Host: "copied-iwf.example", Path: "/a/b.jpg", Time: at}); d.Rule != "statutory:iwf" {
		t.Errorf("the statutory copy's entry: %+v", d)
	}
	pending := 0
	for _, st := range snap.ListStats {
		if st.Pending {
			pending++
		}
	}
	if pending != 1 || !strings.Contains(strings.Join(snap.Warnings, "\n"), "has not been downloaded yet") {
		t.Errorf("pending lists %d, warnings %q: want the never-downloaded list named", pending, snap.Warnings)
	}
}
