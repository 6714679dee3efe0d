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

// The experiment's fixed settings: the folds of the cross-validation and
// the class weight of an allowed page (the same as Train's).
const ngramFolds, ngramAllowW = 5, 3.0

// NgramExperiment trains the n-gram variant on train and reports it
// against the model in use, cross-validated on train and measured on
// heldout (never trained on).
func (c *Classifier) NgramExperiment(train, heldout []TrainPage, lambda float64) (string, error) {
	tr, err := c.ngramExamplesOf(train)
	if err != nil {
		return "", err
	}
	ho, err := c.ngramExamplesOf(heldout)
	if err != nil {
		return "", err
	}
	cats := ContentCategories()
	cvBase, cv := ngramCrossValidate(tr, cats, lambda)
	hoScore := c.ngramHeldOut(tr, ho, cats, lambda)

	var b strings.Builder
	line := func(name string, t ngramTally) {
		fmt.Fprintf(&b, "  %-44s caught %d/%d, over-blocked %d/%d\n", name, t.caught, t.block, t.over, t.allow)
	}
	fmt.Fprintf(&b, "n-gram experiment (2^%d hashed unigrams and bigrams, L2 %g), default threshold:\n", ngramBits, lambda)
	line("training, cross-validated, page features", tallyNgram(tr, cats, func(i int, c categories.Category) float64 { return cvBase[i][c] }))
	line("training, cross-validated, + n-grams", tallyNgram(tr, cats, func(i int, c categories.Category) float64 { return cv[i][c] }))
	line("held-out, model in use", tallyNgram(ho, cats, func(i int, cat categories.Category) float64 {
		return c.model.scoreOf(ho[i].ev, cat)
	}))
	line("held-out, + n-grams", tallyNgram(ho, cats, func(i int, c categories.Category) float64 { return hoScore[i][c] }))
	return b.String(), nil
}

// ngramExamplesOf reads each page once into its evidence and n-grams, so
// that the many fits that follow never parse HTML again.
func (c *Classifier) ngramExamplesOf(pages []TrainPage) ([]ngramExample, error) {
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

// ngramScores is a score per page (by index) and category.
type ngramScores []map[categories.Category]float64

func newNgramScores(n int) ngramScores {
	s := make(ngramScores, n)
	for i := range s {
		s[i] = map[categories.Category]float64{}
	}
	return s
}

// ngramCrossValidate scores every training page by models that did not
// see it (ngramFolds folds), both the page-feature model (base) and the
// n-gram one grown from it, so the two are compared on equal terms.
func ngramCrossValidate(tr []ngramExample, cats []categories.Category, lambda float64) (base, withGrams ngramScores) {
	base, withGrams = newNgramScores(len(tr)), newNgramScores(len(tr))
	plain := make([]example, len(tr))
	for i := range tr {
		plain[i] = example{tr[i].ev, tr[i].label}
	}
	for _, cat := range cats {
		for k := 0; k < ngramFolds; k++ {
			idx := trainingFold(len(tr), ngramFolds, k)
			w := fit(plain, idx, cat, 0.1, ngramAllowW)
			m := fitNgram(tr, idx, cat, w, lambda, ngramAllowW)
			for i := range tr {
				if i%ngramFolds == k {
					withGrams[i][cat] = withHandRule(tr[i].ev, cat, m.score(&tr[i], cat))
					base[i][cat] = withHandRule(tr[i].ev, cat, predict(w, tr[i].ev, cat))
				}
			}
		}
	}
	return base, withGrams
}

// ngramHeldOut trains the n-gram model on all of tr, starting from the
// model in use, and scores the held-out pages with it.
func (c *Classifier) ngramHeldOut(tr, ho []ngramExample, cats []categories.Category, lambda float64) ngramScores {
	scores := newNgramScores(len(ho))
	all := allIndices(len(tr))
	for _, cat := range cats {
		m := fitNgram(tr, all, cat, c.model.w[cat], lambda, ngramAllowW)
		for i := range ho {
			scores[i][cat] = withHandRule(ho[i].ev, cat, m.score(&ho[i], cat))
		}
	}
	return scores
}

// withHandRule combines a learned score with the hand formula as the
// model in use does (scoreOf), so the experiment measures what the
// scorer would really answer.
func withHandRule(ev *evidence, cat categories.Category, s float64) float64 {
	s = math.Sqrt(s * handScore(ev, cat))
	if ev.distinct[cat] == 1 {
		s = math.Min(s, singlePhraseCap)
	}
	return s
}

// ngramTally is what one variant caught and over-blocked at the default
// threshold.
type ngramTally struct{ caught, block, over, allow int }

// tallyNgram counts, for one variant's scores, the blocked pages caught in
// their own category and the allowed pages that any category would block.
func tallyNgram(exs []ngramExample, cats []categories.Category, score func(i int, cat categories.Category) float64) ngramTally {
	var t ngramTally
	for i, ex := range exs {
		if ex.label == "allow" {
			t.allow++
			for _, cat := range cats {
				if score(i, cat) >= DefaultThreshold {
					t.over++
					break
				}
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
