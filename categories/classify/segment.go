package classify

import (
	"bufio"
	_ "embed"
	"math"
	"strings"
	"sync"
)

// The segmenter splits a run of letters such as a host label into words
// by dynamic programming over a dictionary with word costs (−log of a
// word's likelihood, by frequency tier): the cheapest reading wins. Common
// words are cheap, rare words and names dearer, and a letter no word
// explains dearest of all. So "expertsexchange" reads "experts exchange"
// (two common words) rather than "expert sex change" (three), and
// "penistone", "scunthorpe" and "therapist" read as themselves, because a
// dictionary that knows the place or the word makes one word cheaper than
// two or three.
//
// words.txt is project data: one word a line, under "@1" (very common),
// "@2" (common), "@3" (less common, names and places) headers.
//
//go:embed words.txt
var wordsTxt string

// Costs per tier and for a letter no word covers.
var tierCost = [...]float64{1: 5, 2: 7, 3: 9}

const (
	unknownLetterCost = 11
	maxSegWord        = 24
	maxSegInput       = 128
)

// Segmenter splits letter runs into dictionary words. Safe for concurrent use.
type Segmenter struct {
	cost map[string]float64
}

var (
	segOnce sync.Once
	segDef  *Segmenter
)

// DefaultSegmenter returns the segmenter over the embedded dictionary.
func DefaultSegmenter() *Segmenter {
	segOnce.Do(func() {
		segDef = NewSegmenter(wordsTxt)
		// The host vocabulary's words are words too (rare ones).
		for _, line := range strings.Split(hostWordsTxt, "\n") {
			if f := strings.Fields(line); len(f) == 3 && !strings.HasPrefix(f[0], "#") {
				if w := strings.ToLower(f[2]); !segDef.Known(w) {
					segDef.cost[w] = tierCost[3]
				}
			}
		}
	})
	return segDef
}

// NewSegmenter builds a segmenter from a word list in the words.txt
// format. Unknown tiers count as tier 3; words may repeat (the cheapest
// tier wins).
func NewSegmenter(list string) *Segmenter {
	s := &Segmenter{cost: make(map[string]float64, 4096)}
	cost := tierCost[3]
	sc := bufio.NewScanner(strings.NewReader(list))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '@' {
			switch line {
			case "@1":
				cost = tierCost[1]
			case "@2":
				cost = tierCost[2]
			default:
				cost = tierCost[3]
			}
			continue
		}
		for _, w := range strings.Fields(line) {
			w = strings.ToLower(w)
			if len(w) > maxSegWord {
				continue
			}
			if c, ok := s.cost[w]; !ok || cost < c {
				s.cost[w] = cost
			}
		}
	}
	return s
}

// Known reports whether w is a dictionary word.
func (s *Segmenter) Known(w string) bool {
	_, ok := s.cost[w]
	return ok
}

// Segment splits a run of lower-case letters into words. Letters no word
// covers come back as runs of their own, with known=false. Input longer
// than 128 bytes is cut (a DNS label has at most 63).
func (s *Segmenter) Segment(text string) []Segment {
	if len(text) > maxSegInput {
		text = text[:maxSegInput]
	}
	n := len(text)
	if n == 0 {
		return nil
	}
	best := make([]float64, n+1)
	from := make([]int, n+1)
	known := make([]bool, n+1)
	for i := 1; i <= n; i++ {
		best[i] = math.Inf(1)
		for j := max(0, i-maxSegWord); j < i; j++ {
			if c, ok := s.cost[text[j:i]]; ok && best[j]+c < best[i] {
				best[i], from[i], known[i] = best[j]+c, j, true
			}
		}
		if c := best[i-1] + unknownLetterCost; c < best[i] {
			best[i], from[i], known[i] = c, i-1, false
		}
	}
	var rev []Segment
	for i := n; i > 0; i = from[i] {
		rev = append(rev, Segment{Word: text[from[i]:i], Known: known[i]})
	}
	// reverse, merging adjacent unknown letters into one run
	out := make([]Segment, 0, len(rev))
	for k := len(rev) - 1; k >= 0; k-- {
		sg := rev[k]
		if !sg.Known && len(out) > 0 && !out[len(out)-1].Known {
			out[len(out)-1].Word += sg.Word
			continue
		}
		out = append(out, sg)
	}
	return out
}

// Segment is one word of a segmentation.
type Segment struct {
	Word  string
	Known bool
}

// Words returns just the words.
func SegmentWords(segs []Segment) []string {
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = s.Word
	}
	return out
}
