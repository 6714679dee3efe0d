package classify

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/schoolgate/schoolgate/categories"
)

func TestScore(t *testing.T) {
	tests := []struct {
		name string
		text string
		cat  categories.Category
		over bool // cat scores at least DefaultThreshold
	}{
		{"casino promo", "Online casino: 200 free spins, deposit bonus, live roulette and blackjack. Bet now!", categories.Gambling, true},
		{"obfuscated casino", "0nline c a s i n o - fr33 sp1ns - d3posit b0nus - r0ulette", categories.Gambling, true},
		{"gambling help", "Worried about gambling? Problem gambling and gambling addiction harm families. Our helpline offers free confidential support, counselling and treatment; self-exclusion from online casino and betting sites helps recovery.", categories.Gambling, false},
		{"one casino word", "We drove past the casino on the way to the museum.", categories.Gambling, false},
		{"porn", "free porn videos xxx hardcore nude", categories.Adult, true},
		{"sex education", "Relationships and sex education: puberty, consent, contraception and sexual health, for pupils in key stage 3.", categories.Adult, false},
		{"drug shop", "Buy weed online: THC edibles, kush strains, add to cart, discreet shipping", categories.Drugs, true},
		{"ordinary shop", "Add to cart. In stock. Worldwide shipping. 500 grams of coffee beans. Order online today.", categories.Drugs, false},
		{"harm reduction", "Harm reduction: if you take MDMA or cocaine, know the risks, side effects and overdose signs; get support from Talk to Frank.", categories.Drugs, false},
		{"war history", "The history of the First World War: the blood and the guns of the Somme, the kill rate and the war memorial.", categories.Violence, false},
		{"french casino", "Casino en ligne: tours gratuits, bonus de bienvenue, machines à sous et paris sportifs!", categories.Gambling, true},
		{"polish casino", "Kasyno online: darmowe spiny, bonus powitalny, automaty do gry, zakłady bukmacherskie.", categories.Gambling, true},
		{"arabic casino", "كازينو اون لاين: سجل الآن، المراهنات، الروليت والبلاك جاك، القِمار ولفات مجانية", categories.Gambling, true},
		{"one word three times", "منشیات منشیات منشیات", categories.Drugs, false},
		{"german help", "Glücksspielsucht: Hilfe und Beratung bei Spielsucht. Sportwetten und Online Casino können süchtig machen.", categories.Gambling, false},
	}
	c := Default()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.Score([]byte(tt.text))
			if got := r.Score(tt.cat) >= DefaultThreshold; got != tt.over {
				t.Errorf("%v score %.2f, want over %v = %v; matches %+v", tt.cat, r.Score(tt.cat), DefaultThreshold, tt.over, r.Matches)
			}
		})
	}
}

func TestContextLowersScore(t *testing.T) {
	c := Default()
	promo := "online casino free spins deposit bonus roulette"
	base := c.Score([]byte(promo)).Score(categories.Gambling)
	with := c.Score([]byte(promo + " gambling addiction helpline")).Score(categories.Gambling)
	if !(with < base) {
		t.Fatalf("context did not lower the score: %.2f without, %.2f with", base, with)
	}
}

func TestScoreExplains(t *testing.T) {
	r := Default().Score([]byte("online casino online casino free spins. Gambling addiction helpline."))
	var pos, neg bool
	for _, m := range r.Matches {
		if m.Category != categories.Gambling {
			continue
		}
		if m.Phrase == "online casino" && m.Count == 2 && m.Effect > 0 {
			pos = true
		}
		if m.Phrase == "gambling addiction" && m.Effect < 0 {
			neg = true
		}
	}
	if !pos || !neg {
		t.Fatalf("matches do not explain the score: %+v", r.Matches)
	}
	for i := 1; i < len(r.Matches); i++ {
		if abs(r.Matches[i].Effect) > abs(r.Matches[i-1].Effect) {
			t.Fatalf("matches not strongest first: %+v", r.Matches)
		}
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func TestScoreRange(t *testing.T) {
	text := strings.Repeat("online casino free spins deposit bonus roulette blackjack porn xxx buy weed thinspo web proxy unblocked games ", 2000)
	r := Default().Score([]byte(text))
	for i, v := range r.Scores {
		if v < 0 || v > 1 {
			t.Errorf("%v score %v out of 0..1", categories.Category(i), v)
		}
	}
	if r.Over(0).Empty() {
		t.Error("nothing over the default threshold")
	}
	if c, v := r.Top(); v == 0 || c == categories.Unclassified {
		t.Errorf("Top = %v %v", c, v)
	}
	empty := Default().Score(nil)
	if c, v := empty.Top(); v != 0 || c != categories.Unclassified || !empty.Over(0.1).Empty() {
		t.Errorf("empty text: Top = %v %v, Over = %v", c, v, empty.Over(0.1))
	}
}

func TestScoreConcurrent(t *testing.T) {
	c := Default()
	done := make(chan float64)
	for i := 0; i < 8; i++ {
		go func() {
			var s float64
			for j := 0; j < 50; j++ {
				s = c.Score([]byte("online casino free spins deposit bonus")).Score(categories.Gambling)
			}
			done <- s
		}()
	}
	first := <-done
	for i := 1; i < 8; i++ {
		if s := <-done; s != first {
			t.Fatalf("concurrent scores differ: %v vs %v", s, first)
		}
	}
}

func TestWriterMatchesScore(t *testing.T) {
	c := Default()
	text := "Kasyno online: darmowe spiny i bonus powitalny. Online casino."
	w := c.Writer()
	for i := 0; i < len(text); i += 3 {
		w.Write([]byte(text[i:min(i+3, len(text))]))
	}
	got := w.Result().Score(categories.Gambling)
	want := c.Score([]byte(text)).Score(categories.Gambling)
	if got != want {
		t.Fatalf("streamed score %v, whole %v", got, want)
	}
}

func TestExtraPhraseFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "school-extra.txt")
	if err := os.WriteFile(file, []byte("# our own words\ncategory: games\n3 zorblax arena\n3 zorblax league\n~2 respawn\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := New(file)
	if err != nil {
		t.Fatal(err)
	}
	if c.Phrases() <= Default().Phrases() {
		t.Fatalf("extra file added no phrase: %d vs %d", c.Phrases(), Default().Phrases())
	}
	// one phrase alone never decides (singlePhraseCap): the school's
	// words count like the embedded ones, two of them and a supporting one
	r, err := c.ScoreHTML(strings.NewReader("<title>Zorblax Arena</title><h1>The zorblax league</h1><p>Respawn, respawn!</p>"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Score(categories.Games) < DefaultThreshold {
		t.Fatalf("games score %.2f with the extra phrases; matches %+v", r.Score(categories.Games), r.Matches)
	}
	if Default().Score([]byte("zorblax arena")).Score(categories.Games) != 0 {
		t.Fatal("default classifier knows the extra phrase")
	}
}

func TestPhraseFileErrors(t *testing.T) {
	tests := []struct {
		name, file, text, want string
	}{
		{"no category", "mine.txt", "3 casino\n", "no category"},
		{"bad weight", "gambling.txt", "x casino\n", "gambling.txt:1: want"},
		{"zero weight", "gambling.txt", "# c\n0 casino\n", "gambling.txt:2:"},
		{"too heavy", "gambling.txt", "11 casino\n", "weight"},
		{"no words", "gambling.txt", "3 !!!\n", "has no words"},
		{"too long", "gambling.txt", "3 one two three four five six seven eight nine\n", "at most 8"},
		{"unknown category", "x.txt", "category: casinos\n3 x\n", `unknown category "casinos"`},
		{"late category", "gambling.txt", "3 casino\ncategory: adult\n", "before the first phrase"},
		{"positive context", "context.txt", "2 news\n", "must be negative"},
		{"negative support", "gambling.txt", "~-2 news\n", "supporting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parsePhrases(tt.file, strings.NewReader(tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
	_, err := New(filepath.Join(t.TempDir(), "missing.txt"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: err = %v", err)
	}
}

func TestEmbeddedPhrasesParse(t *testing.T) {
	ps, err := defaultPhrases()
	if err != nil {
		t.Fatal(err)
	}
	perCat := map[categories.Category]int{}
	for _, p := range ps {
		perCat[p.cat]++
	}
	for _, c := range []categories.Category{categories.Gambling, categories.Adult, categories.Drugs, categories.SelfHarm,
		categories.Violence, categories.Hate, categories.Extremism, categories.ProxyAvoidance, categories.Games,
		categories.Dating, categories.Piracy} {
		if perCat[c] < 15 {
			t.Errorf("%v: only %d phrases", c, perCat[c])
		}
	}
}
