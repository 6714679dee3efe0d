package classify

import (
	"bytes"
	"fmt"
	"math"
	"strings"

	"github.com/schoolgate/schoolgate/categories"
)

// The n-gram experiment: does a logistic regression that also sees the
// page's normalised words and word pairs (hashed, present or not) do
// better than the one over the page features alone? It is run by
//
//	go run ./categories/classify/train -ngrams
//
// which prints its cross-validated figures on the training pages and its
// figures on the held-out pages beside those of the model in use, and
// writes nothing. The answer decides whether the run-time scorer hashes
// n-grams (docs/classifier.md says what was found).

const ngramBits = 18

// ngramsOf is the set of hashed unigrams and bigrams of a page.
func ngramsOf(html []byte) []uint32 {
	text, _ := ExtractText(bytes.NewReader(html), 0)
	seen := map[uint32]bool{}
	var out []uint32
	add := func(h uint64) {
		b := uint32(h>>7) & (1<<ngramBits - 1)
		if !seen[b] {
			seen[b] = true
			out = append(out, b)
		}
	}
	var prev uint64
	for i, w := range Words(text) {
		h := hashWord([]byte(w))
		add(h)
		if i > 0 {
			add(prev*fnvPrime ^ h)
		}
		prev = h
	}
	return out
}

type ngramExample struct {
	ev    *evidence
	grams []uint32
	label string
}

// ngramModel is one category's weights: the page features and the hashed
// n-grams.
type ngramModel struct {
	dense [numFeatures]float64
	gram  map[uint32]float64
}

func (m *ngramModel) score(ex *ngramExample, cat categories.Category) float64 {
	if ex.ev.distinct[cat] == 0 {
		return 0
	}
	f := ex.ev.features(cat)
	z := 0.0
	for i := range f {
		z += m.dense[i] * f[i]
	}
	for _, g := range ex.grams {
		z += m.gram[g]
	}
	return sigmoid(z)
}

// fitNgram starts from the page-feature model's weights and learns
// n-gram weights by gradient descent (L2 lambda, the same class weights
// and signs as fit).
func fitNgram(exs []ngramExample, idx []int, cat categories.Category, start [numFeatures]float64, lambda, allowW float64) *ngramModel {
	m := &ngramModel{dense: start, gram: map[uint32]float64{}}
	var rows []int
	for _, i := range idx {
		if exs[i].ev.distinct[cat] > 0 {
			rows = append(rows, i)
		}
	}
	if len(rows) == 0 {
		return m
	}
	n := float64(len(rows))
	const iters, rate = 300, 0.5
	for it := 0; it < iters; it++ {
		var gd [numFeatures]float64
		gg := map[uint32]float64{}
		for _, i := range rows {
			ex := &exs[i]
			y, wt := target(example{ex.ev, ex.label}, cat)
			if ex.label == "allow" {
				wt = allowW
			}
			d := wt * (m.score(ex, cat) - y) / n
			f := ex.ev.features(cat)
			for j := range f {
				gd[j] += d * f[j]
			}
			for _, g := range ex.grams {
				gg[g] += d
			}
		}
		for j := range m.dense {
			m.dense[j] -= rate * gd[j]
			if signOf[j] > 0 && m.dense[j] < 0 || signOf[j] < 0 && m.dense[j] > 0 {
				m.dense[j] = 0
			}
		}
		for g, v := range m.gram {
			gg[g] += lambda * v
		}
		for g, v := range gg {
			m.gram[g] -= rate * v
		}
	}
	return m
}

// NgramExperiment trains the n-gram variant on train and reports it
// against the model in use, cross-validated on train and measured on
// heldout (never trained on).
func (c *Classifier) NgramExperiment(train, heldout []TrainPage, lambda float64) (string, error) {
	prep := func(pages []TrainPage) ([]ngramExample, error) {
		var out []ngramExample
		for _, p := range pages {
			ev, err := c.evidenceOf(bytes.NewReader(p.HTML))
			if err != nil {
				return nil, fmt.Errorf("page %s: %w", p.Name, err)
			}
			out = append(out, ngramExample{ev, ngramsOf(p.HTML), p.Label})
		}
		return out, nil
	}
	tr, err := prep(train)
	if err != nil {
		return "", err
	}
	ho, err := prep(heldout)
	if err != nil {
		return "", err
	}
	const folds, allowW = 5, 3.0
	cats := ContentCategories()
	// scores[variant][page][cat]: variant 0 the model in use (features
	// only, min with the hand formula), 1 with n-grams (min with hand)
	type tally struct{ caught, block, over, allow int }
	count := func(exs []ngramExample, score func(i int, cat categories.Category) float64) tally {
		var t tally
		for i, ex := range exs {
			over := false
			for _, cat := range cats {
				if score(i, cat) >= DefaultThreshold && ex.label == "allow" {
					over = true
				}
			}
			if ex.label == "allow" {
				t.allow++
				if over {
					t.over++
				}
				continue
			}
			t.block++
			cat, _ := categories.Parse(ex.label)
			if score(i, cat) >= DefaultThreshold {
				t.caught++
			}
		}
		return t
	}
	// combined with the hand formula as the model in use is (scoreOf)
	withRule := func(ev *evidence, cat categories.Category, s float64) float64 {
		s = math.Sqrt(s * handScore(ev, cat))
		if ev.distinct[cat] == 1 {
			s = math.Min(s, singlePhraseCap)
		}
		return s
	}
	// cross-validation on train
	cv := make([]map[categories.Category]float64, len(tr))
	cvBase := make([]map[categories.Category]float64, len(tr))
	for i := range cv {
		cv[i], cvBase[i] = map[categories.Category]float64{}, map[categories.Category]float64{}
	}
	plain := make([]example, len(tr))
	for i := range tr {
		plain[i] = example{tr[i].ev, tr[i].label}
	}
	for _, cat := range cats {
		for k := 0; k < folds; k++ {
			var idx []int
			for i := range tr {
				if i%folds != k {
					idx = append(idx, i)
				}
			}
			base := fit(plain, idx, cat, 0.1, allowW)
			m := fitNgram(tr, idx, cat, base, lambda, allowW)
			for i := range tr {
				if i%folds == k {
					cv[i][cat] = withRule(tr[i].ev, cat, m.score(&tr[i], cat))
					cvBase[i][cat] = withRule(tr[i].ev, cat, predict(base, tr[i].ev, cat))
				}
			}
		}
	}
	// trained on all of train, measured on heldout
	hoScore := make([]map[categories.Category]float64, len(ho))
	for i := range hoScore {
		hoScore[i] = map[categories.Category]float64{}
	}
	all := make([]int, len(tr))
	for i := range all {
		all[i] = i
	}
	for _, cat := range cats {
		base := c.model.w[cat]
		m := fitNgram(tr, all, cat, base, lambda, allowW)
		for i := range ho {
			hoScore[i][cat] = withRule(ho[i].ev, cat, m.score(&ho[i], cat))
		}
	}
	var b strings.Builder
	line := func(name string, t tally) {
		fmt.Fprintf(&b, "  %-44s caught %d/%d, over-blocked %d/%d\n", name, t.caught, t.block, t.over, t.allow)
	}
	fmt.Fprintf(&b, "n-gram experiment (2^%d hashed unigrams and bigrams, L2 %g), default threshold:\n", ngramBits, lambda)
	line("training, cross-validated, page features", count(tr, func(i int, c categories.Category) float64 { return cvBase[i][c] }))
	line("training, cross-validated, + n-grams", count(tr, func(i int, c categories.Category) float64 { return cv[i][c] }))
	line("held-out, model in use", count(ho, func(i int, cat categories.Category) float64 {
		return c.model.scoreOf(ho[i].ev, cat)
	}))
	line("held-out, + n-grams", count(ho, func(i int, c categories.Category) float64 { return hoScore[i][c] }))
	return b.String(), nil
}
