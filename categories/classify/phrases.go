package classify

import (
	"bufio"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/schoolgate/schoolgate/categories"
)

// The phrase lists are project data, written for schoolgate. One file per
// category, named after it (gambling.txt); context.txt holds context
// phrases that count against every category (news, history, research).
//
// A line is "WEIGHT PHRASE": a positive weight is evidence for the
// category, a negative one a context phrase that counts against it. A
// weight written "~W" marks a supporting phrase ("add to cart", "blood"):
// it counts only when the page's core phrases already reach
// supportNeeds, and adds at most as much as they do, so a shop or a
// thriller is not a drug shop or gore. '#'
// starts a comment line. A file may also name its category on a line
// "category: NAME" before its first phrase, so that extra files can have
// any name.
//
//go:embed phrases/*.txt
var embeddedPhrases embed.FS

// maxPhraseWords bounds a phrase's length in words: the matcher keeps
// that many recent words.
const maxPhraseWords = 8

// maxWeight bounds a phrase's weight (a typo like 30 for 3.0 would let one
// word decide a page).
const maxWeight = 10

// allCategories marks a context phrase of context.txt (read as a
// teaching signal).
const allCategories categories.Category = 255

// Word signals: phrases that say what kind of page this is rather than
// what it is about. They are not categories; the model weighs them for
// each category (help and teaching count against, commerce and age gates
// for). Files signal-NAME.txt; weights positive (strength).
const (
	sigHelp     categories.Category = 200 + iota // helplines, counselling, "get help"
	sigTeach                                     // lessons, objectives, citations, news, museums
	sigCommerce                                  // deposit, checkout, sign-up bonus, crypto payment, plans
	sigAgeGate                                   // "18+", "are you over 18", "enter / leave"
	sigEnd
)

var signalNames = map[string]categories.Category{
	"signal-help": sigHelp, "signal-teaching": sigTeach, "signal-commerce": sigCommerce, "signal-agegate": sigAgeGate,
}

func isSignal(c categories.Category) bool { return c >= sigHelp && c < sigEnd }

type phrase struct {
	text   string
	cat    categories.Category // allCategories for context.txt
	weight float64
	hashes []uint64
	// support: counts only when core evidence for cat reaches supportNeeds.
	support bool
}

// supportNeeds is the core evidence a category needs before its
// supporting phrases count.
const supportNeeds = 2.0

// PhraseError locates a bad line in a phrase file.
type PhraseError struct {
	File string
	Line int
	Msg  string
}

func (e *PhraseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// parsePhrases reads one phrase file. Its category is the one its name
// gives, or the one a "category: NAME" line before the first phrase gives
// (the file must have one or the other). Every bad line is reported, each
// with its FILE:LINE.
func parsePhrases(name string, r io.Reader) ([]phrase, error) {
	cat, haveCat := phraseCategory(strings.TrimSuffix(path.Base(name), path.Ext(name)))
	var out []phrase
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64*1024)
	line := 0
	var errs []error
	bad := func(msg string) {
		errs = append(errs, &PhraseError{File: name, Line: line, Msg: msg})
	}
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		if rest, ok := strings.CutPrefix(s, "category:"); ok {
			if len(out) > 0 {
				bad("category: must come before the first phrase")
				continue
			}
			name := strings.TrimSpace(rest)
			c, ok := phraseCategory(name)
			if !ok {
				bad(fmt.Sprintf("unknown category %q", name))
				continue
			}
			cat, haveCat = c, true
			continue
		}
		if !haveCat {
			bad("no category: name the file after a category or start it with \"category: NAME\"")
			break
		}
		p, msg := parsePhraseLine(s, cat)
		if msg != "" {
			bad(msg)
			continue
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("reading %s: %w", name, err))
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return out, nil
}

// phraseCategory is what a phrase file's name (without ".txt") or its
// "category:" line names: a content category, a word signal, or
// "context". A pseudo-category is not one: no phrase can make a page
// ip-literal.
func phraseCategory(name string) (categories.Category, bool) {
	if name == "context" {
		return allCategories, true
	}
	if sc, ok := signalNames[name]; ok {
		return sc, true
	}
	c, ok := categories.Parse(name)
	if !ok || c.Pseudo() {
		return 0, false
	}
	return c, true
}

// parsePhraseLine reads one "[~]WEIGHT PHRASE" line of a file of category
// cat. It returns what is wrong with the line, or "" and the phrase with
// its words normalised and hashed as the scanner will see them.
func parsePhraseLine(s string, cat categories.Category) (phrase, string) {
	ws, text, _ := strings.Cut(s, " ")
	support := strings.HasPrefix(ws, "~")
	w, err := strconv.ParseFloat(strings.TrimPrefix(ws, "~"), 64)
	switch {
	case err != nil || w != w || w == 0 || w > maxWeight || w < -maxWeight:
		return phrase{}, fmt.Sprintf("want \"WEIGHT PHRASE\" with a weight from -%d to %d, not 0; got %q", maxWeight, maxWeight, ws)
	case support && w < 0:
		return phrase{}, "a supporting phrase (~) must have a positive weight"
	case cat == allCategories && w > 0:
		return phrase{}, "context phrases count against every category: the weight must be negative"
	case isSignal(cat) && (w < 0 || support):
		return phrase{}, "a signal phrase's weight is its strength: it must be positive"
	}
	words := Words(text)
	if len(words) == 0 {
		return phrase{}, fmt.Sprintf("phrase %q has no words", strings.TrimSpace(text))
	}
	if len(words) > maxPhraseWords {
		return phrase{}, fmt.Sprintf("phrase %q has %d words; at most %d", strings.TrimSpace(text), len(words), maxPhraseWords)
	}
	p := phrase{text: strings.Join(words, " "), cat: cat, weight: w, support: support}
	if cat == allCategories {
		// context.txt's phrases are teaching signals now
		p.cat, p.weight = sigTeach, -w
	}
	for _, wd := range words {
		p.hashes = append(p.hashes, hashWord([]byte(wd)))
	}
	return p, ""
}

type multiError []error

func (m multiError) Error() string {
	s := make([]string, len(m))
	for i, e := range m {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

func (m multiError) Unwrap() []error { return m }

func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return multiError(errs)
}

// defaultPhrases parses the embedded lists.
func defaultPhrases() ([]phrase, error) {
	ents, err := fs.ReadDir(embeddedPhrases, "phrases")
	if err != nil {
		return nil, err
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	var all []phrase
	for _, e := range ents {
		f, err := embeddedPhrases.Open("phrases/" + e.Name())
		if err != nil {
			return nil, err
		}
		ps, err := parsePhrases("phrases/"+e.Name(), f)
		f.Close()
		if err != nil {
			return nil, err
		}
		all = append(all, ps...)
	}
	return all, nil
}

// loadPhraseFile parses an extra phrase file from disk.
func loadPhraseFile(file string) ([]phrase, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("loading phrase file: %w", err)
	}
	defer f.Close()
	return parsePhrases(file, f)
}

// FNV-1a, 64 bit: the word hash of the matcher.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hashWord is FNV-1a, 64 bit.
func hashWord(w []byte) uint64 {
	h := uint64(fnvOffset)
	for _, c := range w {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

// CheckPhraseFile reads a phrase file and reports its problems: a
// *PhraseError per bad line (errors.As / the Unwrap() []error of a
// joined error), or the error opening it.
func CheckPhraseFile(path string) error {
	_, err := loadPhraseFile(path)
	return err
}
