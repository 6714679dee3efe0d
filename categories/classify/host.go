package classify

import (
	_ "embed"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/publicsuffix"

	"github.com/schoolgate/schoolgate/categories"
)

// Host-name signals: a host the database does not know is split into
// words (labels, then the segmenter), and the words are scored against a
// small per-category vocabulary (hostwords.txt: "CATEGORY WEIGHT WORD"
// lines, project data). A signal is only given above HostThreshold, and
// only for words read in a label the dictionary mostly explains, so a
// category word found inside an unknown word ("bethpage") says little.

//go:embed hostwords.txt
var hostWordsTxt string

// HostThreshold is the default confidence a host-name signal needs.
const HostThreshold = 0.65

const hostScale = 2.5

type hostWord struct {
	cat    categories.Category
	weight float64
}

// HostClassifier scores host names. Safe for concurrent use.
type HostClassifier struct {
	seg   *Segmenter
	vocab map[string][]hostWord
}

var (
	hostOnce sync.Once
	hostDef  *HostClassifier
)

// DefaultHost returns the host classifier over the embedded dictionary and
// vocabulary.
func DefaultHost() *HostClassifier {
	hostOnce.Do(func() {
		h, err := NewHostClassifier(DefaultSegmenter(), hostWordsTxt)
		if err != nil {
			panic("classify: embedded host vocabulary: " + err.Error()) // caught by tests
		}
		hostDef = h
	})
	return hostDef
}

// NewHostClassifier builds a host classifier from a segmenter and a
// vocabulary in the hostwords.txt format. Vocabulary words are added to
// the segmenter's dictionary if missing (as rare words).
func NewHostClassifier(seg *Segmenter, vocab string) (*HostClassifier, error) {
	h := &HostClassifier{seg: seg, vocab: make(map[string][]hostWord)}
	err := fieldLines(strings.NewReader(vocab), func(line int, f []string) error {
		if len(f) != 3 {
			return fmt.Errorf("host vocabulary line %d: want CATEGORY WEIGHT WORD", line)
		}
		c, ok := categories.Parse(f[0])
		if f[0] == "context" {
			c, ok = allCategories, true
		}
		if !ok || c.Pseudo() {
			return fmt.Errorf("host vocabulary line %d: unknown category %q", line, f[0])
		}
		w, err := strconv.ParseFloat(f[1], 64)
		if err != nil || w == 0 || w > maxWeight || w < -maxWeight || (w < 0) != (c == allCategories) {
			return fmt.Errorf("host vocabulary line %d: bad weight %q (context words negative, others positive)", line, f[1])
		}
		word := strings.ToLower(f[2])
		h.vocab[word] = append(h.vocab[word], hostWord{c, w})
		if !seg.Known(word) {
			seg.cost[word] = tierCost[3]
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

// HostResult is a host name's signal.
type HostResult struct {
	Category categories.Category // best category; Unclassified when none
	Score    float64             // 0..1
	Words    []string            // the words the host was read as
	Signals  []string            // the vocabulary words that spoke
}

// Classify reads a normalised host name. The registrable suffix (co.uk,
// com) and "www" are not read.
func (h *HostClassifier) Classify(host string) HostResult {
	res := HostResult{Category: categories.Unclassified}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" || len(host) > 253 {
		return res
	}
	if suffix, _ := publicsuffix.PublicSuffix(host); suffix != "" && suffix != host {
		host = strings.TrimSuffix(host, "."+suffix)
	}
	evidence := make(map[categories.Category]float64)
	for _, label := range strings.Split(host, ".") {
		if label == "www" || strings.HasPrefix(label, "xn--") {
			continue
		}
		// split on hyphens, digits and the like, then segment each run
		runs := strings.FieldsFunc(label, func(r rune) bool { return r < 'a' || r > 'z' })
		for _, run := range runs {
			segs := h.seg.Segment(run)
			unknown := 0
			for _, sg := range segs {
				res.Words = append(res.Words, sg.Word)
				if !sg.Known {
					unknown += len(sg.Word)
				}
			}
			// A run the dictionary mostly cannot explain gives weak evidence.
			trust := 1 - float64(unknown)/float64(len(run))
			if trust < 0.6 {
				continue
			}
			seen := map[string]bool{}
			for _, sg := range segs {
				if !sg.Known || seen[sg.Word] {
					continue
				}
				seen[sg.Word] = true
				for _, hw := range h.vocab[sg.Word] {
					evidence[hw.cat] += hw.weight * trust
					name := "context"
					if hw.cat != allCategories {
						name = hw.cat.String()
					}
					res.Signals = append(res.Signals, name+":"+sg.Word)
				}
			}
		}
	}
	ctx := evidence[allCategories]
	delete(evidence, allCategories)
	for c, x := range evidence {
		sc := 1 - math.Exp(-math.Max(0, x+ctx)/hostScale)
		if sc > 0 && (sc > res.Score || (sc == res.Score && c < res.Category)) {
			res.Score, res.Category = sc, c
		}
	}
	return res
}
