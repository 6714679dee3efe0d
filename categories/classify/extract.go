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
	sigPrice                  // a price (currency sign by a number; found by the tokenizer)
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
	e := extractor{z: z, emit: emit, sig: sig}
	for {
		switch tt := z.Next(); tt {
		case html.ErrorToken:
			// EOF, the limit, or a token longer than the limit: the
			// page's first part has been read either way.
			return lr.err
		case html.TextToken:
			if e.skip == 0 {
				emit(e.zn, text(z))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			e.startTag(tt == html.StartTagToken)
		case html.EndTagToken:
			e.endTag()
		}
	}
}

// extractor is extract's state between tokens.
type extractor struct {
	z    *html.Tokenizer
	emit func(zone, []byte)
	sig  func(signal)

	skip int // depth inside elements whose text is not shown
	// depth inside title, headings, links and form controls; counters,
	// not a stack, so that broken nesting cannot grow anything. zn is the
	// zone they make, worked out again only when one changes.
	depth [numZones]int
	zn    zone
}

// startTag handles a start tag (start) or a self-closing one: it may hide
// text, carry text or signals of its own (meta, input), change the zone,
// or end a word (a block element).
func (e *extractor) startTag(start bool) {
	raw := e.z.Raw()
	a := tagAtom(raw)
	switch {
	case hidesText(a):
		if start {
			e.skip++
		}
		return
	case a == atom.Meta:
		metaText(e.z, e.emit, e.sig)
		return
	case a == atom.Input:
		if e.sig != nil {
			inputText(e.z, e.emit, e.sig)
		}
		return
	}
	if zn, ok := zoneOf(a); ok {
		e.rezone(zn, start)
	}
	if e.sig != nil {
		switch {
		case a == atom.A && bytes.Contains(raw, []byte("magnet:?")):
			e.sig(sigMagnet)
		case a == atom.Form:
			e.sig(sigForm)
		}
	}
	if !inline(a) {
		e.emit(e.zn, sep)
	}
}

// endTag handles an end tag: the end of hidden text, or of a block (which
// ends a word, in the zone it ends) and of a zone.
func (e *extractor) endTag() {
	a := tagAtom(e.z.Raw())
	if hidesText(a) {
		if e.skip > 0 {
			e.skip--
		}
		return
	}
	if !inline(a) {
		e.emit(e.zn, sep)
	}
	if zn, ok := zoneOf(a); ok {
		e.rezone(zn, false)
	}
}

// hidesText reports the elements whose text a reader does not see.
func hidesText(a atom.Atom) bool {
	switch a {
	case atom.Script, atom.Style, atom.Noscript, atom.Template, atom.Svg, atom.Math, atom.Object:
		return true
	}
	return false
}

// zoneOf is the zone an element makes of the text inside it, if any.
func zoneOf(a atom.Atom) (zone, bool) {
	switch a {
	case atom.Title:
		return zoneTitle, true
	case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		return zoneHeading, true
	case atom.A:
		return zoneLink, true
	case atom.Button, atom.Label, atom.Option, atom.Select, atom.Legend, atom.Textarea:
		return zoneForm, true
	}
	return zoneBody, false
}

// rezone counts an element of zone z opening (start) or closing, and works
// out the zone again: title outranks heading, form and link, in that order.
func (e *extractor) rezone(z zone, start bool) {
	if start {
		e.depth[z]++
	} else if e.depth[z] > 0 {
		e.depth[z]--
	}
	switch {
	case e.depth[zoneTitle] > 0:
		e.zn = zoneTitle
	case e.depth[zoneHeading] > 0:
		e.zn = zoneHeading
	case e.depth[zoneForm] > 0:
		e.zn = zoneForm
	case e.depth[zoneLink] > 0:
		e.zn = zoneLink
	default:
		e.zn = zoneBody
	}
}

// inputText reads an input: a password field is a signal; the
// placeholder and the label of a button are form text.
func inputText(z *html.Tokenizer, emit func(zone, []byte), sig func(signal)) {
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
