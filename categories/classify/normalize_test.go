package classify

import (
	"strings"
	"testing"

	"github.com/schoolgate/schoolgate/categories"
)

func TestWords(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"case and punctuation", "Free SPINS! Bet-now.", "free spins bet now"},
		{"accents", "Casinò, machines à sous, Straße, zakłady, niño", "casino machines a sous strasse zaklady nino"},
		{"leetspeak", "p0rn c4sino s3x $lots xan@x", "porn casino sex slots xanax"},
		{"numbers stay numbers", "18 2024 $ 100% 3.5", "18 2024 100 3 5"},
		{"spaced out", "c a s i n o and p.o.r.n or s-e-x", "casino and porn or sex"},
		{"two letters are not a word", "a b test", "a b test"},
		{"repeated letters", "caaasino pooorn free coffee xxx www", "casino porn free coffee xxx www"},
		{"apostrophes join", "don't jeux d'argent", "dont jeux dargent"},
		{"zero width and soft hyphen", "ca\u200bsi\u00adno", "casino"},
		{"fullwidth", "ＣＡＳＩＮＯ", "casino"},
		{"arabic variants", "أإآا ى ی ک ة ـكـازيـنو", "اااا ي ي ك ه كازينو"},
		{"arabic harakat", "القِمَار", "القمار"},
		{"arabic digits", "١٨", "18"},
		{"urdu heh and yeh", "سٹہ ے", "سٹه ي"},
		{"greek and cyrillic lower", "ΚΑΖΙΝΟ Казино", "καζινο казино"},
		{"long run cut", strings.Repeat("a", 200), "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(Words(tt.in), " ")
			if got != tt.want {
				t.Errorf("Words(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestWordsLongWordBounded(t *testing.T) {
	w := Words(strings.Repeat("ab", 500))
	if len(w) != 1 || len(w[0]) > maxWordBytes {
		t.Fatalf("got %d words, first %d bytes; want one word of at most %d", len(w), len(w[0]), maxWordBytes)
	}
}

func TestWordsSplitWrites(t *testing.T) {
	// A word split across writes (and a multi-byte rune split across them)
	// reads the same as in one piece.
	text := "online c4sino zakłady кази"
	want := strings.Join(Words(text), " ")
	for cut := 1; cut < len(text); cut++ {
		var got []string
		var tk tokenizer
		tk.reset(func(w []byte) { got = append(got, string(w)) })
		tk.write([]byte(text[:cut]))
		tk.write([]byte(text[cut:]))
		tk.close()
		if g := strings.Join(got, " "); g != want {
			t.Errorf("cut at %d: %q, want %q", cut, g, want)
		}
	}
}

// TestHashPathMatchesWords: the scorer hashes words as it reads them;
// every word Words returns must be found by a phrase made of it, as often
// as it occurs, however the text is written.
func TestHashPathMatchesWords(t *testing.T) {
	texts := []string{
		"Online CASINO c4sino p0rn $ex caaasino xxx www",
		"c a s i n o and p.o.r.n, zakłady Straße niño œuvre",
		"كازينو القِمَار ـكـازيـنو سٹہ ١٨ Казино ΚΑΖΙΝΟ",
		strings.Repeat("long", 40) + " ca\u200bsi\u00adno ＣＡＳＩＮＯ don't 2024 mp3",
	}
	for _, text := range texts {
		counts := map[string]int{}
		for _, w := range Words(text) {
			counts[w]++
		}
		var ps []phrase
		for w := range counts {
			ps = append(ps, phrase{text: w, cat: categories.Games, weight: 1, hashes: []uint64{hashWord([]byte(w))}})
		}
		c := newClassifier(ps)
		r := c.Score([]byte(text))
		got := map[string]int{}
		for _, m := range r.Matches {
			got[m.Phrase] = m.Count
		}
		for w, n := range counts {
			if got[w] != n {
				t.Errorf("%q: word %q counted %d times, occurs %d", text, w, got[w], n)
			}
		}
	}
}
