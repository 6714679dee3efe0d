package config

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/schoolgate/schoolgate/categories"
)

// Statutory is one list of the `statutory:` section: a list the law or the
// DfE standard requires (the IWF's child sexual abuse URLs, CTIRU's
// unlawful terrorist content). It is decided before everything else, for
// every profile, user, schedule and allow rule, on every path; no setting
// turns it off.
type Statutory struct {
	Name string `yaml:"name"` // iwf, ctiru, …: the log's rule is statutory:NAME
	// File holds URL entries (host/path, as the IWF distributes them) or
	// whole domains, one a line; # comments.
	File string `yaml:"file"`
	// URL is where the list is downloaded from instead (kept current every
	// Refresh, default 30m, its last good copy in state_dir/lists).
	URL     string        `yaml:"url"`
	Refresh time.Duration `yaml:"refresh"`
	// MaxAge is how old the last good copy may be before the program log,
	// a metric and the alert sinks say so (default 24h); blocking goes on
	// with the old copy.
	MaxAge time.Duration `yaml:"max_age"`
	Line   int           `yaml:"-"`
}

// DefaultStatutoryMaxAge is a statutory list's max_age when none is given.
const DefaultStatutoryMaxAge = 24 * time.Hour

var statutoryNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// statutory decodes the `statutory:` section.
func (d *decoder) statutory(n *yaml.Node) {
	nodes, _ := d.list(n, "statutory")
	seen := map[string]int{}
	for i, v := range nodes {
		where := fmt.Sprintf("statutory[%d]", i+1)
		s := Statutory{Line: v.Line, MaxAge: DefaultStatutoryMaxAge, Refresh: DefaultStatutoryRefresh}
		d.mapping(v, where, []field{
			{"name", func(_, v *yaml.Node) {
				name, ok := d.str(v, where+".name")
				if !ok {
					return
				}
				name = strings.TrimSpace(name)
				if !statutoryNameRE.MatchString(name) {
					d.addf(deref(v).Line, "%s.name %q: use lower-case letters, digits and - (iwf, ctiru)", where, name)
					return
				}
				if first, dup := seen[name]; dup {
					d.addf(deref(v).Line, "statutory list %q is already named at line %d", name, first)
					return
				}
				seen[name] = deref(v).Line
				s.Name = name
			}},
			{"file", func(_, v *yaml.Node) {
				if f, ok := d.str(v, where+".file"); ok {
					s.File = strings.TrimSpace(f)
					if s.File == "" {
						d.addf(deref(v).Line, "%s.file is empty", where)
					}
				}
			}},
			{"url", func(_, v *yaml.Node) { s.URL = d.downloadURL(v, where+".url") }},
			{"refresh", func(_, v *yaml.Node) {
				if dur, ok := d.duration(v, where+".refresh", time.Second); ok {
					s.Refresh = dur
				}
			}},
			{"max_age", func(_, v *yaml.Node) {
				str, ok := d.str(v, where+".max_age")
				if !ok {
					return
				}
				age, err := time.ParseDuration(strings.TrimSpace(str))
				if err != nil || age < time.Minute {
					d.addf(deref(v).Line, "%s.max_age %q: want a duration of at least 1m (24h, 90m)", where, str)
					return
				}
				s.MaxAge = age
			}},
		})
		if v.Kind != yaml.MappingNode {
			continue
		}
		if s.Name == "" && !hasKey(v, "name") {
			d.addf(s.Line, "%s has no name (iwf, ctiru, …)", where)
		}
		switch {
		case s.File == "" && s.URL == "" && !hasKey(v, "file") && !hasKey(v, "url"):
			d.addf(s.Line, "%s has no file or url", where)
		case hasKey(v, "file") && hasKey(v, "url"):
			d.addf(s.Line, "%s has both file and url: give one", where)
		}
		d.cfg.Statutory = append(d.cfg.Statutory, s)
	}
}

// hasKey reports whether the mapping n has the key name.
func hasKey(n *yaml.Node, name string) bool {
	n = deref(n)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == name {
			return true
		}
	}
	return false
}

// StatutoryCopy says what the copy of a statutory list in use holds and
// how old it is; it never says what is on it.
type StatutoryCopy struct {
	Name    string
	File    string
	Entries int
	Skipped int
	// Modified is when the copy in use was written (the file's time).
	Modified time.Time
	MaxAge   time.Duration
}

// Load reads the list: URL entries (host/path, as the IWF distributes
// them; a pasted http(s):// is dropped) or whole domains, one a line. The
// entries go into a database of their own, so that nothing else can
// outweigh them. The policy serves from it; config check uses it to refuse
// a config that tries to allow what is on it.
func (l *Statutory) Load(stateDir string) (*categories.DB, StatutoryCopy, error) {
	path := l.CopyPath(stateDir)
	st := StatutoryCopy{Name: l.Name, File: path, MaxAge: l.MaxAge}
	f, err := os.Open(path)
	if err != nil {
		return nil, st, fmt.Errorf("loading statutory list %s: %w", l.Name, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil {
		st.Modified = fi.ModTime()
	}
	b := categories.NewBuilder()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		for _, scheme := range []string{"https://", "http://"} {
			if len(line) > len(scheme) && strings.EqualFold(line[:len(scheme)], scheme) {
				line = line[len(scheme):]
			}
		}
		// The category is only a mark: a lookup that finds anything is on
		// the list, and a decision by it carries no category.
		if b.Add(line, categories.Adult) {
			st.Entries++
		} else {
			st.Skipped++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, st, fmt.Errorf("loading statutory list %s: %w", l.Name, err)
	}
	if st.Entries == 0 {
		// A truncated or emptied copy must never stop what the last one
		// blocked: a reload with it is refused, the old copy keeps serving.
		return nil, st, fmt.Errorf("loading statutory list %s: %s holds no entries", l.Name, path)
	}
	return b.Build(), st, nil
}

// checkStatutory refuses what tries to allow or step round a statutory
// list: an allow rule's domain, an inline list entry or an intercept
// domain that a statutory list names (the host itself or a domain above
// it; a URL entry under a host does not condemn the whole host).
func checkStatutory(cfg *Config, addf func(line int, format string, args ...any)) {
	lists := loadStatutory(cfg, addf)
	if len(lists) == 0 {
		return
	}
	refuse := func(line int, what, entry string) {
		if name, ok := lists.on(entry); ok {
			addf(line, "cannot %s %s: it is on the statutory list %s", what, entry, name)
		}
	}
	for _, p := range profileNames(cfg) {
		for _, r := range cfg.Profiles[p].Rules {
			if r.Action != "allow" {
				continue
			}
			for _, d := range r.Domains {
				refuse(r.Line, "allow", d)
			}
		}
	}
	allowed := allowedCategories(cfg)
	for _, l := range cfg.Lists {
		if l.Category == "" || (!allowed[l.Category] && !allowed["*"]) {
			continue
		}
		for _, e := range append(append([]string(nil), l.Domains...), l.URLs...) {
			refuse(l.Line, "allow", e)
		}
	}
	if ic := cfg.Proxy.Intercept; ic != nil {
		for _, d := range ic.Domains {
			refuse(ic.DomainsLine, "intercept", d)
		}
	}
}

// statutoryLists is the statutory lists of a config, loaded.
type statutoryLists []loadedStatutory

type loadedStatutory struct {
	name string
	db   *categories.DB
}

// loadStatutory loads the config's statutory lists, adding a problem for
// each that does not load.
func loadStatutory(cfg *Config, addf func(line int, format string, args ...any)) statutoryLists {
	var lists statutoryLists
	for i := range cfg.Statutory {
		l := &cfg.Statutory[i]
		db, _, err := l.Load(cfg.StateDir)
		if err != nil {
			addf(l.Line, "%v", err)
			continue
		}
		lists = append(lists, loadedStatutory{l.Name, db})
	}
	return lists
}

// on says which list names entry (a host, or host/path), if any.
func (ls statutoryLists) on(entry string) (string, bool) {
	host, path, _ := strings.Cut(entry, "/")
	if path != "" {
		path = "/" + path
	}
	h, ok := categories.NormalizeHost(host)
	if !ok {
		return "", false
	}
	for _, l := range ls {
		if !l.db.Lookup(h, path).Empty() {
			return l.name, true
		}
	}
	return "", false
}

// allowedCategories is the categories an allow rule of some profile
// names ("*" when one names nothing, so matches everything). An inline
// list in one of them is an allow list; a list only blocked is left
// alone: refusing it would tell whoever wrote it what the statutory list
// holds.
func allowedCategories(cfg *Config) map[string]bool {
	allowed := map[string]bool{}
	for _, p := range cfg.Profiles {
		for _, r := range p.Rules {
			if r.Action != "allow" {
				continue
			}
			if len(r.Categories) == 0 && len(r.Domains) == 0 {
				allowed["*"] = true
			}
			for _, c := range r.Categories {
				allowed[c] = true
			}
		}
	}
	return allowed
}
