package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"
)

// extPadding is the padding extension (RFC 7685): it makes a ClientHello
// as large as a test needs.
const extPadding = 21

// FuzzPeekClientHello feeds a client's first bytes to peekClientHello in
// pieces of every size, as TCP segments arrive, including ClientHellos
// larger than a segment (post-quantum key shares), fragmented over many
// records, and larger than any ClientHello may be. The answer must be the
// one the whole input gives, read no further than maxHelloBytes, and keep
// every byte read for the upstream.
func FuzzPeekClientHello(f *testing.F) {
	hello := clientHello(f, &tls.Config{ServerName: "peek.example"})
	pq := clientHello(f, &tls.Config{ServerName: "pq.example", MinVersion: tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519}})
	if len(pq) < 1300 {
		f.Fatalf("the post-quantum ClientHello is %d bytes: not larger than a segment", len(pq))
	}
	big := withExtension(f, hello, extPadding, make([]byte, 12000))
	over := withExtension(f, hello, extPadding, make([]byte, maxRecordLen+10)) // one record too long
	for _, seed := range []struct {
		data  []byte
		chunk uint16
	}{
		{hello, 1},
		{pq, 536}, // the smallest MSS
		{pq, 1448},
		{fragmentHello(pq, 100), 7},
		{big, 1448},
		{fragmentHello(big, 1000), 1000},
		{fragmentHello(big, 512), 333},
		{over, 1448},
		{fragmentHello(over, 4000), 1448}, // records fine, the message over maxHelloLen
		{bytes.Repeat([]byte{22, 3, 1, 0, 1, 1}, 200), 64},
		{append(bytes.Clone(hello), bytes.Repeat([]byte{0xff}, 3000)...), 1448},
		{[]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 3},
	} {
		f.Add(seed.data, seed.chunk)
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		if len(data) > 3*maxHelloBytes {
			return
		}
		size := int(chunk%2048) + 1
		a, b := net.Pipe()
		go func() {
			defer a.Close()
			for i := 0; i < len(data); i += size {
				if _, err := a.Write(data[i:min(i+size, len(data))]); err != nil {
					return // the reader had enough
				}
			}
		}()
		buf, h, err := peekClientHello(b, make([]byte, 0, 16), 5*time.Second)
		b.Close()
		if len(buf) > maxHelloBytes {
			t.Fatalf("read %d bytes, more than maxHelloBytes", len(buf))
		}
		if !bytes.HasPrefix(data, buf) {
			t.Fatalf("the bytes kept for the upstream are not what the client sent")
		}
		whole, werr := parseClientHello(data)
		switch {
		case errors.Is(werr, errNeedMore):
			if err == nil {
				t.Fatalf("an incomplete hello gave %q", h.sni)
			}
		case len(data) <= maxHelloBytes || werr != nil:
			if !errors.Is(err, werr) && !(werr == nil && errors.Is(err, errMalformed) && len(data) > maxHelloBytes) {
				t.Fatalf("in pieces of %d: %v; whole: %v", size, err, werr)
			}
			if err == nil && h != whole {
				t.Fatalf("in pieces of %d: %+v; whole: %+v", size, h, whole)
			}
		}
	})
}

// TestPeekLargeHellos: a post-quantum ClientHello and one padded to 12 KB
// arrive in segments and are read whole; one past the limits is
// malformed, not waited for.
func TestPeekLargeHellos(t *testing.T) {
	hello := clientHello(t, &tls.Config{ServerName: "peek.example"})
	pq := clientHello(t, &tls.Config{ServerName: "pq.example", MinVersion: tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768}})
	big := withExtension(t, hello, extPadding, make([]byte, 12000))
	over := withExtension(t, hello, extPadding, make([]byte, maxRecordLen+10))
	for _, tc := range []struct {
		name string
		data []byte
		sni  string
		err  error
	}{
		{"post-quantum", pq, "pq.example", nil},
		{"post-quantum in 100-byte records", fragmentHello(pq, 100), "pq.example", nil},
		{"12 KB", big, "peek.example", nil},
		{"12 KB in 512-byte records", fragmentHello(big, 512), "peek.example", nil},
		{"record over 16 KiB", over, "", errMalformed},
		{"message over maxHelloLen", fragmentHello(over, 4000), "", errMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer b.Close()
			go func() {
				defer a.Close()
				for i := 0; i < len(tc.data); i += 1448 {
					if _, err := a.Write(tc.data[i:min(i+1448, len(tc.data))]); err != nil {
						return
					}
				}
			}()
			_, h, err := peekClientHello(b, nil, 5*time.Second)
			if h.sni != tc.sni || !errors.Is(err, tc.err) {
				t.Fatalf("sni %q err %v, want %q %v", h.sni, err, tc.sni, tc.err)
			}
		})
	}
}
