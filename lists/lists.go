package lists

import (
	"time"

	"github.com/schoolgate/schoolgate/config"
)

// Source is one downloaded list.
type Source struct {
	Name   string // the list's name: its metrics label, its copy's file name
	URL    string // the list, or the UT1 archive
	MD5URL string // UT1: where the archive's MD5 is published ("" = not checked)
	UT1    bool
	Format string // a plain list's format ("" detects it)
	// Every is how often it is refreshed; Window says when (config's
	// lists_refresh; statutory lists refresh every 30m by default, at any
	// time of day).
	Every       time.Duration
	Window      *config.Refresh
	AllowShrink bool
	Statutory   bool
	Path        string // the last good copy: a file, or a folder for UT1
}

// Sources returns the downloaded lists of cfg, statutory ones first.
func Sources(cfg *config.Config) []Source {
	var out []Source
	for _, l := range cfg.Statutory {
		if l.URL == "" {
			continue
		}
		out = append(out, Source{Name: "statutory-" + l.Name, URL: l.URL, Every: l.Refresh,
			Statutory: true, Path: l.CopyPath(cfg.StateDir)})
	}
	var window *config.Refresh
	if cfg.ListsRefresh.HasWindow {
		w := cfg.ListsRefresh
		window = &w
	}
	for _, l := range cfg.Lists {
		if !l.Downloaded() {
			continue
		}
		s := Source{Name: l.Name, URL: l.URL, Format: l.Format, Every: cfg.ListsRefresh.Every, Window: window,
			AllowShrink: l.AllowShrink, Path: l.CopyPath(cfg.StateDir)}
		if l.Refresh > 0 {
			s.Every = l.Refresh
		}
		if l.UT1URL != "" {
			s.URL, s.MD5URL, s.UT1 = l.UT1URL, l.UT1MD5URL, true
		}
		out = append(out, s)
	}
	return out
}
