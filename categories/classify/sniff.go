package classify

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"strings"
	"sync"

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
// image, a script or a download. Only the media type before any ';'
// counts, as for a browser: parameters a strict parser would refuse (a
// broken charset) do not stop a browser rendering the page, so they do
// not stop it being scored either. It does not allocate: the proxy asks
// for every response.
func Scorable(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(mt)
	return strings.EqualFold(mt, "text/html") || strings.EqualFold(mt, "application/xhtml+xml")
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
	buf, pooled := getBuf(limit)
	n, rerr := io.ReadFull(body, buf)
	replay := &replayBody{pre: buf[:n], rest: body, c: body}
	if pooled {
		replay.buf = buf
	}
	if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
		rerr = nil
	}
	if rerr != nil {
		// Replay what came, then the same error.
		replay.rest = errorReader{rerr}
		return nil, replay, rerr
	}
	prefix := buf[:n]
	var text io.Reader
	switch strings.ToLower(strings.TrimSpace(contentEncoding)) {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := getGzip(prefix)
		if err != nil {
			return nil, replay, err
		}
		defer gzipReaders.Put(zr)
		text = zr
	case "deflate":
		// RFC 9110 says zlib; some servers send raw deflate.
		if zr, err := zlib.NewReader(bytes.NewReader(prefix)); err == nil {
			text = zr
		} else {
			text = flate.NewReader(bytes.NewReader(prefix))
		}
	default:
		return nil, replay, ErrNotScorable
	}
	decoded := prefix
	if len(decoded) > maxDecoded {
		decoded = decoded[:maxDecoded]
	}
	if text != nil {
		// A truncated compressed prefix ends in an unexpected EOF: what
		// was decoded up to there is what we score.
		d, _ := getBuf(maxDecoded)
		defer putBuf(d)
		n, _ := io.ReadFull(&eofOnError{r: text}, d)
		decoded = d[:n]
	}
	if enc, name, _ := charset.DetermineEncoding(decoded, contentType); name != "utf-8" && enc != unicode.UTF8 {
		if d, _, err := transform.Bytes(enc.NewDecoder(), decoded); err == nil {
			decoded = d
		}
	}
	var r bytes.Reader
	r.Reset(decoded)
	res, _ := c.ScoreHTML(&r, maxDecoded)
	return res, replay, nil
}

// Sniff's buffers of DefaultSniffLimit bytes are pooled: the proxy sniffs
// every page it scores, and a fresh 64 KiB per page is most of what a
// page's scoring allocates. (DefaultSniffLimit == maxDecoded.)
var sniffBufs = sync.Pool{New: func() any { return new([DefaultSniffLimit]byte) }}

// getBuf returns a buffer of n bytes, pooled when n is DefaultSniffLimit
// or less.
func getBuf(n int) ([]byte, bool) {
	if n > DefaultSniffLimit {
		return make([]byte, n), false
	}
	return sniffBufs.Get().(*[DefaultSniffLimit]byte)[:n], true
}

// putBuf gives back a buffer from getBuf that was pooled.
func putBuf(b []byte) {
	sniffBufs.Put((*[DefaultSniffLimit]byte)(b[:DefaultSniffLimit]))
}

var gzipReaders sync.Pool // *gzip.Reader

// getGzip returns a pooled gzip reader reading p.
func getGzip(p []byte) (*gzip.Reader, error) {
	if zr, ok := gzipReaders.Get().(*gzip.Reader); ok {
		if err := zr.Reset(bytes.NewReader(p)); err != nil {
			gzipReaders.Put(zr)
			return nil, err
		}
		return zr, nil
	}
	return gzip.NewReader(bytes.NewReader(p))
}

// replayBody replays the sniffed prefix, then reads the rest of the body.
// The prefix's buffer goes back to the pool once it is read out or the
// body closed, whichever comes first; reading the rest is not locked, so
// a Close can interrupt a Read blocked on the upstream.
type replayBody struct {
	mu     sync.Mutex
	buf    []byte // pooled buffer holding pre, or nil
	pre    []byte // what is left of the prefix
	closed bool
	rest   io.Reader
	c      io.Closer
}

func (b *replayBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return 0, errClosed
	}
	if len(b.pre) > 0 {
		n := copy(p, b.pre)
		b.pre = b.pre[n:]
		if len(b.pre) == 0 {
			b.release()
		}
		b.mu.Unlock()
		return n, nil
	}
	b.release() // an empty prefix
	b.mu.Unlock()
	return b.rest.Read(p)
}

func (b *replayBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.pre = nil
	b.release()
	b.mu.Unlock()
	return b.c.Close()
}

// release gives the prefix's buffer back; b.mu is held.
func (b *replayBody) release() {
	if b.buf != nil {
		putBuf(b.buf)
		b.buf = nil
	}
}

var errClosed = errors.New("read on a closed body")

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
