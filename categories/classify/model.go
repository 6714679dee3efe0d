package classify

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/schoolgate/schoolgate/categories"
)

// The model turns a category's features (features.go) into a score in
// 0..1: a logistic regression per category, L2-regularised, trained on
// the training part of the evaluation set by
//
//	go run ./categories/classify/train
//
// which writes model.txt (committed, embedded). The phrase lists stay the
// readable evidence; the model learns how much a phrase in the title
// counts against one in the body, what a price table, a password field
// or a magnet link adds for each category, and how much help and
// teaching words take away. A category the model has no line for (one an
// extra phrase file adds) is scored by the hand formula below.
//
//go:embed model.txt
var modelTxt []byte

// singlePhraseCap bounds the score of a category only one distinct
// phrase spoke for: one word, however often repeated and wherever it
// stands, never decides a page at the default threshold.
const singlePhraseCap = 0.4

// Hand formula: net evidence x becomes 1 − e^(−x/scoreScale).
const (
	contextFactor = 1.5
	scoreScale    = 5.0
)

// model holds a weight vector per category.
type model struct {
	w map[categories.Category][numFeatures]float64
	// learnedOnly scores by the learned model alone, where it has
	// weights (for the comparison in the tests).
	learnedOnly bool
}

// defaultModel is the embedded model. A model.txt that does not parse
// (features changed, not retrained yet) leaves every category to the
// hand formula, so that the train command still runs; a test fails on
// defaultModelErr.
var defaultModel, defaultModelErr = func() (*model, error) {
	m, err := parseModel(modelTxt)
	if err != nil {
		return &model{}, err
	}
	return m, nil
}()

// parseModel reads model.txt: '#' comments, a "features: NAME..." line
// that must list featureNames in order, then "CATEGORY W..." lines.
func parseModel(b []byte) (*model, error) {
	m := &model{w: map[categories.Category][numFeatures]float64{}}
	sawHeader := false
	err := fieldLines(bytes.NewReader(b), func(line int, f []string) error {
		if f[0] == "features:" {
			if strings.Join(f[1:], " ") != strings.Join(featureNames[:], " ") {
				return fmt.Errorf("line %d: features %v, want %v (retrain)", line, f[1:], featureNames)
			}
			sawHeader = true
			return nil
		}
		if !sawHeader {
			return fmt.Errorf("line %d: weights before the features: line", line)
		}
		cat, ok := categories.Parse(f[0])
		if !ok {
			return fmt.Errorf("line %d: unknown category %q", line, f[0])
		}
		if len(f) != numFeatures+1 {
			return fmt.Errorf("line %d: %d weights, want %d", line, len(f)-1, numFeatures)
		}
		var w [numFeatures]float64
		for i := range w {
			v, err := strconv.ParseFloat(f[i+1], 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("line %d: bad weight %q", line, f[i+1])
			}
			w[i] = v
		}
		m.w[cat] = w
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// fieldLines calls fn with the number and the fields of each line of r
// that is not blank or a '#' comment, and stops at fn's first error or at
// a line too long to read: the line format of model.txt and hostwords.txt.
func fieldLines(r io.Reader, fn func(line int, f []string) error) error {
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		if err := fn(line, strings.Fields(s)); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", line+1, err)
	}
	return nil
}

// format writes the model as model.txt.
func (m *model) format(header string) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	b.WriteString("features: " + strings.Join(featureNames[:], " ") + "\n")
	for _, c := range categories.All() {
		w, ok := m.w[c]
		if !ok {
			continue
		}
		b.WriteString(c.String())
		for _, v := range w {
			b.WriteString(" " + strconv.FormatFloat(v, 'f', 4, 64))
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// scoreOf is category cat's score from its features: the geometric
// mean of the learned model's score and the hand formula's. Either one
// at 0 keeps the page out of the category (the hand formula's help and
// context words, the model's judgement of the page's shape); between
// them, each tempers the other. Measured on the training, held-out and
// probe pages (docs/classifier.md), the hand formula alone over-blocked
// help pages in languages the lists do not know, the model alone and the
// lower of the two missed more, and the mean caught as many as the
// geometric mean without its veto.
func (m *model) scoreOf(ev *evidence, cat categories.Category) float64 {
	if ev.distinct[cat] == 0 {
		return 0 // signals alone never make a category
	}
	s := handScore(ev, cat)
	if w, ok := m.w[cat]; ok {
		if l := learnedScore(&w, ev, cat); m.learnedOnly {
			s = l
		} else {
			s = math.Sqrt(s * l)
		}
	}
	if ev.distinct[cat] == 1 {
		s = math.Min(s, singlePhraseCap)
	}
	return s
}

// learnedScore is the logistic regression's score.
func learnedScore(w *[numFeatures]float64, ev *evidence, cat categories.Category) float64 {
	f := ev.features(cat)
	z := 0.0
	for i := range w {
		z += w[i] * f[i]
	}
	return sigmoid(z)
}

// handScore is the hand formula: the phrases' weights (each counted
// once, by its best zone), supporting phrases, less the category's
// context phrases and the help and teaching signals, as 1 − e^(−x/5).
func handScore(ev *evidence, cat categories.Category) float64 {
	x := ev.core[cat] + ev.support[cat] - contextFactor*ev.context[cat] -
		contextFactor*(ev.signal[sigHelp-sigHelp]+ev.signal[sigTeach-sigHelp])
	if x <= 0 {
		return 0
	}
	return 1 - math.Exp(-x/scoreScale)
}

// score is the page's Result.
func (m *model) score(ev *evidence) *Result {
	r := &Result{Scores: make([]float64, numCats), Words: ev.words}
	for i := range r.Scores {
		if i < maxCats && ev.distinct[i] > 0 {
			r.Scores[i] = m.scoreOf(ev, categories.Category(i))
		}
	}
	ev.explain(r)
	return r
}
