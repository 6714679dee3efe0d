package policy

import (
	"errors"
	"io/fs"
	"os"
	"strings"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/config"
)

// RuleStatutoryPrefix starts the rule of a decision made by a statutory
// list: "statutory:iwf".
const RuleStatutoryPrefix = "statutory:"

// IsStatutory reports whether rule is a statutory list's.
func IsStatutory(rule string) bool { return strings.HasPrefix(rule, RuleStatutoryPrefix) }

// statutoryList is one loaded list of the `statutory:` section.
type statutoryList struct {
	name   string
	rule   string
	reason string
	db     *categories.DB
	stat   StatutoryStat
}

// StatutoryStat says what a statutory list holds and how old it is; it
// never says what is on it.
type StatutoryStat = config.StatutoryCopy

// buildStatutory loads every statutory list of cfg.
func buildStatutory(cfg *config.Config) ([]statutoryList, []string, config.Problems) {
	var (
		out      []statutoryList
		warnings []string
		probs    config.Problems
	)
	for _, l := range cfg.Statutory {
		if l.URL != "" {
			if _, err := os.Stat(l.CopyPath(cfg.StateDir)); errors.Is(err, fs.ErrNotExist) {
				// Never downloaded yet: the refresher fetches it.
				warnings = append(warnings, "statutory list "+l.Name+" has not been downloaded yet: it blocks nothing until the first download")
				continue
			}
		}
		db, st, err := l.Load(cfg.StateDir)
		if err != nil {
			probs = append(probs, config.Problem{File: configName(cfg), Line: l.Line, Msg: err.Error()})
			continue
		}
		out = append(out, statutoryList{
			name: l.Name, rule: RuleStatutoryPrefix + l.Name,
			reason: "this page is on the statutory list " + l.Name, db: db, stat: st,
		})
	}
	return out, warnings, probs
}

// statutoryDecision blocks what a statutory list names, before anything
// else is considered. path is "" when only the host is known (CONNECT, an
// SNI, DNS): then only the lists' domain entries can match. Every reading
// of the path an origin may serve is tried, as for any URL entry.
func (s *Snapshot) statutoryDecision(pi int, host, path string) (Decision, bool) {
	if len(s.statutory) == 0 || host == "" {
		return Decision{}, false
	}
	reading, changed := "", false
	if path != "" {
		reading, changed = categories.OriginPath(path)
	}
	for i := range s.statutory {
		l := &s.statutory[i]
		if l.db.Lookup(host, path).Empty() && (!changed || l.db.Lookup(host, reading).Empty()) {
			continue
		}
		return Decision{Profile: s.profiles[pi].name, Verdict: Block, Rule: l.rule, Reason: l.reason}, true
	}
	return Decision{}, false
}

// StatutoryStats describes the statutory lists in force, in config order.
func (s *Snapshot) StatutoryStats() []StatutoryStat {
	out := make([]StatutoryStat, len(s.statutory))
	for i := range s.statutory {
		out[i] = s.statutory[i].stat
	}
	return out
}
