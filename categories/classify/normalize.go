package classify

import (
	"bytes"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// The tokenizer turns text into normalised words, one at a time, without
// allocating per word. Normalisation undoes what a page does to slip past
// a word list and what differs between spellings of one word:
//
//   - case, and accents (NFD, then combining marks dropped): "Casinò" → casino;
//     letters that do not decompose are mapped by hand (ł → l, ß → ss, ø → o);
//   - Arabic and Urdu letter variants: alef with hamza or madda → alef,
//     alef maksura and Farsi/Urdu yeh → yeh, Urdu kaf → kaf, Urdu heh forms
//     → heh, teh marbuta → heh; tatweel and harakat are dropped;
//   - leetspeak inside a word that has letters: 0→o 1→i 3→e 4→a 5→s 7→t
//     @→a $→s ("p0rn", "c4sino", "$ex"); a number alone stays a number;
//   - runs of three or more of one letter collapse to one ("caaasino");
//   - homoglyphs: Cyrillic and Greek letters that look Latin → Latin, in
//     a word that has Latin letters too ("саsinо", "рокеr");
//   - spacing tricks: three or more one-letter words in a row are one word
//     ("c a s i n o", "p.o.r.n", "s-e-x").

// maxWordBytes bounds one word; longer runs of letters are cut (a page of
// base64 is not words).
const maxWordBytes = 64

// latinFold maps the Latin-1 and Latin Extended-A/B letters to their base
// letters, lower case. Built once from NFD plus the letters NFD leaves.
var latinFold [0x250]string

func init() {
	for r := rune(0xC0); r < 0x250; r++ {
		if !unicode.IsLetter(r) {
			continue
		}
		var b []byte
		for _, d := range norm.NFD.String(string(unicode.ToLower(r))) {
			if unicode.Is(unicode.Mn, d) {
				continue
			}
			b = utf8.AppendRune(b, d)
		}
		latinFold[r] = string(b)
	}
	for r, s := range map[rune]string{
		'ß': "ss", 'æ': "ae", 'Æ': "ae", 'œ': "oe", 'Œ': "oe", 'ø': "o", 'Ø': "o",
		'ł': "l", 'Ł': "l", 'đ': "d", 'Đ': "d", 'ð': "d", 'Ð': "d", 'þ': "th", 'Þ': "th",
		'ı': "i", 'ſ': "s",
	} {
		latinFold[r] = s
	}
}

// arabicFold maps Arabic-script letter variants onto one form, so that
// Arabic and Urdu spellings of a word meet. 0 = keep.
func arabicFold(r rune) (rune, bool) {
	switch r {
	case 0x0640: // tatweel: drop
		return 0, false
	case 0x0622, 0x0623, 0x0625, 0x0671, 0x0672, 0x0673: // alef with madda/hamza, wasla
		return 0x0627, true
	case 0x0649, 0x06CC, 0x06D0, 0x06D2: // alef maksura, Farsi yeh, yeh barree → yeh
		return 0x064A, true
	case 0x06A9, 0x06AA: // keheh (Urdu/Farsi kaf) → kaf
		return 0x0643, true
	case 0x06C1, 0x06BE, 0x06D5, 0x0629: // Urdu heh goal, heh doachashmee, ae, teh marbuta → heh
		return 0x0647, true
	case 0x0624: // waw with hamza
		return 0x0648, true
	case 0x0626: // yeh with hamza
		return 0x064A, true
	}
	if r >= 0x0660 && r <= 0x0669 { // Arabic-Indic digits
		return '0' + r - 0x0660, true
	}
	if r >= 0x06F0 && r <= 0x06F9 { // extended (Urdu/Farsi) digits
		return '0' + r - 0x06F0, true
	}
	return r, true
}

// homoglyph maps the Cyrillic and Greek letters that look like Latin
// ones to those, in a word that also has Latin letters ("саsinо" with
// Cyrillic а and о reads casino). A word all in Cyrillic or Greek stays
// as it is.
var homoglyph = map[rune]byte{
	'а': 'a', 'в': 'b', 'е': 'e', 'к': 'k', 'м': 'm', 'н': 'h', 'о': 'o', 'р': 'p', 'с': 'c',
	'т': 't', 'у': 'y', 'х': 'x', 'і': 'i', 'ј': 'j', 'ѕ': 's', 'һ': 'h', 'ԁ': 'd', 'ԛ': 'q',
	'ԝ': 'w', 'ӏ': 'l', 'ѵ': 'v',
	'α': 'a', 'β': 'b', 'ε': 'e', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p', 'τ': 't',
	'υ': 'u', 'χ': 'x', 'ζ': 'z', 'η': 'n',
}

// asciiLower maps ASCII letters to lower case, every other byte to 0.
var asciiLower = func() (t [256]byte) {
	for c := byte('a'); c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = c, c
	}
	return t
}()

// wordBreak marks the ASCII bytes that end a word: all but letters,
// digits, @, $ and apostrophes (see write).
var wordBreak = func() (t [256]bool) {
	for c := 0; c < utf8.RuneSelf; c++ {
		t[c] = !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '@' || c == '$' || c == '\'' || c == 0x60)
	}
	return t
}()

var leet = [128]byte{'0': 'o', '1': 'i', '3': 'e', '4': 'a', '5': 's', '7': 't', '@': 'a', '$': 's'}

// tokenizer is the streaming word splitter. emit gets each normalised word;
// the slice is only valid during the call.
type tokenizer struct {
	emit func(word []byte)
	sc   *scan // when set, words go straight to sc.word (the hot path)

	h uint64 // FNV-1a of word[:n], kept as bytes are added

	word     [maxWordBytes + 4]byte
	n        int
	letters  int  // letters in word
	leetable bool // word holds a digit, @ or $
	runes    int
	nonASCII int  // letters in word outside ASCII
	homo     bool // word holds a letter of homoglyph

	// prices: a currency sign ($ £ € ₺ zł) next to a number, seen while
	// reading the words (the extractor gives it as the page's price
	// signal): curr, a sign since the last word; lastNum, the last word
	// was a number.
	curr, lastNum, price bool

	// a multi-byte rune cut by the end of a write
	pend  [utf8.UTFMax]byte
	npend int

	// spacing tricks: pending one-letter words
	singles  [maxWordBytes]byte
	nsingles int
}

func (t *tokenizer) reset(emit func([]byte)) {
	t.emit = emit
	t.n, t.letters, t.runes, t.nsingles, t.npend, t.nonASCII = 0, 0, 0, 0, 0, 0
	t.leetable, t.homo = false, false
	t.curr, t.lastNum, t.price = false, false, false
	t.sc = nil
	t.h = fnvOffset
}

// write feeds text. Words may span calls.
//
// It is one long loop on purpose: it runs over every byte of every page
// the proxy scores, and its paths (a whole ASCII word at once, a run of
// lower-case letters, one ASCII byte, one rune) share i, t.n and t.h in
// registers; split into functions (the compiler inlines none of them:
// too big) it costs a call per word or per byte. Keep it whole; measure
// a change with go test -run '^$' -bench 'Score100KiB|ScoreHTML100KiB'
// -benchtime 200x ./categories/classify (CPU per op).
func (t *tokenizer) write(p []byte) {
	if t.npend > 0 {
		p = t.finishRune(p)
	}
	for i := 0; i < len(p); {
		c := p[i]
		// fastest path: a whole ASCII word starting here, lowered and
		// hashed in one pass and handed on at once. What it cannot finish
		// (a word going on past this write, into a digit, an apostrophe or
		// a non-ASCII letter; one letter; a run of three) is left in t.word
		// as the paths below leave it, and they go on from there.
		if t.n == 0 && asciiLower[c] != 0 {
			wb := t.word[:maxWordBytes]
			end := min(len(p), i+maxWordBytes)
			h := uint64(fnvOffset)
			var p1, p2 byte
			triple := false
			j := i
			for ; j < end; j++ {
				l := asciiLower[p[j]]
				if l == 0 {
					break
				}
				if l == p1 && l == p2 {
					triple = true
				}
				p2, p1 = p1, l
				wb[j-i] = l
				h = (h ^ uint64(l)) * fnvPrime
			}
			n := j - i
			if j < len(p) && wordBreak[p[j]] && n > 1 && !triple {
				// what endWord does with a plain word; the break after it
				// ends nothing more
				if t.nsingles > 0 {
					t.flushSingles()
				}
				t.curr, t.lastNum = false, false
				if sc := t.sc; sc != nil {
					// sc.word, by hand: the compiler does not inline it
					sc.ring[uint(sc.n)%maxPhraseWords] = h
					sc.n++
					if sc.c.last.mayEnd(h) {
						sc.match(h)
					}
				} else {
					t.emit(wb[:n])
				}
				i = j + 1
				continue
			}
			t.n, t.h, t.letters, t.runes = n, h, n, n
			i = j
			continue
		}
		// fast path: a run of lower-case ASCII letters, hashed as it is copied
		if 'a' <= c && c <= 'z' {
			j, n, h := i, t.n, t.h
			for ; j < len(p); j++ {
				c := p[j]
				if c < 'a' || c > 'z' {
					break
				}
				if n < maxWordBytes {
					t.word[n] = c
					n++
					h = (h ^ uint64(c)) * fnvPrime
				}
			}
			t.letters += j - i
			t.runes += j - i
			t.n, t.h = n, h
			i = j
			continue
		}
		if c < utf8.RuneSelf {
			i++
			switch {
			case c >= 'a' && c <= 'z':
				t.addLetter(c)
			case c >= 'A' && c <= 'Z':
				t.addLetter(c + 'a' - 'A')
			case c >= '0' && c <= '9', c == '@', c == '$':
				t.addByte(c)
				t.leetable = true
			case c == '\'' || c == 0x60:
				// apostrophes join: "don't" is one word
			default:
				if t.n != 0 {
					t.endWord()
				}
			}
			continue
		}
		if !utf8.FullRune(p[i:]) {
			t.npend = copy(t.pend[:], p[i:])
			return
		}
		r, size := utf8.DecodeRune(p[i:])
		i += size
		t.addRune(r)
	}
}

// finishRune completes a multi-byte rune the last write cut in two from
// the start of p, and returns the rest of p. It is rare (a rune across two
// reads of the page), so it stays out of write's loop.
func (t *tokenizer) finishRune(p []byte) []byte {
	for t.npend > 0 && len(p) > 0 {
		t.pend[t.npend] = p[0]
		t.npend++
		p = p[1:]
		if utf8.FullRune(t.pend[:t.npend]) || t.npend == utf8.UTFMax {
			r, size := utf8.DecodeRune(t.pend[:t.npend])
			// A bad sequence decodes as one byte: the bytes after it are
			// read again, as they would be in one write.
			var rest [utf8.UTFMax]byte
			nrest := copy(rest[:], t.pend[size:t.npend])
			t.npend = 0
			t.addRune(r)
			if nrest > 0 {
				t.write(rest[:nrest])
			}
		}
	}
	return p
}

func (t *tokenizer) addRune(r rune) {
	switch {
	case r == 0xA3 || r == 0x20AC || r == 0x20BA: // £ € ₺
		t.endWord()
		if t.lastNum {
			t.price = true
		}
		t.curr = true
	case r == 0x2019 || r == 0x00AD || r == 0x200B || r == 0x200C || r == 0x200D || r == 0x2060 || r == 0xFEFF:
		// right single quote joins like an apostrophe; soft hyphen and
		// zero-width characters are invisible tricks: skip them.
	case r < 0x250:
		if s := latinFold[r]; s != "" {
			for j := 0; j < len(s); j++ {
				t.addLetter(s[j])
			}
			return
		}
		t.endWord()
	case unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r):
		// combining marks, Arabic harakat: dropped
	case r >= 0x0600 && r <= 0x06FF:
		f, keep := arabicFold(r)
		if !keep {
			return
		}
		if f < 0x80 {
			t.addByte(byte(f))
			return
		}
		if unicode.IsLetter(f) {
			t.addRuneBytes(f)
			return
		}
		t.endWord()
	case unicode.IsLetter(r):
		if r >= 0xFF21 && r <= 0xFF5A { // fullwidth Latin
			t.addLetter(byte(unicode.ToLower(r - 0xFF21 + 'A')))
			return
		}
		lr := unicode.ToLower(r)
		if _, ok := homoglyph[lr]; ok {
			t.homo = true
		}
		t.addRuneBytes(lr)
	case unicode.IsDigit(r):
		t.endWord()
	default:
		t.endWord()
	}
}

func (t *tokenizer) addLetter(c byte) {
	t.letters++
	t.addByte(c)
}

func (t *tokenizer) addByte(c byte) {
	if t.n < maxWordBytes {
		t.word[t.n] = c
		t.n++
		t.h = (t.h ^ uint64(c)) * fnvPrime
	}
	t.runes++
}

func (t *tokenizer) addRuneBytes(r rune) {
	t.letters++
	t.nonASCII++
	t.runes++
	if t.n+utf8.RuneLen(r) <= maxWordBytes {
		k := utf8.EncodeRune(t.word[t.n:], r)
		for _, c := range t.word[t.n : t.n+k] {
			t.h = (t.h ^ uint64(c)) * fnvPrime
		}
		t.n += k
	}
}

// endWord finishes the word being built, if any.
func (t *tokenizer) endWord() {
	if t.n == 0 {
		return
	}
	w := t.word[:t.n]
	runes, letters, h := t.runes, t.letters, t.h
	if t.homo && t.nonASCII < letters {
		w, runes = foldHomoglyphs(w), len(w)
		h = hashWord(w)
	}
	t.n, t.letters, t.runes, t.h, t.nonASCII, t.homo = 0, 0, 0, fnvOffset, 0, false
	if t.leetable {
		t.leetable = false
		if letters == 0 {
			// a number (or "$", "@" alone): numbers stay, symbols go
			k := 0
			dollar := false
			for _, c := range w {
				if c >= '0' && c <= '9' {
					w[k] = c
					k++
				} else if c == '$' {
					dollar = true
				}
			}
			if k == 0 {
				if dollar {
					if t.lastNum {
						t.price = true
					}
					t.curr = true
				}
				return
			}
			if dollar || t.curr {
				t.price = true
			}
			t.curr, t.lastNum = false, true
			if t.nsingles > 0 {
				t.flushSingles()
			}
			t.out(w[:k], hashWord(w[:k]))
			return
		}
		if bytes.IndexByte(w, '$') >= 0 { // R$, US$
			t.curr = true
		}
		for j, c := range w {
			if c < 128 && leet[c] != 0 {
				w[j] = leet[c]
			}
		}
		h = hashWord(w)
	} else {
		if t.lastNum && len(w) == 2 && w[0] == 'z' && w[1] == 'l' { // 25 zł
			t.price = true
		}
		t.curr = false
	}
	t.lastNum = false
	if len(w) >= 3 {
		if cw := collapseRuns(w); len(cw) != len(w) {
			w, h = cw, hashWord(cw)
		}
	}
	if runes == 1 && letters == 1 && len(w) == 1 {
		if t.nsingles < len(t.singles) {
			t.singles[t.nsingles] = w[0]
			t.nsingles++
		}
		return
	}
	if t.nsingles > 0 {
		t.flushSingles()
	}
	t.out(w, h)
}

// foldHomoglyphs rewrites the homoglyphs of w to their Latin letters, in
// place (each is shorter in UTF-8 than the rune it replaces).
func foldHomoglyphs(w []byte) []byte {
	k := 0
	for i := 0; i < len(w); {
		r, size := utf8.DecodeRune(w[i:])
		if c, ok := homoglyph[r]; ok {
			w[k] = c
			k++
		} else {
			k += copy(w[k:], w[i:i+size])
		}
		i += size
	}
	return w[:k]
}

// out hands a word and its hash on.
func (t *tokenizer) out(w []byte, h uint64) {
	if t.sc != nil {
		t.sc.word(w, h)
		return
	}
	t.emit(w)
}

// flushSingles emits pending one-letter words: joined when there are three
// or more (a spaced-out word), else one by one.
func (t *tokenizer) flushSingles() {
	if t.nsingles == 0 {
		return
	}
	n := t.nsingles
	t.nsingles = 0
	if n >= 3 {
		w := collapseRuns(t.singles[:n])
		t.out(w, hashWord(w))
		return
	}
	for j := 0; j < n; j++ {
		t.out(t.singles[j:j+1], hashWord(t.singles[j:j+1]))
	}
}

// close ends the text.
func (t *tokenizer) close() {
	if t.npend > 0 {
		t.npend = 0
		t.endWord() // an incomplete rune at the end is not a letter
	}
	t.endWord()
	t.flushSingles()
}

// collapseRuns shortens runs of three or more of one ASCII letter to one,
// in place. Runs of two stay: they are ordinary spelling ("free",
// "mississippi"); so do runs of x and w, which are words (xxx, www).
func collapseRuns(w []byte) []byte {
	run := false
	for i := 2; i < len(w); i++ {
		if w[i] == w[i-1] && w[i] == w[i-2] {
			run = true
			break
		}
	}
	if !run {
		return w
	}
	k := 0
	for i := 0; i < len(w); {
		j := i + 1
		for j < len(w) && w[j] == w[i] {
			j++
		}
		if j-i >= 3 && w[i] < 128 && w[i] != 'x' && w[i] != 'w' {
			w[k] = w[i]
			k++
		} else {
			k += copy(w[k:], w[i:j])
		}
		i = j
	}
	return w[:k]
}

// Words returns the normalised words of s, for tests, tools and the
// phrase lists (which go through the same normalisation as pages).
func Words(s string) []string {
	var out []string
	var t tokenizer
	t.reset(func(w []byte) { out = append(out, string(w)) })
	t.write([]byte(s))
	t.close()
	return out
}
