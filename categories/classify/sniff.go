package classify

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"mime"
	"strings"

	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// DefaultSniffLimit is how much of a response body the proxy reads before
// deciding: the bytes on the wire (compressed or not).
const DefaultSniffLimit = 64 << 10

// maxDecoded bounds the decompressed text of a sniffed prefix: what is
// scored is the page's first DefaultExtractLimit bytes, as `schoolgate
// classify` scores a saved page (and a gzip bomb stays a small read).
const maxDecoded = DefaultExtractLimit

// ErrNotScorable is returned by Sniff for a body it cannot read as text:
// an encoding it does not decode (br, zstd).
var ErrNotScorable = errors.New("content encoding not decoded for scoring")

// Scorable reports whether a response with this Content-Type is one the
// content classifier reads: HTML (and XHTML) only. Never a video, an
// image, a script or a download.
func Scorable(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "text/html" || mt == "application/xhtml+xml"
}

// Sniff reads the first part of a response body (at most limit bytes as
// sent, 0: DefaultSniffLimit), scores its visible text, and returns a body
// that replays those bytes and then streams the rest, untouched and
// unbuffered. contentEncoding and contentType are the response's headers:
// gzip and deflate are decoded for scoring (the bytes replayed stay as
// sent), the charset is taken from the header or the page's meta tag.
//
// When the body cannot be scored (an encoding not decoded, a read error)
// the result is nil with the error, and the returned body still replays
// what was read: the caller can pass it on as it is.
func (c *Classifier) Sniff(body io.ReadCloser, contentEncoding, contentType string, limit int) (*Result, io.ReadCloser, error) {
	if limit <= 0 {
		limit = DefaultSniffLimit
	}
	buf := make([]byte, limit)
	n, rerr := io.ReadFull(body, buf)
	buf = buf[:n]
	replay := &replayBody{r: io.MultiReader(bytes.NewReader(buf), body), c: body}
	if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
		rerr = nil
	}
	if rerr != nil {
		// Replay what came, then the same error.
		replay.r = io.MultiReader(bytes.NewReader(buf), errorReader{rerr})
		return nil, replay, rerr
	}
	var text io.Reader
	switch strings.ToLower(strings.TrimSpace(contentEncoding)) {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(buf))
		if err != nil {
			return nil, replay, err
		}
		text = zr
	case "deflate":
		// RFC 9110 says zlib; some servers send raw deflate.
		if zr, err := zlib.NewReader(bytes.NewReader(buf)); err == nil {
			text = zr
		} else {
			text = flate.NewReader(bytes.NewReader(buf))
		}
	default:
		return nil, replay, ErrNotScorable
	}
	decoded := buf
	if len(decoded) > maxDecoded {
		decoded = decoded[:maxDecoded]
	}
	if text != nil {
		// A truncated compressed prefix ends in an unexpected EOF: what
		// was decoded up to there is what we score.
		d := make([]byte, maxDecoded)
		n, _ := io.ReadFull(&eofOnError{r: text}, d)
		decoded = d[:n]
	}
	if enc, name, _ := charset.DetermineEncoding(decoded, contentType); name != "utf-8" && enc != unicode.UTF8 {
		if d, _, err := transform.Bytes(enc.NewDecoder(), decoded); err == nil {
			decoded = d
		}
	}
	res, _ := c.ScoreHTML(bytes.NewReader(decoded), maxDecoded)
	return res, replay, nil
}

type replayBody struct {
	r io.Reader
	c io.Closer
}

func (b *replayBody) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b *replayBody) Close() error               { return b.c.Close() }

type errorReader struct{ err error }

func (e errorReader) Read([]byte) (int, error) { return 0, e.err }

// eofOnError turns a decoder's error on a cut stream into EOF.
type eofOnError struct{ r io.Reader }

func (e *eofOnError) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		err = io.EOF
	}
	return n, err
}
