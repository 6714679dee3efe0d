package classify

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/schoolgate/schoolgate/categories"
	"golang.org/x/text/encoding/charmap"
)

func readPage(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "pages", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type closeCounter struct {
	io.Reader
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

func TestSniff(t *testing.T) {
	page := readPage(t, "en-casino.html")
	gz := func(b []byte) []byte {
		var out bytes.Buffer
		w := gzip.NewWriter(&out)
		w.Write(b)
		w.Close()
		return out.Bytes()
	}
	zl := func(b []byte) []byte {
		var out bytes.Buffer
		w := zlib.NewWriter(&out)
		w.Write(b)
		w.Close()
		return out.Bytes()
	}
	raw := func(b []byte) []byte {
		var out bytes.Buffer
		w, _ := flate.NewWriter(&out, 5)
		w.Write(b)
		w.Close()
		return out.Bytes()
	}
	latin1, _ := charmap.ISO8859_1.NewEncoder().Bytes([]byte("<p>Casino en ligne: machines à sous, tours gratuits, bonus de bienvenue, paris sportifs</p>"))
	big := append(append([]byte{}, page...), bytes.Repeat([]byte("<p>more text after the sniffed part</p>"), 10000)...)
	tests := []struct {
		name, enc, ctype string
		body             []byte
		limit            int
		cat              categories.Category
	}{
		{"identity", "", "text/html", page, 0, categories.Gambling},
		{"gzip", "gzip", "text/html", gz(page), 0, categories.Gambling},
		{"gzip cut by the limit", "gzip", "text/html", gz(big), 2048, categories.Gambling},
		{"deflate zlib", "deflate", "text/html", zl(page), 0, categories.Gambling},
		{"deflate raw", "deflate", "text/html", raw(page), 0, categories.Gambling},
		{"latin-1 by header", "", "text/html; charset=iso-8859-1", latin1, 0, categories.Gambling},
		{"long page", "", "text/html", big, 0, categories.Gambling},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := &closeCounter{Reader: bytes.NewReader(tt.body)}
			res, rb, err := Default().Sniff(cc, tt.enc, tt.ctype, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if res.Score(tt.cat) < DefaultThreshold {
				t.Errorf("%v score %.2f; matches %+v", tt.cat, res.Score(tt.cat), res.Matches)
			}
			// the body replays exactly what was sent
			got, err := io.ReadAll(rb)
			if err != nil || !bytes.Equal(got, tt.body) {
				t.Fatalf("replayed %d bytes (err %v), want the %d sent", len(got), err, len(tt.body))
			}
			rb.Close()
			if cc.closed != 1 {
				t.Fatalf("upstream body closed %d times", cc.closed)
			}
		})
	}
}

func TestSniffReadsOnlyThePrefix(t *testing.T) {
	// A body that never ends: Sniff reads its limit and returns.
	r := &countingReader{r: io.MultiReader(strings.NewReader("<title>casino</title>"), zeroReader{})}
	res, _, err := Default().Sniff(io.NopCloser(r), "", "text/html", 4096)
	if err != nil || res == nil {
		t.Fatal(err)
	}
	if r.n != 4096 {
		t.Fatalf("read %d bytes, want the 4096 limit", r.n)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

func TestSniffNotScorable(t *testing.T) {
	body := []byte("\x1b\x00brotli bytes")
	res, rb, err := Default().Sniff(io.NopCloser(bytes.NewReader(body)), "br", "text/html", 0)
	if !errors.Is(err, ErrNotScorable) || res != nil {
		t.Fatalf("res %v err %v", res, err)
	}
	if got, _ := io.ReadAll(rb); !bytes.Equal(got, body) {
		t.Fatal("body not replayed")
	}
	// a bad gzip header: not scored, replayed
	res, rb, err = Default().Sniff(io.NopCloser(bytes.NewReader(body)), "gzip", "text/html", 0)
	if err == nil || res != nil {
		t.Fatalf("bad gzip: res %v err %v", res, err)
	}
	if got, _ := io.ReadAll(rb); !bytes.Equal(got, body) {
		t.Fatal("body not replayed")
	}
}

func TestSniffReadError(t *testing.T) {
	boom := errors.New("reset")
	body := io.NopCloser(io.MultiReader(strings.NewReader("<p>casino"), errReaderOnly{boom}))
	res, rb, err := Default().Sniff(body, "", "text/html", 0)
	if !errors.Is(err, boom) || res != nil {
		t.Fatalf("res %v err %v", res, err)
	}
	got, err := io.ReadAll(rb)
	if string(got) != "<p>casino" || !errors.Is(err, boom) {
		t.Fatalf("replay %q %v: want the bytes read, then the error", got, err)
	}
}

// TestSniffPooledBuffers: the sniffed prefixes share pooled buffers; a
// body not yet read keeps its own while others are sniffed, read and
// closed, and a closed body reads no more of it.
func TestSniffPooledBuffers(t *testing.T) {
	page := func(i int) []byte {
		return bytes.Repeat([]byte(fmt.Sprintf("<p>page %d says casino</p>", i)), 3000)
	}
	sniff := func(i int) io.ReadCloser {
		_, rb, err := Default().Sniff(io.NopCloser(bytes.NewReader(page(i))), "", "text/html", 0)
		if err != nil {
			t.Fatal(err)
		}
		return rb
	}
	first := sniff(0)
	half := make([]byte, 1000)
	if _, err := io.ReadFull(first, half); err != nil || !bytes.Equal(half, page(0)[:1000]) {
		t.Fatalf("first read %q %v", half, err)
	}
	for i := 1; i < 20; i++ {
		rb := sniff(i)
		if i%2 == 0 {
			if got, _ := io.ReadAll(rb); !bytes.Equal(got, page(i)) {
				t.Fatalf("page %d replayed wrong", i)
			}
		}
		rb.Close()
		if n, err := rb.Read(half); n != 0 || err == nil {
			t.Fatalf("read after close: %d %v", n, err)
		}
	}
	rest, err := io.ReadAll(first)
	if err != nil || !bytes.Equal(append(half, rest...), page(0)) {
		t.Fatalf("first page replayed wrong after others were sniffed (%v)", err)
	}
	first.Close()

	// Close while another goroutine reads (the race detector watches).
	for i := 0; i < 10; i++ {
		rb := sniff(i)
		done := make(chan struct{})
		go func() {
			defer close(done)
			io.Copy(io.Discard, rb) //nolint:errcheck
		}()
		rb.Close()
		<-done
	}
}

func TestScorable(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/html": true, "text/html; charset=utf-8": true, "TEXT/HTML": true, "application/xhtml+xml": true,
		"Text/HTML; Charset=UTF-8": true, "text/html;charset=utf-8": true, " text/html": true,
		"video/mp4": false, "image/png": false, "imagex/html": false, "text/plain": false, "application/javascript": false, "": false,
		"text/htmlx": false, "text/html-sandboxed": false, "application/xhtml+xmlx": false, ";text/html": false,
		// a broken parameter: a browser still renders the page, so it is scored
		"text/html; charset=\"": true, "text/html;;": true, "\ttext/html \t; q": true,
	} {
		if got := Scorable(ct); got != want {
			t.Errorf("Scorable(%q) = %v", ct, got)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Scorable("text/plain; charset=utf-8") }); n != 0 {
		t.Errorf("Scorable allocates %v times", n)
	}
}

func BenchmarkSniff64KiB(b *testing.B) {
	c := Default()
	body := benchHTML[:DefaultSniffLimit]
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	cpuLoop(b, func() {
		_, rb, _ := c.Sniff(io.NopCloser(bytes.NewReader(body)), "", "text/html; charset=utf-8", 0)
		rb.Close()
	})
}
