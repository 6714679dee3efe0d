package classify

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/schoolgate/schoolgate/categories"
)

// TrainPage is one labelled page of the training set.
type TrainPage struct {
	Name  string
	Label string // a category name, or "allow"
	HTML  []byte
}

// TrainOptions tune Train. The zero value trains as `go run
// ./categories/classify/train` does.
type TrainOptions struct {
	// Lambdas are the L2 strengths tried; cross-validation picks one per
	// category (default 0.03, 0.1, 0.3, 1).
	Lambdas []float64
	// AllowWeight is how much more a must-allow page counts than a page
	// to block when it is scored too high: an over-block costs more than
	// a miss (default 3).
	AllowWeight float64
	// Folds for cross-validation (default 5).
	Folds int
}

// TrainReport says what Train chose and how the training pages scored in
// cross-validation (each page scored by a model that did not see it).
type TrainReport struct {
	Lambda map[categories.Category]float64
	// Cross-validated figures at DefaultThreshold over all content
	// categories: pages to block caught in their category, must-allow
	// pages put in any category.
	CVCaught, CVBlock, CVOverBlocked, CVAllow int
	// CVOver names the must-allow pages cross-validation put in a
	// category, and CVMissed the pages to block it did not.
	CVOver, CVMissed []string
}

func (r *TrainReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cross-validated on the training pages (learned model alone): caught %d/%d pages to block, over-blocked %d/%d must-allow pages\n",
		r.CVCaught, r.CVBlock, r.CVOverBlocked, r.CVAllow)
	cats := make([]categories.Category, 0, len(r.Lambda))
	for c := range r.Lambda {
		cats = append(cats, c)
	}
	sort.Slice(cats, func(i, j int) bool { return cats[i] < cats[j] })
	for _, c := range cats {
		fmt.Fprintf(&b, "  %-16s lambda %g\n", c, r.Lambda[c])
	}
	if len(r.CVOver) > 0 {
		fmt.Fprintf(&b, "  cross-validation over-blocked: %s\n", strings.Join(r.CVOver, " "))
	}
	if len(r.CVMissed) > 0 {
		fmt.Fprintf(&b, "  cross-validation missed: %s\n", strings.Join(r.CVMissed, " "))
	}
	return b.String()
}

// example is one page's evidence and label.
type example struct {
	ev    *evidence
	label string
}

// Train fits the model's weights on labelled pages with the classifier's
// phrase lists and returns model.txt's content. It is deterministic:
// the same pages and lists give the same bytes.
func (c *Classifier) Train(pages []TrainPage, opt TrainOptions) ([]byte, *TrainReport, error) {
	opt = opt.withDefaults()
	exs, err := c.examplesOf(pages)
	if err != nil {
		return nil, nil, err
	}
	rep := &TrainReport{Lambda: map[categories.Category]float64{}}
	m := &model{w: map[categories.Category][numFeatures]float64{}}
	cvScores := make([]map[categories.Category]float64, len(exs))
	for i := range cvScores {
		cvScores[i] = map[categories.Category]float64{}
	}
	for _, cat := range ContentCategories() {
		best, bestCV := chooseLambda(exs, cat, opt)
		rep.Lambda[cat] = best
		m.w[cat] = fit(exs, allIndices(len(exs)), cat, best, opt.AllowWeight)
		for i := range exs {
			cvScores[i][cat] = bestCV[i]
		}
	}
	rep.tallyCV(exs, pages, cvScores)
	return m.format(modelHeader(rep)), rep, nil
}

// withDefaults fills in what the zero value leaves out, in one place so
// that TrainOptions' comments stay true.
func (opt TrainOptions) withDefaults() TrainOptions {
	if len(opt.Lambdas) == 0 {
		opt.Lambdas = []float64{0.03, 0.1, 0.3, 1}
	}
	if opt.AllowWeight == 0 {
		opt.AllowWeight = 3
	}
	if opt.Folds == 0 {
		opt.Folds = 5
	}
	return opt
}

// examplesOf checks each page's label and reads its evidence once, so
// that the many fits that follow never parse HTML again.
func (c *Classifier) examplesOf(pages []TrainPage) ([]example, error) {
	exs := make([]example, 0, len(pages))
	for _, p := range pages {
		if p.Label != "allow" {
			if cat, ok := categories.Parse(p.Label); !ok || cat == categories.Unclassified {
				return nil, fmt.Errorf("page %s: unknown label %q", p.Name, p.Label)
			}
		}
		ev, err := c.evidenceOf(bytes.NewReader(p.HTML))
		if err != nil {
			return nil, fmt.Errorf("page %s: %w", p.Name, err)
		}
		exs = append(exs, example{ev, p.Label})
	}
	return exs, nil
}

// chooseLambda picks cat's L2 strength by cross-validated weighted log
// loss (the first of equals wins, so the choice is deterministic) and
// returns the cross-validated scores of the pages under it, which the
// report counts.
func chooseLambda(exs []example, cat categories.Category, opt TrainOptions) (best float64, bestCV []float64) {
	best, bestLoss := opt.Lambdas[0], math.Inf(1)
	for _, lam := range opt.Lambdas {
		loss := 0.0
		cv := make([]float64, len(exs))
		for k := 0; k < opt.Folds; k++ {
			w := fit(exs, trainingFold(len(exs), opt.Folds, k), cat, lam, opt.AllowWeight)
			for i := range exs {
				if i%opt.Folds != k {
					continue
				}
				p := predict(w, exs[i].ev, cat)
				cv[i] = p
				loss += exLoss(p, exs[i], cat, opt.AllowWeight)
			}
		}
		if loss < bestLoss {
			best, bestLoss, bestCV = lam, loss, cv
		}
	}
	return best, bestCV
}

// trainingFold is the pages (by index, of n) that fold k of folds trains
// on: all but every folds-th one from k, which it is measured on.
func trainingFold(n, folds, k int) []int {
	var idx []int
	for i := 0; i < n; i++ {
		if i%folds != k {
			idx = append(idx, i)
		}
	}
	return idx
}

// allIndices is 0..n-1: the final fit trains on every page.
func allIndices(n int) []int {
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	return all
}

// tallyCV counts the cross-validated scores at DefaultThreshold into the
// report: pages to block caught in their own category, must-allow pages
// put in any category, and the names of the misses either way.
func (r *TrainReport) tallyCV(exs []example, pages []TrainPage, cvScores []map[categories.Category]float64) {
	for i, ex := range exs {
		over := false
		for cat, p := range cvScores[i] {
			if p >= DefaultThreshold && ex.label != cat.String() {
				if ex.label == "allow" {
					over = true
				}
			}
		}
		if ex.label == "allow" {
			r.CVAllow++
			if over {
				r.CVOverBlocked++
				r.CVOver = append(r.CVOver, pages[i].Name)
			}
			continue
		}
		r.CVBlock++
		cat, _ := categories.Parse(ex.label)
		if cvScores[i][cat] >= DefaultThreshold {
			r.CVCaught++
		} else {
			r.CVMissed = append(r.CVMissed, pages[i].Name)
		}
	}
}

// modelHeader is model.txt's comment: where the weights come from, and
// the training report, so a change of model shows its figures in review.
func modelHeader(rep *TrainReport) string {
	header := "# The content classifier's model: weights per category for the features of\n" +
		"# features.go. Generated by go run ./categories/classify/train from the\n" +
		"# training part of the evaluation set (testdata/train, testdata/pages);\n" +
		"# never from testdata/heldout. Do not edit; retrain.\n"
	for _, line := range strings.Split(strings.TrimSpace(rep.String()), "\n") {
		header += "# " + line + "\n"
	}
	return header
}

// evidenceOf scans a page and keeps its evidence.
func (c *Classifier) evidenceOf(r io.Reader) (*evidence, error) {
	s := c.start()
	err := extract(r, DefaultExtractLimit, func(z zone, p []byte) {
		s.zone = z
		s.tok.write(p)
	}, func(sg signal) { s.sigs[sg] = true })
	s.tok.close()
	ev := c.pageFeatures(s)
	c.pool.Put(s)
	return ev, err
}

// predict is what the model would give (without the single-phrase cap:
// training learns the weights, the cap is a rule on top).
func predict(w [numFeatures]float64, ev *evidence, cat categories.Category) float64 {
	if ev.distinct[cat] == 0 {
		return 0
	}
	return learnedScore(&w, ev, cat)
}

func target(ex example, cat categories.Category) (y, weight float64) {
	switch {
	case ex.label == cat.String():
		return 1, 1
	case ex.label == "allow":
		return 0, 0 // set by the caller: AllowWeight
	}
	return 0, 1
}

func exLoss(p float64, ex example, cat categories.Category, allowW float64) float64 {
	if ex.ev.distinct[cat] == 0 {
		return 0 // scored 0 by rule, whatever the weights
	}
	y, wt := target(ex, cat)
	if ex.label == "allow" {
		wt = allowW
	}
	p = math.Min(math.Max(p, 1e-9), 1-1e-9)
	return -wt * (y*math.Log(p) + (1-y)*math.Log(1-p))
}

// signOf says which way a feature may push: evidence for a category
// (its phrases, where they stand) may only raise its score, help,
// teaching and the category's own context phrases may only lower it.
// Training may not learn that a helpline makes a casino, however the
// training pages happen to fall: on pages it has not seen, that would
// over-block the help pages first.
var signOf = [numFeatures]int{
	fCore: 1, fHead: 1, fDistinct: 1, fSupport: 1, fDominance: 1,
	fContext: -1, fHelp: -1, fTeach: -1, fCoreHelp: -1,
}

// biasPrior is where the bias is pulled: a page with a phrase or two of
// a category and nothing else is far from it. Categories that few
// training pages speak of without being it (hacking, self-harm) would
// otherwise learn that any phrase at all is enough.
const biasPrior = -4

// fit is weighted L2-regularised logistic regression by Newton's method
// (18 features: the Hessian is small), over the pages where the category
// has any phrase (the others score 0 by rule), with the signs of signOf
// kept by projection and the bias pulled towards biasPrior.
func fit(exs []example, idx []int, cat categories.Category, lam, allowW float64) [numFeatures]float64 {
	var w [numFeatures]float64
	type row struct {
		f     [numFeatures]float64
		y, wt float64
	}
	var rows []row
	for _, i := range idx {
		ex := exs[i]
		if ex.ev.distinct[cat] == 0 {
			continue
		}
		y, wt := target(ex, cat)
		if ex.label == "allow" {
			wt = allowW
		}
		rows = append(rows, row{ex.ev.features(cat), y, wt})
	}
	if len(rows) == 0 {
		w[fBias] = biasPrior
		return w
	}
	n := float64(len(rows))
	for iter := 0; iter < 50; iter++ {
		var g [numFeatures]float64
		var h [numFeatures][numFeatures]float64
		for _, r := range rows {
			z := 0.0
			for j := range w {
				z += w[j] * r.f[j]
			}
			p := sigmoid(z)
			d := r.wt * (p - r.y)
			s := r.wt * p * (1 - p)
			for j := range w {
				g[j] += d * r.f[j] / n
				for k := range w {
					h[j][k] += s * r.f[j] * r.f[k] / n
				}
			}
		}
		for j := range w {
			if j != fBias {
				g[j] += lam * w[j]
				h[j][j] += lam
			} else {
				g[j] += lam * (w[j] - biasPrior)
				h[j][j] += lam
			}
			h[j][j] += 1e-6
		}
		step, ok := solve(h, g)
		if !ok {
			break
		}
		maxStep := 0.0
		for j := range w {
			old := w[j]
			w[j] -= step[j]
			if signOf[j] > 0 && w[j] < 0 || signOf[j] < 0 && w[j] > 0 {
				w[j] = 0
			}
			maxStep = math.Max(maxStep, math.Abs(w[j]-old))
		}
		if maxStep < 1e-7 {
			break
		}
	}
	return w
}

// solve solves h x = g by Gaussian elimination with partial pivoting.
func solve(h [numFeatures][numFeatures]float64, g [numFeatures]float64) ([numFeatures]float64, bool) {
	const n = numFeatures
	for col := 0; col < n; col++ {
		piv := col
		for r := col + 1; r < n; r++ {
			if math.Abs(h[r][col]) > math.Abs(h[piv][col]) {
				piv = r
			}
		}
		if math.Abs(h[piv][col]) < 1e-12 {
			return g, false
		}
		h[col], h[piv] = h[piv], h[col]
		g[col], g[piv] = g[piv], g[col]
		for r := col + 1; r < n; r++ {
			f := h[r][col] / h[col][col]
			for k := col; k < n; k++ {
				h[r][k] -= f * h[col][k]
			}
			g[r] -= f * g[col]
		}
	}
	var x [numFeatures]float64
	for r := n - 1; r >= 0; r-- {
		s := g[r]
		for k := r + 1; k < n; k++ {
			s -= h[r][k] * x[k]
		}
		x[r] = s / h[r][r]
	}
	return x, true
}
