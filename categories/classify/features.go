package classify

import (
	"math"
	"sort"

	"github.com/schoolgate/schoolgate/categories"
)

// What a page is, not only its words: the scan gives, for each phrase of
// the lists, the zones of the page it was found in (title, headings,
// links, forms, body) and, for the page, its shape signals (a password
// field, a magnet link, the RTA label, a form, prices). A phrase counts
// once, however often it is repeated, weighted by the most telling zone it
// appears in: one word three times in the body is one weak clue, not
// three. From these, pageFeatures builds one feature vector per category,
// which the model (model.go) turns into a score.

// zoneWeight is how much a phrase counts by where it was found.
var zoneWeight = [numZones]float64{zoneBody: 1, zoneTitle: 2, zoneHeading: 1.5, zoneLink: 1.2, zoneForm: 1.2}

// zoneBoost is the weight of the most telling zone in a mask.
func zoneBoost(mask uint8) float64 {
	b := 0.0
	for z := zone(0); z < numZones; z++ {
		if mask&(1<<z) != 0 && zoneWeight[z] > b {
			b = zoneWeight[z]
		}
	}
	if b == 0 {
		b = 1
	}
	return b
}

const maxCats = 32 // categories.Set is a uint32

// evidence is what a page gave, before the model.
type evidence struct {
	words    int
	core     [maxCats]float64 // Σ weight × zone boost of the category's core phrases
	head     [maxCats]float64 // the same, of those in the title or a heading
	distinct [maxCats]int     // core phrases found
	context  [maxCats]float64 // Σ |weight| × boost of the category's own context phrases
	support  [maxCats]float64 // supporting phrases, counted once core evidence is there
	signal   [sigEnd - sigHelp]float64
	shape    [numSignals]bool
	matches  []Match
	signals  []Match // word signals, listed under each category that scored
}

// pageFeatures gathers the evidence of a finished scan and clears the
// scan's per-phrase state for the next page.
func (c *Classifier) pageFeatures(s *scan) *evidence {
	ev := &evidence{words: s.n, shape: s.sigs}
	ev.shape[sigPrice] = ev.shape[sigPrice] || s.tok.price
	for _, pi := range s.hit {
		p := &c.phrases[pi]
		if int(p.cat) < maxCats && p.weight > 0 && !p.support {
			b := zoneBoost(s.zones[pi])
			ev.core[p.cat] += p.weight * b
			ev.distinct[p.cat]++
			if s.zones[pi]&(1<<zoneTitle|1<<zoneHeading) != 0 {
				ev.head[p.cat] += p.weight
			}
		}
	}
	for _, pi := range s.hit {
		p := &c.phrases[pi]
		n, mask := int(s.counts[pi]), s.zones[pi]
		s.counts[pi], s.zones[pi] = 0, 0
		eff := p.weight * zoneBoost(mask)
		m := Match{Category: p.cat, Phrase: p.text, Count: n, Weight: p.weight, Effect: eff}
		switch {
		case isSignal(p.cat):
			ev.signal[p.cat-sigHelp] += eff
			if p.cat == sigHelp || p.cat == sigTeach {
				m.Effect = -eff
				ev.signals = append(ev.signals, m)
			}
			continue
		case int(p.cat) >= maxCats:
			continue
		case p.support:
			if ev.core[p.cat] < supportNeeds {
				continue
			}
			ev.support[p.cat] += eff
		case eff < 0:
			ev.context[p.cat] -= eff
		}
		ev.matches = append(ev.matches, m)
	}
	for i := range ev.support {
		ev.support[i] = math.Min(ev.support[i], ev.core[i])
	}
	return ev
}

// The features of one category, in the order of a model line.
const (
	fBias = iota
	fCore
	fHead
	fDistinct
	fContext
	fSupport
	fHelp
	fTeach
	fCommerce
	fAgeGate
	fPassword
	fMagnet
	fRTA
	fPrice
	fForm
	fCoreCommerce
	fCoreHelp
	fDominance
	numFeatures
)

// featureNames name the features in model.txt.
var featureNames = [numFeatures]string{
	"bias", "core", "head", "distinct", "context", "support", "help", "teaching",
	"commerce", "agegate", "password", "magnet", "rta", "price", "form",
	"core*commerce", "core*help", "dominance",
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// features is category cat's feature vector. Sums are compressed
// (log1p): the tenth casino phrase adds less than the second.
func (ev *evidence) features(cat categories.Category) [numFeatures]float64 {
	var f [numFeatures]float64
	core := math.Log1p(ev.core[cat])
	other := 0.0
	for i := range ev.core {
		if i != int(cat) && ev.core[i] > other {
			other = ev.core[i]
		}
	}
	help := ev.signal[sigHelp-sigHelp] + ev.signal[sigTeach-sigHelp]
	f[fBias] = 1
	f[fCore] = core
	f[fHead] = math.Log1p(ev.head[cat])
	f[fDistinct] = math.Log1p(float64(ev.distinct[cat]))
	f[fContext] = math.Log1p(ev.context[cat])
	f[fSupport] = math.Log1p(ev.support[cat])
	f[fHelp] = math.Log1p(ev.signal[sigHelp-sigHelp])
	f[fTeach] = math.Log1p(ev.signal[sigTeach-sigHelp])
	f[fCommerce] = math.Log1p(ev.signal[sigCommerce-sigHelp])
	f[fAgeGate] = math.Log1p(ev.signal[sigAgeGate-sigHelp])
	f[fPassword] = b2f(ev.shape[sigPassword])
	f[fMagnet] = b2f(ev.shape[sigMagnet])
	f[fRTA] = b2f(ev.shape[sigRTA])
	f[fPrice] = b2f(ev.shape[sigPrice])
	f[fForm] = b2f(ev.shape[sigForm])
	f[fCoreCommerce] = core * b2f(ev.signal[sigCommerce-sigHelp] > 0)
	f[fCoreHelp] = core * b2f(help > 0)
	f[fDominance] = core - math.Log1p(other)
	return f
}

// explain fills r.Matches from the evidence: the phrases of each
// category some phrase spoke for (whatever its score: a page kept open
// by its help words shows why), and the help and teaching signals under
// each.
func (ev *evidence) explain(r *Result) {
	for _, m := range ev.matches {
		if ev.distinct[m.Category] > 0 {
			r.Matches = append(r.Matches, m)
		}
	}
	for i := range r.Scores {
		if i >= maxCats || ev.distinct[i] == 0 {
			continue
		}
		for _, m := range ev.signals {
			m.Category = categories.Category(i)
			r.Matches = append(r.Matches, m)
		}
	}
	sort.Slice(r.Matches, func(i, j int) bool {
		a, b := r.Matches[i], r.Matches[j]
		if math.Abs(a.Effect) != math.Abs(b.Effect) {
			return math.Abs(a.Effect) > math.Abs(b.Effect)
		}
		if a.Category != b.Category {
			return a.Category < b.Category
		}
		return a.Phrase < b.Phrase
	})
}
