package classify

import (
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/schoolgate/schoolgate/categories"
)

// DefaultThreshold is the score a category must reach when a profile sets
// no content_threshold.
const DefaultThreshold = 0.6

// numCats is the number of stable categories (Unclassified included).
var numCats = len(categories.All())

// Classifier scores text against the phrase lists. It is immutable and
// safe for concurrent use.
type Classifier struct {
	phrases []phrase
	last    lastIndex // last word's hash → phrases ending with it
	pool    sync.Pool // *scan
	model   *model
}

// lastIndex finds the phrases that end with a word, by the word's hash.
// Most words of a page end no phrase, so a bit filter answers them
// first; the rest probe a small open-addressing table. This is the hot
// loop of scoring: a Go map here costs several times more.
type lastIndex struct {
	filter [filterBits / 64]uint64
	slots  []lastSlot // power-of-two size, hash 0 = empty
	cands  []cand
}

// cand is a phrase ending with a word, with what the matcher checks
// first: the word before the last (most candidates fail there, and this
// way without touching the phrase) and the phrase's length in words.
type cand struct {
	prev uint64 // hash of the word before the last; 0 for one word
	pi   int32
	k    int32
}

const filterBits = 1 << 16

type lastSlot struct {
	hash      uint64
	off, n    int32
	_, padded int32
}

func (x *lastIndex) build(byLast map[uint64][]int32, phrases []phrase) {
	size := 1
	for size < 2*len(byLast)+2 {
		size *= 2
	}
	x.slots = make([]lastSlot, size)
	for h, ps := range byLast {
		if h == 0 {
			h = 1 // 0 marks an empty slot; hashWord never gives 0 in practice
		}
		x.filter[(h>>5)%filterBits/64] |= 1 << (h % 64)
		i := h & uint64(size-1)
		for x.slots[i].hash != 0 {
			i = (i + 1) & uint64(size-1)
		}
		x.slots[i] = lastSlot{hash: h, off: int32(len(x.cands)), n: int32(len(ps))}
		for _, pi := range ps {
			p := &phrases[pi]
			c := cand{pi: pi, k: int32(len(p.hashes))}
			if len(p.hashes) > 1 {
				c.prev = p.hashes[len(p.hashes)-2]
			}
			x.cands = append(x.cands, c)
		}
	}
}

// mayEnd reports whether a word with hash h may end a phrase (the bit
// filter of lookup, small enough to inline).
func (x *lastIndex) mayEnd(h uint64) bool {
	if h == 0 {
		h = 1
	}
	return x.filter[(h>>5)%filterBits/64]&(1<<(h%64)) != 0
}

func (x *lastIndex) lookup(h uint64) []cand {
	if h == 0 {
		h = 1
	}
	if x.filter[(h>>5)%filterBits/64]&(1<<(h%64)) == 0 {
		return nil
	}
	mask := uint64(len(x.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		sl := &x.slots[i]
		if sl.hash == h {
			return x.cands[sl.off : sl.off+sl.n]
		}
		if sl.hash == 0 {
			return nil
		}
	}
}

// New returns a classifier with the embedded phrase lists plus the given
// extra phrase files (each named after its category, or starting with
// "category: NAME").
func New(extraFiles ...string) (*Classifier, error) {
	ps, err := defaultPhrases()
	if err != nil {
		return nil, fmt.Errorf("loading embedded phrase lists: %w", err)
	}
	var errs []error
	for _, f := range extraFiles {
		more, err := loadPhraseFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ps = append(ps, more...)
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return newClassifier(ps), nil
}

var (
	defaultOnce sync.Once
	defaultC    *Classifier
)

// Default returns the classifier with the embedded lists only, built once.
// The embedded lists are tested to parse, so it never fails at run time.
func Default() *Classifier {
	defaultOnce.Do(func() {
		c, err := New()
		if err != nil {
			panic("classify: embedded phrase lists: " + err.Error()) // caught by tests
		}
		defaultC = c
	})
	return defaultC
}

func newClassifier(ps []phrase) *Classifier {
	// A phrase listed twice for one category (two files) keeps the last weight.
	seen := make(map[string]int, len(ps))
	var uniq []phrase
	for _, p := range ps {
		k := fmt.Sprintf("%d\x00%s", p.cat, p.text)
		if i, ok := seen[k]; ok {
			uniq[i] = p
			continue
		}
		seen[k] = len(uniq)
		uniq = append(uniq, p)
	}
	c := &Classifier{phrases: uniq, model: defaultModel}
	byLast := make(map[uint64][]int32, len(uniq))
	for i, p := range uniq {
		last := p.hashes[len(p.hashes)-1]
		byLast[last] = append(byLast[last], int32(i))
	}
	c.last.build(byLast, c.phrases)
	c.pool.New = func() any {
		return &scan{counts: make([]uint16, len(c.phrases)), zones: make([]uint8, len(c.phrases))}
	}
	return c
}

// Phrases returns how many phrases the classifier holds.
func (c *Classifier) Phrases() int { return len(c.phrases) }

// Match is one phrase found in a page.
type Match struct {
	Category categories.Category // the category it counts for (or against)
	Phrase   string              // normalised phrase
	Count    int                 // times found
	Weight   float64             // the phrase's weight (negative: context)
	Effect   float64             // what it added to (or took from) the evidence
}

// Result is a page's score.
type Result struct {
	// Scores holds a score in 0..1 per category, indexed by Category;
	// categories no phrase speaks for are 0.
	Scores []float64
	// Matches lists the phrases that drove the scores, strongest first.
	Matches []Match
	// Words is how many words were read.
	Words int
}

// Score returns the score of category cat.
func (r *Result) Score(cat categories.Category) float64 {
	if int(cat) >= len(r.Scores) {
		return 0
	}
	return r.Scores[cat]
}

// Over returns the categories scoring at or above threshold (0: the
// default threshold).
func (r *Result) Over(threshold float64) categories.Set {
	if threshold <= 0 {
		threshold = DefaultThreshold
	}
	var s categories.Set
	for i, v := range r.Scores {
		if v > 0 && v >= threshold {
			s = s.Add(categories.Category(i))
		}
	}
	return s
}

// Top returns the best scoring category and its score (0 when none scores).
func (r *Result) Top() (categories.Category, float64) {
	best, bi := 0.0, categories.Unclassified
	for i, v := range r.Scores {
		if v > best {
			best, bi = v, categories.Category(i)
		}
	}
	return bi, best
}

// scan is the per-call matching state, pooled.
type scan struct {
	c      *Classifier
	ring   [maxPhraseWords]uint64
	n      int // words seen
	counts []uint16
	zones  []uint8 // per phrase: the zones it was found in, a bit each
	hit    []int32 // phrases with counts > 0
	tok    tokenizer
	zone   zone             // where the text being read stands
	sigs   [numSignals]bool // shape signals seen
}

// word takes the next word's hash. Most words end no phrase: the filter
// answers them here, inlined into the tokenizer.
func (s *scan) word(_ []byte, h uint64) {
	s.ring[uint(s.n)%maxPhraseWords] = h
	s.n++
	if s.c.last.mayEnd(h) {
		s.match(h)
	}
}

// match counts the phrases ending with the word just read.
func (s *scan) match(h uint64) {
	cands := s.c.last.lookup(h)
	for _, cd := range cands {
		k := int(cd.k)
		if k > s.n {
			continue
		}
		if k > 1 {
			if s.ring[uint(s.n-2)%maxPhraseWords] != cd.prev {
				continue
			}
			p := &s.c.phrases[cd.pi]
			match := true
			for j := 0; j < k-2; j++ {
				if s.ring[uint(s.n-k+j)%maxPhraseWords] != p.hashes[j] {
					match = false
					break
				}
			}
			if !match {
				continue
			}
		}
		pi := cd.pi
		if s.counts[pi] == 0 {
			s.hit = append(s.hit, pi)
		}
		s.zones[pi] |= 1 << s.zone
		if s.counts[pi] < math.MaxUint16 {
			s.counts[pi]++
		}
	}
}

// Score scores plain text.
func (c *Classifier) Score(text []byte) *Result {
	s := c.start()
	s.tok.write(text)
	return c.finish(s)
}

// ScoreHTML extracts the visible text of an HTML page (its first limit
// bytes; 0: DefaultExtractLimit) and scores it. It reads r only up to the
// limit.
func (c *Classifier) ScoreHTML(r io.Reader, limit int) (*Result, error) {
	s := c.start()
	err := extract(r, limit, func(z zone, p []byte) {
		s.zone = z
		s.tok.write(p)
	}, func(sg signal) { s.sigs[sg] = true })
	return c.finish(s), err
}

// Writer returns a streaming scorer: write text to it, then call Result.
func (c *Classifier) Writer() *TextScorer {
	return &TextScorer{c: c, s: c.start()}
}

// TextScorer scores text written to it in pieces.
type TextScorer struct {
	c *Classifier
	s *scan
}

// Write feeds text; it never fails.
func (t *TextScorer) Write(p []byte) (int, error) {
	if t.s != nil {
		t.s.tok.write(p)
	}
	return len(p), nil
}

// Result finishes scoring; the scorer must not be used afterwards.
func (t *TextScorer) Result() *Result {
	if t.s == nil {
		return &Result{Scores: make([]float64, numCats)}
	}
	r := t.c.finish(t.s)
	t.s = nil
	return r
}

func (c *Classifier) start() *scan {
	s := c.pool.Get().(*scan)
	s.c = c
	s.n = 0
	s.hit = s.hit[:0]
	s.zone = zoneBody
	s.sigs = [numSignals]bool{}
	s.tok.reset(nil)
	s.tok.sc = s
	return s
}

func (c *Classifier) finish(s *scan) *Result {
	s.tok.close()
	pf := c.pageFeatures(s)
	c.pool.Put(s)
	return c.model.score(pf)
}

// ContentCategories are the categories the content classifier speaks
// for: those a page's own words and shape say it is. The others
// (webmail, streaming, social, shopping, doh, downloads, forums,
// search-engines, education) come from the lists only: nothing a school
// blocks is found by guessing them from a page.
func ContentCategories() []categories.Category {
	return []categories.Category{
		categories.Adult, categories.Gambling, categories.Chat, categories.Games,
		categories.Dating, categories.Drugs, categories.Violence, categories.Hate,
		categories.Extremism, categories.SelfHarm, categories.Malware, categories.Phishing,
		categories.Hacking, categories.Piracy, categories.ProxyAvoidance,
	}
}
