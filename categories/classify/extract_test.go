package classify

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestExtract(t *testing.T) {
	page := `<!doctype html><html><head><title>Best Online Casino</title>
<meta name="description" content="Free spins every day">
<meta property="og:title" content="Casino Royale">
<meta name="keywords" content="hidden keywords">
<style>.casino{color:red} body{}</style>
<script>var porn = "not shown";</script>
</head><body><h1>Welcome</h1><p>Play c<b>a</b>sino games</p><div>second</div><p>third&amp;fourth</p>
<noscript><p>noscript text</p></noscript><template><p>template text</p></template>
<svg><text>svg text</text></svg><script type="module">import x</script>
<ul><li>one</li><li>two</li></ul></body></html>`
	got, err := ExtractText(strings.NewReader(page), 0)
	if err != nil {
		t.Fatal(err)
	}
	words := strings.Join(Words(got), " ")
	want := "best online casino free spins every day casino royale welcome play casino games second third fourth one two"
	if words != want {
		t.Fatalf("extracted words\n %q\nwant\n %q", words, want)
	}
}

func TestExtractLimit(t *testing.T) {
	// The reader is read only up to the limit: a huge page (or a video
	// served as text/html) is never read in full.
	r := &countingReader{r: strings.NewReader("<p>casino</p>" + strings.Repeat("<p>filler text</p>", 100000))}
	got, err := ExtractText(r, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if r.n > 1024 {
		t.Fatalf("read %d bytes with a 1024 limit", r.n)
	}
	if !strings.Contains(got, "casino") {
		t.Fatalf("lost the start of the page: %q", got[:50])
	}
}

func TestExtractUnterminated(t *testing.T) {
	for _, page := range []string{"<script>casino", "<p>casino <b", "<!-- casino", "<title>casino", "plain text, no tags: casino", "<p a='unterminated>casino"} {
		if _, err := ExtractText(strings.NewReader(page), 0); err != nil {
			t.Errorf("%q: %v", page, err)
		}
	}
}

func TestExtractReadError(t *testing.T) {
	boom := errors.New("connection reset")
	_, err := ExtractText(io.MultiReader(strings.NewReader("<p>casino"), errReaderOnly{boom}), 0)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the read error", err)
	}
}

type errReaderOnly struct{ err error }

func (e errReaderOnly) Read([]byte) (int, error) { return 0, e.err }

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func FuzzExtract(f *testing.F) {
	for _, s := range []string{
		"<html><head><title>t</title></head><body><p>casino</p></body></html>",
		"<script>x</script><style>y</style><noscript>z",
		"<meta name=description content='free spins'>",
		"c&#97;sino &amp; p&#x30;rn",
		"<svg><script>a</script></svg><template><template>",
		"\xff\xfe<p>\xc3",
		"كازينو <b>اون</b> لاين",
	} {
		f.Add([]byte(s), 64)
	}
	f.Fuzz(func(t *testing.T, page []byte, limit int) {
		limit = limit%4096 + 1
		if limit <= 0 {
			limit += 4096
		}
		r := &countingReader{r: strings.NewReader(string(page))}
		var total int
		err := Extract(r, limit, func(p []byte) { total += len(p) })
		if err != nil {
			t.Fatalf("error on an in-memory page: %v", err)
		}
		if r.n > limit {
			t.Fatalf("read %d bytes past the limit %d", r.n, limit)
		}
		// Scoring whatever came out must not panic either, and stays in range.
		res := Default().Score(page)
		for _, v := range res.Scores {
			if v < 0 || v > 1 {
				t.Fatalf("score %v out of range", v)
			}
		}
	})
}
