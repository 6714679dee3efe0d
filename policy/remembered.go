package policy

import (
	"time"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/categories/classify"
	"github.com/schoolgate/schoolgate/config"
)

// RememberedPages is what the content classifier learned about pages and
// hosts no list names (categories/classify.Memory). The engine asks it
// only about hosts the database leaves unclassified: a list entry always
// wins.
type RememberedPages interface {
	// Has reports whether anything is remembered about host at t (the
	// cheap question asked on every decision).
	Has(host string, t time.Time) bool
	// Classified returns what is remembered for a request of path on host
	// ("" for a host-only decision) with clear evidence for the profile's
	// content threshold (0: the classifier's default): the page's own
	// memory, or the host's (Recall.Host).
	Classified(host, path string, threshold float64, t time.Time) (classify.Recall, bool)
}

// SetRemembered makes Decide consult c for hosts the database leaves
// unclassified; nil stops it. The proxy sets it; the DNS filter, sharing
// the engine, then blocks what the proxy classified without rescoring.
func (e *Engine) SetRemembered(c RememberedPages) {
	if c == nil {
		e.classified.Store(nil)
		return
	}
	e.classified.Store(&c)
}

// DecideAs decides a as if a.Host had the categories cats (what the
// content classifier found): the same system checks and rules as Decide,
// and a rule naming the host in `domains` still matches.
func (s *Snapshot) DecideAs(a Args, cats categories.Set) Decision {
	ip := canonIP(a.IP)
	pi := s.profileIndex(a.User, a.Profile, ip)
	if d, ok := s.systemDecision(pi, ip, a.Host); ok {
		return d
	}
	return s.decideCats(pi, s.openMask(a.Time), a.Host, cats, a.Seen)
}

// ContentThreshold returns the content_threshold of the profile that
// applies to a's user (and the profile their identity source named) or
// address (0: the classifier's default).
func (s *Snapshot) ContentThreshold(a Args) float64 {
	return s.Config.Profiles[s.ProfileOf(a)].ContentThreshold
}

// decideRemembered decides a request for a host the classifier
// remembers, outside the verdict cache: such hosts are few, and a
// remembered host expires on its own clock, not the snapshot's.
//
// A block from the host's memory (not the page the person asked for, or
// a DNS query) gets the rule classify.MemoryRulePrefix+note, so that the
// log, the report and the alerts say it was the classifier's memory and
// do not make it the person's incident; a block from the page's own
// memory is the person's request, as when the page was scored
// ("classifier:" + note, the proxy's rule for a page blocked as served).
func (e *Engine) decideRemembered(s *Snapshot, a Args) (Decision, bool) {
	p := e.classified.Load()
	if p == nil || a.Host == "" || !(*p).Has(a.Host, a.Time) {
		return Decision{}, false
	}
	if !s.DB.Lookup(a.Host, a.Path).Empty() {
		return Decision{}, false // listed since: the list decides
	}
	r, ok := (*p).Classified(a.Host, a.Path, s.ContentThreshold(a), a.Time)
	if !ok || r.Categories.Empty() {
		return Decision{}, false
	}
	d := s.DecideAs(a, r.Categories)
	d.Classified = r.Note
	if d.Verdict == Block && d.Rule != RuleNotAClient && d.Rule != RuleDenyDestinations {
		by := "classifier:"
		what := "a page of this site"
		if r.Host {
			by = classify.MemoryRulePrefix
			what = "this site (from several pages and visitors)"
		}
		d.Reason = "the content classifier remembers " + what + " as " + r.Categories.String() + " (" + r.Note + "); " + d.Reason + " (rule " + d.Rule + ")"
		d.Rule = by + r.Note
	}
	return d, true
}

// buildClassifier builds the content classifier for cfg: the embedded
// phrase lists plus content.phrase_files. Each bad line of a phrase file
// is a problem at that file and line; a file that cannot be read is a
// problem at its line in the config.
func buildClassifier(cfg *config.Config) (*classify.Classifier, config.Problems) {
	files := cfg.Content.PhraseFiles
	if len(files) == 0 {
		return classify.Default(), nil
	}
	var probs config.Problems
	for i, f := range files {
		line := 0
		if i < len(cfg.Content.PhraseLines) {
			line = cfg.Content.PhraseLines[i]
		}
		probs = append(probs, config.CheckPhraseFile(f, line, configName(cfg))...)
	}
	if len(probs) > 0 {
		return nil, probs
	}
	cl, err := classify.New(files...)
	if err != nil { // checked above; a file changed in between
		return nil, config.Problems{{File: configName(cfg), Msg: "content.phrase_files: " + err.Error()}}
	}
	return cl, nil
}
