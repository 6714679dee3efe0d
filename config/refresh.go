package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Refresh is how often lists downloaded from a URL are refreshed
// (`lists_refresh`): every Every, with random jitter, and only inside the
// window From–To when one is given (so that a school can keep downloads out
// of the school day; a window whose To is at or before its From closes the
// next day).
type Refresh struct {
	Every     time.Duration
	From, To  Clock
	HasWindow bool
	Line      int
}

// Defaults of list refresh.
const (
	DefaultListsRefresh     = 24 * time.Hour
	DefaultStatutoryRefresh = 30 * time.Minute
)

// listNameRE is what a list's name (its file in state_dir/lists and its
// metrics label) may be.
var listNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Downloaded reports whether the list comes from the internet (url or
// ut1_url) and is kept in state_dir.
func (l *List) Downloaded() bool { return l.URL != "" || l.UT1URL != "" }

// CopyPath is where the last good copy of a downloaded list lives: a file
// for url, a folder (the unpacked UT1 tree) for ut1_url.
func (l *List) CopyPath(stateDir string) string {
	if l.UT1URL != "" {
		return filepath.Join(stateDir, "lists", l.Name+".ut1")
	}
	return filepath.Join(stateDir, "lists", l.Name+".list")
}

// CopyPath is where the last good copy of a statutory list downloaded from
// its url lives; File when it is not downloaded.
func (l *Statutory) CopyPath(stateDir string) string {
	if l.URL == "" {
		return l.File
	}
	return filepath.Join(stateDir, "lists", "statutory-"+l.Name+".list")
}

// refresh decodes `lists_refresh`: a duration, or {every, from, to}.
func (d *decoder) refresh(k, v *yaml.Node) {
	r := &d.cfg.ListsRefresh
	r.Line = k.Line
	if deref(v).Kind == yaml.ScalarNode {
		if dur, ok := d.duration(v, "lists_refresh", time.Second); ok {
			r.Every = dur
		}
		return
	}
	var hasFrom, hasTo bool
	d.mapping(v, "lists_refresh", []field{
		{"every", func(_, v *yaml.Node) {
			if dur, ok := d.duration(v, "lists_refresh.every", time.Second); ok {
				r.Every = dur
			}
		}},
		{"from", func(_, v *yaml.Node) { hasFrom = true; d.clock(v, "lists_refresh.from", false, &r.From) }},
		{"to", func(_, v *yaml.Node) { hasTo = true; d.clock(v, "lists_refresh.to", true, &r.To) }},
	})
	if hasFrom != hasTo {
		d.addf(k.Line, "lists_refresh needs both from and to for a window (or neither)")
	}
	r.HasWindow = hasFrom && hasTo
}

// duration decodes a Go duration of at least min.
func (d *decoder) duration(v *yaml.Node, where string, min time.Duration) (time.Duration, bool) {
	s, ok := d.str(v, where)
	if !ok {
		return 0, false
	}
	dur, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || dur < min {
		d.addf(deref(v).Line, "%s %q: want a duration of at least %s (30m, 24h)", where, s, min)
		return 0, false
	}
	return dur, true
}

// downloadURL decodes a list's http(s) URL.
func (d *decoder) downloadURL(v *yaml.Node, where string) string {
	s, ok := d.str(v, where)
	if !ok {
		return ""
	}
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		d.addf(deref(v).Line, "%s %q is not an http or https URL", where, s)
		return ""
	}
	return s
}

// nameLists gives each downloaded list without a name one derived from its
// category and the URL's host, and refuses two lists of one name.
func (d *decoder) nameLists() {
	seen := map[string]int{}
	for i := range d.cfg.Lists {
		l := &d.cfg.Lists[i]
		if !l.Downloaded() {
			continue
		}
		if l.Name == "" {
			raw := l.URL
			kind := l.Category
			if raw == "" {
				raw, kind = l.UT1URL, "ut1"
			}
			host := "list"
			if u, err := url.Parse(raw); err == nil && u.Hostname() != "" {
				host = strings.ToLower(u.Hostname())
			}
			base := kind + "-" + host
			l.Name = base
			for n := 2; seen[l.Name] != 0; n++ {
				l.Name = fmt.Sprintf("%s-%d", base, n)
			}
		} else if first, dup := seen[l.Name]; dup {
			d.addf(l.Line, "list name %q is already used at line %d", l.Name, first)
			continue
		}
		seen[l.Name] = l.Line
	}
}
