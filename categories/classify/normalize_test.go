package classify

import (
	"bytes"
	"os"
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
		{"cyrillic homoglyphs", "саsinо ѕеx рокеr казино", "casino sex poker казино"},
		{"greek homoglyphs", "cαsinο", "casino"},
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

// wordsPieces returns the words of s written in pieces of at most size
// bytes: with one-byte pieces no word is ever whole inside a write, so
// the fast path that takes whole ASCII words at once never finishes one
// and the byte-by-byte paths do all the work.
func wordsPieces(s string, size int) []string {
	var out []string
	var tk tokenizer
	tk.reset(func(w []byte) { out = append(out, string(w)) })
	for len(s) > 0 {
		n := min(size, len(s))
		tk.write([]byte(s[:n]))
		s = s[n:]
	}
	tk.close()
	return out
}

var fastPathTexts = []string{
	"The school football team won; Parents and pupils celebrated. Next term!",
	"Free SPINS!! caaasino xxx www aaa-bbb a b c d e f casino, p.o.r.n c a s i n o",
	"don't c4sino p0rn $ex mp3 2024 niño Straße zakłady ca\u200bsi\u00adno ＣＡＳＩＮＯ",
	strings.Repeat("abcdefghij", 9) + " " + strings.Repeat("z", 70) + " end",
	"x y zz a\u00e9b I a\tb\nc\rd the END",
	"كازينو القِمَار Казино ΚΑΖΙΝΟ\x00\xff\xfe word",
}

// TestWordsFastPathSame: whole writes and one-byte writes read the same
// words, so the whole-word fast path normalises exactly like the rest.
func TestWordsFastPathSame(t *testing.T) {
	texts := append([]string{}, fastPathTexts...)
	for _, pg := range loadEvalSet(t) {
		page, err := os.ReadFile(pg.file)
		if err != nil {
			t.Fatal(err)
		}
		txt, err := ExtractText(bytes.NewReader(page), 0)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, txt)
	}
	for _, s := range texts {
		want := strings.Join(wordsPieces(s, 1), " ")
		for _, size := range []int{len(s) + 1, 7, 64, 4096} {
			if got := strings.Join(wordsPieces(s, size), " "); got != want {
				t.Errorf("pieces of %d: %.200q\nwant %.200q", size, got, want)
			}
		}
	}
}

func FuzzWords(f *testing.F) {
	for _, s := range fastPathTexts {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, s string, size int) {
		size = size%97 + 1
		if size <= 0 {
			size += 97
		}
		want := strings.Join(wordsPieces(s, 1), " ")
		if got := strings.Join(Words(s), " "); got != want {
			t.Fatalf("whole: %q, byte by byte: %q", got, want)
		}
		if got := strings.Join(wordsPieces(s, size), " "); got != want {
			t.Fatalf("pieces of %d: %q, byte by byte: %q", size, got, want)
		}
	})
}
