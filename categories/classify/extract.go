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
	return extract(r, limit, func(_ zone, p []byte) { emit(p) }, nil)
}

// zone is where on a page a piece of text stands. A page says what it is
// in its title, headings, links and forms more than in its running text,
// so a phrase counts more there (see zoneWeight).
type zone uint8

const (
	zoneBody    zone = iota
	zoneTitle        // title, meta description, og:title
	zoneHeading      // h1..h6
	zoneLink         // a, nav links
	zoneForm         // form labels, buttons, options, placeholders
	numZones
)

// signal is a fact about a page's shape rather than its words.
type signal uint8

const (
	sigPassword signal = iota // a password field
	sigMagnet                 // a magnet: link
	sigRTA                    // the RTA adult label (meta rating)
	sigForm                   // a form
	sigPrice                  // a price (currency symbol by a number)
	numSignals
)

// extract is Extract with the zone of each piece of text, and the page's
// shape signals given to sig (nil: not wanted).
func extract(r io.Reader, limit int, emit func(zone, []byte), sig func(signal)) error {
	if limit <= 0 {
		limit = DefaultExtractLimit
	}
	lr := &errReader{r: io.LimitReader(r, int64(limit))}
	z := html.NewTokenizer(lr)
	z.SetMaxBuf(limit)
	skip := 0 // depth inside elements whose text is not shown
	// depth inside title, headings, links and form controls; counters,
	// not a stack, so that broken nesting cannot grow anything.
	var inTitle, inHead, inLink, inForm int
	cur := func() zone {
		switch {
		case inTitle > 0:
			return zoneTitle
		case inHead > 0:
			return zoneHeading
		case inForm > 0:
			return zoneForm
		case inLink > 0:
			return zoneLink
		}
		return zoneBody
	}
	count := func(n *int, start bool) {
		if start {
			*n++
		} else if *n > 0 {
			*n--
		}
	}
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
			t := text(z)
			if sig != nil && hasPrice(t) {
				sig(sigPrice)
			}
			emit(cur(), t)
		case html.StartTagToken, html.SelfClosingTagToken:
			raw := z.Raw()
			a := tagAtom(raw)
			start := tt == html.StartTagToken
			switch a {
			case atom.Script, atom.Style, atom.Noscript, atom.Template, atom.Svg, atom.Math, atom.Object:
				if start {
					skip++
				}
			case atom.Meta:
				metaText(z, emit, sig)
			case atom.Input:
				if sig != nil {
					inputText(z, raw, emit, sig)
				}
			default:
				switch a {
				case atom.Title:
					count(&inTitle, start)
				case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
					count(&inHead, start)
				case atom.A:
					count(&inLink, start)
					if sig != nil && bytes.Contains(raw, []byte("magnet:?")) {
						sig(sigMagnet)
					}
				case atom.Button, atom.Label, atom.Option, atom.Select, atom.Legend, atom.Textarea:
					count(&inForm, start)
				case atom.Form:
					if sig != nil {
						sig(sigForm)
					}
				}
				if !inline(a) {
					emit(cur(), sep)
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
					emit(cur(), sep)
				}
				switch a {
				case atom.Title:
					count(&inTitle, false)
				case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
					count(&inHead, false)
				case atom.A:
					count(&inLink, false)
				case atom.Button, atom.Label, atom.Option, atom.Select, atom.Legend, atom.Textarea:
					count(&inForm, false)
				}
			}
		}
	}
}

// hasPrice reports whether t holds a currency symbol next to a digit
// ("£29.99", "49 €", "$10", "25 zł", "₺"): the price list of a shop or a
// service. The symbols are found by their lead byte (SIMD IndexByte):
// this runs over every piece of text of every page.
func hasPrice(t []byte) bool {
	for _, lead := range [...]byte{'$', 0xC2, 0xE2, 0xC5} {
		for off := 0; off < len(t); {
			k := bytes.IndexByte(t[off:], lead)
			if k < 0 {
				break
			}
			i := off + k
			off = i + 1
			n := 0 // the symbol's length
			switch {
			case lead == '$':
				n = 1
			case bytes.HasPrefix(t[i:], pound), bytes.HasPrefix(t[i:], zloty[1:]):
				n = 2
			case bytes.HasPrefix(t[i:], euro), bytes.HasPrefix(t[i:], lira):
				n = 3
			default:
				continue
			}
			if digitNear(t, i, i+n) {
				return true
			}
		}
	}
	return false
}

var (
	pound = []byte("£")
	euro  = []byte("€")
	lira  = []byte("₺")
	zloty = []byte("zł")
)

// digitNear reports whether a digit stands just before t[i:] or just
// after t[:j], a space apart at most.
func digitNear(t []byte, i, j int) bool {
	if j < len(t) && t[j] == ' ' {
		j++
	}
	if j < len(t) && t[j] >= '0' && t[j] <= '9' {
		return true
	}
	i--
	if i >= 0 && t[i] == ' ' {
		i--
	}
	return i >= 0 && t[i] >= '0' && t[i] <= '9'
}

// inputText reads an input: a password field is a signal; the
// placeholder and the label of a button are form text.
func inputText(z *html.Tokenizer, raw []byte, emit func(zone, []byte), sig func(signal)) {
	var typ, val, ph []byte
	for {
		k, v, more := z.TagAttr()
		switch string(k) {
		case "type":
			typ = v
		case "value":
			val = v
		case "placeholder":
			ph = v
		}
		if !more {
			break
		}
	}
	switch string(bytes.ToLower(typ)) {
	case "password":
		sig(sigPassword)
	case "submit", "button":
		if len(val) > 0 {
			emit(zoneForm, val)
			emit(zoneForm, sep)
		}
	}
	if len(ph) > 0 {
		emit(zoneForm, ph)
		emit(zoneForm, sep)
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

// metaText emits the content of a description or title meta tag, as
// title text; the RTA label is a signal.
func metaText(z *html.Tokenizer, emit func(zone, []byte), sig func(signal)) {
	var content []byte
	useful, rating := false, false
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
			case "rating":
				rating = true
			}
		case "content":
			content = v
		}
		if !more {
			break
		}
	}
	if rating && sig != nil && bytes.Contains(bytes.ToUpper(content), []byte("RTA-5042")) {
		sig(sigRTA)
	}
	if useful && len(content) > 0 {
		emit(zoneTitle, content)
		emit(zoneTitle, sep)
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
