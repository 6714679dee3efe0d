package classify

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/categories/classify/evalgen/spec"
)

// The evaluation set has two parts, rendered from page specs in
// testdata/eval/PART by go run ./categories/classify/evalgen:
// testdata/train (with the older pages of testdata/pages) is what the
// scoring is tuned and trained on; testdata/heldout never is: it is only
// measured, here.

type labelled struct {
	file  string // path
	label string // category name or "allow"
	lang  string
}

func loadPart(t testing.TB, dir string) []labelled {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "labels.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []labelled
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) < 2 {
			t.Fatalf("%s/labels.txt: bad line %q", dir, line)
		}
		if fs[1] != "allow" {
			if c, ok := categories.Parse(fs[1]); !ok || c == categories.Unclassified {
				t.Fatalf("%s/labels.txt: unknown category %q", dir, fs[1])
			}
		}
		lang := "?"
		if len(fs) > 2 {
			lang = fs[2]
		}
		out = append(out, labelled{filepath.Join(dir, fs[0]), fs[1], lang})
	}
	return out
}

// evalResult is what a part scored at one threshold.
type evalResult struct {
	pages, allow, block int
	overBlocked         []string // must-allow pages put in any category
	missed              []string // pages to block not put in their category
	wrongCat            int      // pages to block put in another category too
	per                 map[string]*catCounts
}

type catCounts struct{ tp, fp, fn int }

func (r *evalResult) precision() float64 {
	tp, fp := 0, 0
	for _, k := range r.per {
		tp += k.tp
		fp += k.fp
	}
	if tp+fp == 0 {
		return 1
	}
	return float64(tp) / float64(tp+fp)
}

func (r *evalResult) recall() float64 {
	if r.block == 0 {
		return 1
	}
	return float64(r.block-len(r.missed)) / float64(r.block)
}

// evaluate scores every page of a part. A page to block counts as
// caught when it is put in its own category; any category given to a
// must-allow page is an over-block; a category given to a page to block
// other than its own is a false positive of that category.
func evaluate(t testing.TB, c *Classifier, pages []labelled, threshold float64, logf func(string, ...any)) *evalResult {
	t.Helper()
	r := &evalResult{per: map[string]*catCounts{}}
	get := func(k string) *catCounts {
		if r.per[k] == nil {
			r.per[k] = &catCounts{}
		}
		return r.per[k]
	}
	for _, p := range pages {
		b, err := os.ReadFile(p.file)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.ScoreHTML(bytes.NewReader(b), 0)
		if err != nil {
			t.Fatal(err)
		}
		over := res.Over(threshold)
		top, score := res.Top()
		r.pages++
		name := filepath.Base(p.file)
		if p.label == "allow" {
			r.allow++
			if !over.Empty() {
				r.overBlocked = append(r.overBlocked, fmt.Sprintf("%s (%s %.2f)", name, top, score))
				for _, n := range over.Names() {
					get(n).fp++
				}
			}
			if logf != nil && (!over.Empty() || score >= threshold/2) {
				logf("  %-34s allow  top %-16s %.2f %s", name, top, score, explain(res))
			}
			continue
		}
		r.block++
		want, _ := categories.Parse(p.label)
		if over.Has(want) {
			get(p.label).tp++
		} else {
			get(p.label).fn++
			r.missed = append(r.missed, fmt.Sprintf("%s (%s %.2f)", name, p.label, res.Score(want)))
			if logf != nil {
				logf("  %-34s MISSED %-16s %.2f top %s %.2f %s", name, p.label, res.Score(want), top, score, explain(res))
			}
		}
		for _, n := range over.Names() {
			if n != p.label {
				get(n).fp++
				r.wrongCat++
			}
		}
	}
	return r
}

func (r *evalResult) report(logf func(string, ...any), name string, threshold float64) {
	logf("%s at threshold %.2f: %d pages (%d to block, %d must-allow): over-blocked %d/%d, caught %d/%d (recall %.3f), precision %.3f, other-category hits %d",
		name, threshold, r.pages, r.block, r.allow, len(r.overBlocked), r.allow, r.block-len(r.missed), r.block, r.recall(), r.precision(), r.wrongCat)
	names := make([]string, 0, len(r.per))
	for n := range r.per {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		k := r.per[n]
		prec, rec := 1.0, 1.0
		if k.tp+k.fp > 0 {
			prec = float64(k.tp) / float64(k.tp+k.fp)
		}
		if k.tp+k.fn > 0 {
			rec = float64(k.tp) / float64(k.tp+k.fn)
		}
		logf("  %-16s precision %.2f recall %.2f (tp %d fp %d fn %d)", n, prec, rec, k.tp, k.fp, k.fn)
	}
	for _, s := range r.overBlocked {
		logf("  over-blocked: %s", s)
	}
	for _, s := range r.missed {
		logf("  missed: %s", s)
	}
}

// TestEvalPagesRendered keeps the committed pages the rendering of their
// specs: edit testdata/eval, then go run ./categories/classify/evalgen.
func TestEvalPagesRendered(t *testing.T) {
	for _, part := range spec.Parts {
		pages, err := spec.LoadPart(filepath.Join("testdata", "eval", part))
		if err != nil {
			t.Fatal(err)
		}
		if len(pages) < 100 {
			t.Errorf("%s: only %d pages", part, len(pages))
		}
		lb, err := os.ReadFile(filepath.Join("testdata", part, "labels.txt"))
		if err != nil || !bytes.Equal(lb, spec.Labels(pages)) {
			t.Errorf("testdata/%s/labels.txt is not the specs' (run go run ./categories/classify/evalgen)", part)
		}
		files, _ := filepath.Glob(filepath.Join("testdata", part, "*.html"))
		if len(files) != len(pages) {
			t.Errorf("testdata/%s has %d pages, the specs %d", part, len(files), len(pages))
		}
		for _, p := range pages {
			b, err := os.ReadFile(filepath.Join("testdata", part, p.Name+".html"))
			if err != nil || !bytes.Equal(b, spec.Render(p)) {
				t.Errorf("testdata/%s/%s.html is not its spec's rendering (run go run ./categories/classify/evalgen)", part, p.Name)
			}
			if !strings.HasPrefix(p.Name, map[string]string{"train": "t-", "heldout": "h-"}[part]) {
				t.Errorf("%s: page %s in part %s must start with %q", p.File, p.Name, part, part[:1]+"-")
			}
		}
	}
}

// TestEvalSetShape: at least as many must-allow pages as pages to block
// in each part, every category the classifier speaks for present, and
// many languages.
func TestEvalSetShape(t *testing.T) {
	for _, part := range spec.Parts {
		pages := loadPart(t, filepath.Join("testdata", part))
		allow, block := 0, 0
		cats, langs := map[string]int{}, map[string]int{}
		for _, p := range pages {
			langs[p.lang]++
			if p.label == "allow" {
				allow++
			} else {
				block++
				cats[p.label]++
			}
		}
		if allow < block {
			t.Errorf("%s: %d must-allow pages, fewer than the %d to block", part, allow, block)
		}
		for _, c := range ContentCategories() {
			if cats[c.String()] < 4 {
				t.Errorf("%s: only %d pages of %s", part, cats[c.String()], c)
			}
		}
		if len(langs) < 12 {
			t.Errorf("%s: only %d languages", part, len(langs))
		}
		t.Logf("%s: %d pages, %d to block, %d must-allow, %d languages %v", part, len(pages), block, allow, len(langs), langs)
	}
}

// TestTrainingSet is the training part's figures, with every miss and
// every near over-block explained: the page to read when tuning.
func TestTrainingSet(t *testing.T) {
	pages := append(loadPart(t, filepath.Join("testdata", "train")), loadPart(t, filepath.Join("testdata", "pages"))...)
	r := evaluate(t, Default(), pages, DefaultThreshold, t.Logf)
	r.report(t.Logf, "training", DefaultThreshold)
	if len(r.overBlocked) > 0 {
		t.Errorf("%d training must-allow pages over-blocked", len(r.overBlocked))
	}
}

// TestHeldOut measures the held-out part at the default threshold: no
// must-allow page may be put in any category (not even as an unsure
// score, which is logged as a near miss), and at least 90% of the pages
// to block must be blocked: put in their own category with clear
// evidence (ClearEvidence of the default threshold, what the proxy
// blocks on). Its log is the figure the docs quote:
//
//	go test -run TestHeldOut -v ./categories/classify
func TestHeldOut(t *testing.T) {
	pages := loadPart(t, filepath.Join("testdata", "heldout"))
	c := Default()
	r := evaluate(t, c, pages, DefaultThreshold, nil)
	r.report(t.Logf, "held-out", DefaultThreshold)
	if len(r.overBlocked) > 0 {
		t.Errorf("%d held-out must-allow pages over-blocked: %v", len(r.overBlocked), r.overBlocked)
	}
	clear := ClearEvidence(DefaultThreshold)
	rb := evaluate(t, c, pages, clear, nil)
	rb.report(t.Logf, "held-out, blocked (clear evidence)", clear)
	if rb.recall() < 0.90 {
		t.Errorf("held-out: %.3f of the pages to block are blocked, under 0.90", rb.recall())
	}
	for _, th := range []float64{0.3, 0.45} {
		evaluate(t, c, pages, th, nil).report(t.Logf, "held-out", th)
	}
	// How the scoring was chosen (docs/classifier.md): the hand formula
	// alone and the learned model alone, beside their geometric mean
	// (what Default scores, above).
	hand, err := New()
	if err != nil {
		t.Fatal(err)
	}
	hand.model = &model{}
	evaluate(t, hand, pages, DefaultThreshold, nil).report(t.Logf, "held-out, hand formula alone", DefaultThreshold)
	learned, err := New()
	if err != nil {
		t.Fatal(err)
	}
	learned.model = &model{w: c.model.w, learnedOnly: true}
	evaluate(t, learned, pages, DefaultThreshold, nil).report(t.Logf, "held-out, learned model alone", DefaultThreshold)
}
