package classify

import (
	"bytes"
	"io"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// DefaultExtractLimit is how much of a page is read when no limit is
// given: enough for the title, the description and the first screens of
// text, where a page says what it is.
const DefaultExtractLimit = 64 << 10

// sep goes between pieces of text so words of two elements never join.
var sep = []byte{'\n'}

// Extract streams the visible text of an HTML page to emit: the title, the
// meta description (and og:title/og:description), headings and body text,
// not scripts, styles, noscript, templates or SVG. It reads at most limit
// bytes of r (0: DefaultExtractLimit) and never holds more than that; the
// byte slices given to emit are valid only during the call. A page that
// is not HTML at all is read as text. The error is a read error of r, if
// any; a truncated or malformed page is not an error.
func Extract(r io.Reader, limit int, emit func([]byte)) error {
	if limit <= 0 {
		limit = DefaultExtractLimit
	}
	lr := &errReader{r: io.LimitReader(r, int64(limit))}
	z := html.NewTokenizer(lr)
	z.SetMaxBuf(limit)
	skip := 0 // depth inside elements whose text is not shown
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			// EOF, the limit, or a token longer than the limit: the
			// page's first part has been read either way.
			return lr.err
		case html.TextToken:
			if skip > 0 {
				continue
			}
			emit(text(z))
		case html.StartTagToken, html.SelfClosingTagToken:
			a := tagAtom(z.Raw())
			switch a {
			case atom.Script, atom.Style, atom.Noscript, atom.Template, atom.Svg, atom.Math, atom.Object:
				if tt == html.StartTagToken {
					skip++
				}
			case atom.Meta:
				metaText(z, emit)
			default:
				if !inline(a) {
					emit(sep)
				}
			}
		case html.EndTagToken:
			switch a := tagAtom(z.Raw()); a {
			case atom.Script, atom.Style, atom.Noscript, atom.Template, atom.Svg, atom.Math, atom.Object:
				if skip > 0 {
					skip--
				}
			default:
				if !inline(a) {
					emit(sep)
				}
			}
		}
	}
}

// text is the text token's text. Text converts newlines, NULs and
// entities, each a pass over the bytes; the text of most tokens has none
// of them, so one quick look finds the raw bytes are the text already.
func text(z *html.Tokenizer) []byte {
	raw := z.Raw()
	if bytes.IndexByte(raw, '&') >= 0 || bytes.IndexByte(raw, '\r') >= 0 || bytes.IndexByte(raw, 0) >= 0 {
		return z.Text()
	}
	return raw
}

// inline reports whether a tag sits inside a line of text, so that it must
// not split a word: "c<b>a</b>sino" reads "casino".
func inline(a atom.Atom) bool {
	switch a {
	case atom.A, atom.B, atom.I, atom.U, atom.S, atom.Em, atom.Strong, atom.Span, atom.Small,
		atom.Big, atom.Font, atom.Mark, atom.Sub, atom.Sup, atom.Abbr, atom.Code, atom.Tt,
		atom.Q, atom.Cite, atom.Del, atom.Ins, atom.Kbd, atom.Samp, atom.Var, atom.Wbr:
		return true
	}
	return false
}

// tagAtom reads the tag name from a tag token's raw bytes ("<P class=x>",
// "</p >"). The tokenizer's TagName copies the name on every call; this is
// the hot loop of extraction, so it reads the name in place.
func tagAtom(raw []byte) atom.Atom {
	i := 1 // past '<'
	if i < len(raw) && raw[i] == '/' {
		i++
	}
	var name [16]byte
	n := 0
	for ; i < len(raw); i++ {
		c := raw[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		} else if !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			break
		}
		if n == len(name) {
			return 0 // longer than any tag we care about
		}
		name[n] = c
		n++
	}
	return atom.Lookup(name[:n])
}

// metaText emits the content of a description or title meta tag.
func metaText(z *html.Tokenizer, emit func([]byte)) {
	var content []byte
	useful := false
	for {
		k, v, more := z.TagAttr()
		if k == nil && !more {
			break
		}
		switch string(k) {
		case "name", "property":
			switch string(bytes.ToLower(v)) {
			case "description", "og:description", "og:title", "twitter:title", "twitter:description":
				useful = true
			}
		case "content":
			content = v
		}
		if !more {
			break
		}
	}
	if useful && len(content) > 0 {
		emit(content)
		emit(sep)
	}
}

// errReader remembers the first error that is not EOF.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// ExtractText returns the visible text of an HTML page as a string, for
// tools and tests.
func ExtractText(r io.Reader, limit int) (string, error) {
	var b bytes.Buffer
	err := Extract(r, limit, func(p []byte) { b.Write(p) })
	return b.String(), err
}
