package classify

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/schoolgate/schoolgate/categories"
)

func TestModelEmbedded(t *testing.T) {
	if defaultModelErr != nil {
		t.Fatalf("model.txt: %v (go run ./categories/classify/train)", defaultModelErr)
	}
	for _, c := range ContentCategories() {
		if _, ok := defaultModel.w[c]; !ok {
			t.Errorf("model.txt has no weights for %s", c)
		}
	}
	for _, bad := range []string{
		"adult 1 2 3\n",
		"features: bias\nadult 1\n",
		"features: " + strings.Join(featureNames[:], " ") + "\nnosuch" + strings.Repeat(" 0", numFeatures) + "\n",
		"features: " + strings.Join(featureNames[:], " ") + "\nadult" + strings.Repeat(" NaN", numFeatures) + "\n",
		"features: " + strings.Join(featureNames[:], " ") + "\n# " + strings.Repeat("x", 70000) + "\n",
	} {
		if _, err := parseModel([]byte(bad)); err == nil {
			t.Errorf("parseModel(%q) accepted", bad)
		}
	}
}

// TestModelUpToDate retrains on the training part and wants the
// committed model.txt: the weights are what the command in the repository
// makes of the phrase lists and pages as they are.
func TestModelUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the model")
	}
	var pages []TrainPage
	for _, part := range []string{"train", "pages"} {
		for _, p := range loadPart(t, filepath.Join("testdata", part)) {
			b, err := os.ReadFile(p.file)
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, TrainPage{Name: filepath.Base(p.file), Label: p.label, HTML: b})
		}
	}
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	got, rep, err := c.Train(pages, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, modelTxt) {
		t.Fatalf("model.txt is not what training gives now: run go run ./categories/classify/train\n%s", rep)
	}
	if _, _, err := c.Train([]TrainPage{{Name: "x", Label: "nosuch"}}, TrainOptions{}); err == nil {
		t.Error("Train accepted an unknown label")
	}
}

func TestRepeatsDoNotCount(t *testing.T) {
	c := Default()
	once := c.Score([]byte("online casino free spins deposit bonus roulette")).Score(categories.Gambling)
	many := c.Score([]byte(strings.Repeat("online casino free spins deposit bonus roulette ", 50))).Score(categories.Gambling)
	if once != many {
		t.Errorf("repeating the page's phrases changed the score: %.3f once, %.3f fifty times", once, many)
	}
	// one phrase, however often, never decides at the default threshold
	for _, text := range []string{strings.Repeat("منشیات ", 30), strings.Repeat("<h1>casino</h1>", 10)} {
		r, err := c.ScoreHTML(strings.NewReader("<title>casino</title>"+text), 0)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Over(0).Empty() {
			t.Errorf("one phrase repeated put the page in %v", r.Over(0))
		}
	}
}

func TestZonesCount(t *testing.T) {
	c := Default()
	body := "<p>online casino</p><p>free spins and roulette</p>"
	inBody, _ := c.ScoreHTML(strings.NewReader("<title>Welcome</title>"+body), 0)
	inTitle, _ := c.ScoreHTML(strings.NewReader("<title>Online casino</title><h1>Free spins</h1>"+body), 0)
	if !(inTitle.Score(categories.Gambling) > inBody.Score(categories.Gambling)) {
		t.Errorf("phrases in the title and a heading count no more than in the body: %.3f vs %.3f",
			inTitle.Score(categories.Gambling), inBody.Score(categories.Gambling))
	}
}

func TestExtractSignals(t *testing.T) {
	page := `<html><head><title>T</title><meta name="rating" content="RTA-5042-1996-1400-1577-RTA">
<meta name="description" content="Described"></head><body><h2>Heading</h2>
<a href="magnet:?xt=urn:btih:abc">Linked</a><form><label>Labelled</label><input type="password" name="p">
<input type="text" placeholder="Placeholder"><input type="submit" value="Submitted"></form><p>Only £29.99 today</p></body></html>`
	got := map[string]zone{}
	var sigs [numSignals]bool
	err := extract(strings.NewReader(page), 0, func(z zone, p []byte) {
		for _, w := range Words(string(p)) {
			got[w] = z
		}
	}, func(s signal) { sigs[s] = true })
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]zone{"t": zoneTitle, "described": zoneTitle, "heading": zoneHeading, "linked": zoneLink,
		"labelled": zoneForm, "placeholder": zoneForm, "submitted": zoneForm, "only": zoneBody}
	for w, z := range want {
		if g, ok := got[w]; !ok || g != z {
			t.Errorf("%q: zone %v (found %v), want %v", w, g, ok, z)
		}
	}
	for s := signal(0); s < numSignals; s++ {
		if !sigs[s] && s != sigPrice {
			t.Errorf("signal %d not seen", s)
		}
	}
	var none [numSignals]bool
	extract(strings.NewReader("<p>Price: 30 apples, $ signs and a <a href=/x>link</a></p>"), 0, func(zone, []byte) {}, func(s signal) { none[s] = true })
	if none != [numSignals]bool{} {
		t.Errorf("signals from a plain page: %v", none)
	}
}

// TestPrices: the tokenizer finds a currency sign by a number.
func TestPrices(t *testing.T) {
	c := Default()
	for text, want := range map[string]bool{
		"Only £29.99 today": true, "49,90 € pro Monat": true, "$10 a month": true, "from 10$": true,
		"R$ 300": true, "25 zł": true, "€ 5": true, "500 ₺": true, "US$ 20": true,
		"30 apples and $ signs": false, "the € rose": false, "2024": false, "zł alone": false,
		"cost: 10 euros": false,
	} {
		ev, err := c.evidenceOf(strings.NewReader("<p>" + text + "</p>"))
		if err != nil {
			t.Fatal(err)
		}
		if got := ev.shape[sigPrice]; got != want {
			t.Errorf("%q: price %v, want %v", text, got, want)
		}
	}
}

// TestNgramExperiment runs the n-gram experiment of the train command on
// a few pages: it trains and reports both variants.
func TestNgramExperiment(t *testing.T) {
	read := func(part string, n int) []TrainPage {
		var out []TrainPage
		for i, p := range loadPart(t, filepath.Join("testdata", part)) {
			if i%n != 0 {
				continue
			}
			b, err := os.ReadFile(p.file)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, TrainPage{Name: filepath.Base(p.file), Label: p.label, HTML: b})
		}
		return out
	}
	rep, err := Default().NgramExperiment(read("train", 8), read("heldout", 8), 0.01)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cross-validated, page features", "cross-validated, + n-grams", "held-out, model in use", "held-out, + n-grams"} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q:\n%s", want, rep)
		}
	}
	t.Log(rep)
}
