package policy

import (
	"net/netip"
	"time"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/categories/classify"
	"github.com/schoolgate/schoolgate/config"
)

// ClassifiedHosts is what the content classifier learned about hosts no
// list names (categories/classify.Memory). The engine asks it only about
// hosts the database leaves unclassified: a list entry always wins.
type ClassifiedHosts interface {
	// Has reports whether host is remembered at t (the cheap question
	// asked on every decision).
	Has(host string, t time.Time) bool
	// Classified returns the categories host scored at or above the
	// profile's content threshold (0: the classifier's default) and a
	// note for the log and `check` ("gambling=0.83").
	Classified(host string, threshold float64, t time.Time) (cats categories.Set, note string, ok bool)
}

// SetClassified makes Decide consult c for hosts the database leaves
// unclassified; nil stops it. The proxy sets it; the DNS filter, sharing
// the engine, then blocks what the proxy classified without rescoring.
func (e *Engine) SetClassified(c ClassifiedHosts) {
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
	pi := s.profileIndex(a.User, ip)
	if d, ok := s.systemDecision(pi, ip, a.Host); ok {
		return d
	}
	return s.decideCats(pi, s.openMask(a.Time), a.Host, cats, a.Seen)
}

// ContentThreshold returns the content_threshold of the profile that
// applies to a user or address (0: the classifier's default).
func (s *Snapshot) ContentThreshold(user string, ip netip.Addr) float64 {
	return s.Config.Profiles[s.profiles[s.profileIndex(user, canonIP(ip))].name].ContentThreshold
}

// decideClassified decides a request for a host the classifier
// remembers, outside the verdict cache: such hosts are few, and a
// remembered host expires on its own clock, not the snapshot's.
func (e *Engine) decideClassified(s *Snapshot, a Args) (Decision, bool) {
	p := e.classified.Load()
	if p == nil || a.Host == "" || !(*p).Has(a.Host, a.Time) {
		return Decision{}, false
	}
	if !s.DB.Lookup(a.Host, a.Path).Empty() {
		return Decision{}, false // listed since: the list decides
	}
	cats, note, ok := (*p).Classified(a.Host, s.ContentThreshold(a.User, a.IP), a.Time)
	if !ok {
		return Decision{}, false
	}
	d := s.DecideAs(a, cats)
	d.Classified = note
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
