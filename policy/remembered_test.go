package policy

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/categories/classify"
	"github.com/schoolgate/schoolgate/config"
)

// fakeClassified remembers hosts with one score each.
type fakeClassified map[string]struct {
	cat   categories.Category
	score float64
}

func (f fakeClassified) Has(host string, _ time.Time) bool { _, ok := f[host]; return ok }

// Classified recalls hosts as a whole, and a page of a host as its own
// when the host is named "page.*".
func (f fakeClassified) Classified(host, path string, threshold float64, _ time.Time) (classify.Recall, bool) {
	r, ok := f[host]
	if threshold <= 0 {
		threshold = 0.6
	}
	if !ok || r.score < threshold {
		return classify.Recall{}, false
	}
	if strings.HasPrefix(host, "page.") {
		if path != "/remembered" {
			return classify.Recall{}, false
		}
		return classify.Recall{Categories: categories.SetOf(r.cat), Note: r.cat.String() + "=x"}, true
	}
	return classify.Recall{Categories: categories.SetOf(r.cat), Note: "pages:" + r.cat.String() + "=x", Host: true}, true
}

func classifiedSnapshot(t *testing.T) *Snapshot {
	t.Helper()
	cfg, err := config.Parse([]byte(`timezone: UTC
listen: {proxy: "", dns: "", admin: ""}
clients: [10.0.0.0/8]
networks:
  10.1.0.0/16: strict
default_profile: pupil
lists:
  - category: education
    domains: [listed.example]
profiles:
  pupil:
    rules:
      - action: allow
        categories: [education]
      - action: block
        categories: [gambling]
    default: allow
  strict:
    content_threshold: 0.3
    rules:
      - action: block
        categories: [gambling]
    default: allow
`), "test.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEngineClassified(t *testing.T) {
	s := classifiedSnapshot(t)
	for _, size := range []int{0, 100} {
		e := NewEngine(s, size, nil)
		now := time.Now()
		pupil := netip.MustParseAddr("10.2.0.1")
		strict := netip.MustParseAddr("10.1.0.1")
		if d := e.Decide(Args{IP: pupil, Host: "luckyspins.example", Time: now}); d.Verdict != Allow || d.Classified != "" {
			t.Fatalf("before: %+v", d)
		}
		e.SetRemembered(fakeClassified{
			"luckyspins.example": {categories.Gambling, 0.8},
			"maybe.example":      {categories.Gambling, 0.4},
			"page.example":       {categories.Gambling, 0.9},
			"listed.example":     {categories.Gambling, 0.99},
		})

		// the host's memory: the rule says the classifier remembered it
		d := e.Decide(Args{IP: pupil, Host: "luckyspins.example", Time: now})
		if d.Verdict != Block || d.Rule != "classifier-memory:pages:gambling=x" || d.Classified != "pages:gambling=x" ||
			d.Categories != categories.SetOf(categories.Gambling) || !strings.Contains(d.Reason, "rule pupil#2") {
			t.Fatalf("classified host: %+v", d)
		}
		// a remembered page: the person asked for that very page
		if d := e.Decide(Args{IP: pupil, Host: "page.example", Path: "/remembered", Time: now}); d.Verdict != Block || d.Rule != "classifier:gambling=x" {
			t.Fatalf("remembered page: %+v", d)
		}
		if d := e.Decide(Args{IP: pupil, Host: "page.example", Path: "/other", Time: now}); d.Verdict != Allow || d.Classified != "" {
			t.Fatalf("another page of a remembered page's host: %+v", d)
		}
		if d := e.Decide(Args{IP: pupil, Host: "page.example", Time: now}); d.Verdict != Allow {
			t.Fatalf("a remembered page's host, asked without a path: %+v", d)
		}
		// per-profile threshold: 0.4 is over strict's 0.3, under pupil's default
		if d := e.Decide(Args{IP: pupil, Host: "maybe.example", Time: now}); d.Verdict != Allow {
			t.Fatalf("pupil, score under threshold: %+v", d)
		}
		if d := e.Decide(Args{IP: strict, Host: "maybe.example", Time: now}); d.Verdict != Block {
			t.Fatalf("strict, score over its threshold: %+v", d)
		}
		// a list entry wins
		if d := e.Decide(Args{IP: pupil, Host: "listed.example", Time: now}); d.Verdict != Allow || d.Classified != "" || !d.Categories.Has(categories.Education) {
			t.Fatalf("listed host: %+v", d)
		}
		// system checks still first
		if d := e.Decide(Args{IP: netip.MustParseAddr("192.0.2.1"), Host: "luckyspins.example", Time: now}); d.Rule != RuleNotAClient {
			t.Fatalf("non-client: %+v", d)
		}
		e.SetRemembered(nil)
		if d := e.Decide(Args{IP: pupil, Host: "luckyspins.example", Time: now}); d.Verdict != Allow {
			t.Fatalf("after SetRemembered(nil): %+v", d)
		}
	}
}

func TestDecideAs(t *testing.T) {
	s := classifiedSnapshot(t)
	a := Args{IP: netip.MustParseAddr("10.2.0.1"), Host: "page.example", Time: time.Now()}
	if d := s.DecideAs(a, categories.SetOf(categories.Gambling)); d.Verdict != Block || !strings.Contains(d.Reason, "gambling") {
		t.Fatalf("%+v", d)
	}
	if d := s.DecideAs(a, 0); d.Verdict != Allow || d.Rule != "pupil#default" {
		t.Fatalf("no categories: %+v", d)
	}
	if got := s.ContentThreshold(Args{IP: netip.MustParseAddr("10.1.2.3")}); got != 0.3 {
		t.Fatalf("ContentThreshold = %v", got)
	}
}

func TestBuildPhraseFiles(t *testing.T) {
	dir := t.TempDir()
	writeTestFile := func(name, text string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	writeTestFile("games.txt", "# ours\n4 zorblax arena\n")
	writeTestFile("bad.txt", "category: games\n3 fine\nx broken\n")
	base := "timezone: UTC\ndefault_profile: p\nprofiles:\n  p: {}\ncontent:\n  phrase_files:\n"
	parse := func(files string) *config.Config {
		path := writeTestFile("schoolgate.yaml", base+files)
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	s, err := Build(parse("    - games.txt\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Classifier.Score([]byte("zorblax arena")); r.Score(categories.Games) == 0 {
		t.Fatal("the config's phrase file is not used")
	}
	_, err = Build(parse("    - games.txt\n    - bad.txt\n    - missing.txt\n"))
	msg := fmt.Sprint(err)
	if !strings.Contains(msg, dir+"/bad.txt:3:") || !strings.Contains(msg, "schoolgate.yaml:9: content.phrase_files:") {
		t.Fatalf("err = %v", err)
	}
	if s, err := Build(parse("    []\n")); err != nil || s.Classifier == nil {
		t.Fatalf("no files: %v", err)
	}
}
