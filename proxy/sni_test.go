package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// clientHello returns the first bytes a crypto/tls client sends.
func clientHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		c := tls.Client(a, cfg)
		c.SetDeadline(time.Now().Add(2 * time.Second)) //nolint:errcheck
		c.Handshake()                                  //nolint:errcheck // the peer never answers
	}()
	b.SetReadDeadline(time.Now().Add(2 * time.Second)) //nolint:errcheck
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(b, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(b, body); err != nil {
		t.Fatal(err)
	}
	return append(hdr, body...)
}

func TestParseClientHelloSNI(t *testing.T) {
	tls12 := &tls.Config{ServerName: "www.example.org", MaxVersion: tls.VersionTLS12}
	cases := []struct {
		name    string
		data    []byte
		want    string
		wantErr error
	}{
		{"TLS 1.3 with SNI", clientHello(t, &tls.Config{ServerName: "www.bet365.com"}), "www.bet365.com", nil},
		{"TLS 1.2 with SNI", clientHello(t, tls12), "www.example.org", nil},
		{"IP address: no SNI", clientHello(t, &tls.Config{ServerName: "192.0.2.1", InsecureSkipVerify: true}), "", nil}, //nolint:gosec
		{"empty", nil, "", errNeedMore},
		{"HTTP", []byte("GET / HTTP/1.1\r\n"), "", errNotTLS},
		{"SSH", []byte("SSH-2.0-OpenSSH_9.6\r\n"), "", errNotTLS},
		{"record header only", []byte{22, 3, 1, 0, 100}, "", errNeedMore},
		{"zero-length record", []byte{22, 3, 1, 0, 0}, "", errMalformed},
		{"oversized record", []byte{22, 3, 1, 0x48, 0x01}, "", errMalformed},
		{"not a ClientHello", []byte{22, 3, 1, 0, 4, 2, 0, 0, 0}, "", errMalformed},
		{"handshake longer than record", []byte{22, 3, 1, 0, 4, 1, 0, 1, 0}, "", errMalformed},
	}
	full := clientHello(t, &tls.Config{ServerName: "a.example"})
	cases = append(cases,
		struct {
			name    string
			data    []byte
			want    string
			wantErr error
		}{"truncated", full[:len(full)-10], "", errNeedMore},
		struct {
			name    string
			data    []byte
			want    string
			wantErr error
		}{"trailing bytes ignored", append(bytes.Clone(full), 23, 3, 3), "a.example", nil},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseClientHelloSNI(c.data)
			if got != c.want || !errors.Is(err, c.wantErr) {
				t.Fatalf("got %q, %v; want %q, %v", got, err, c.want, c.wantErr)
			}
		})
	}
}

func TestPeekClientHelloInPieces(t *testing.T) {
	hello := clientHello(t, &tls.Config{ServerName: "pieces.example"})
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		for i := 0; i < len(hello); i += 7 {
			a.Write(hello[i:min(i+7, len(hello))]) //nolint:errcheck
		}
	}()
	buf, sni, err := peekClientHello(b, make([]byte, 0, 16), time.Second)
	if err != nil || sni != "pieces.example" || !bytes.Equal(buf, hello) {
		t.Fatalf("sni %q err %v, %d of %d bytes", sni, err, len(buf), len(hello))
	}

	// A client that says nothing is given up on at the deadline.
	c, d := net.Pipe()
	defer c.Close()
	defer d.Close()
	start := time.Now()
	if _, _, err := peekClientHello(d, nil, 100*time.Millisecond); err == nil || time.Since(start) > time.Second {
		t.Fatalf("silent client: %v after %v", err, time.Since(start))
	}
}

func TestSplitHostPort(t *testing.T) {
	cases := []struct {
		in   string
		host string
		port int
		ok   bool
	}{
		{"example.com:443", "example.com", 443, true},
		{"[2001:db8::1]:8443", "2001:db8::1", 8443, true},
		{"192.0.2.1:443", "192.0.2.1", 443, true},
		{"example.com", "", 0, false},
		{"example.com:", "", 0, false},
		{":443", "", 0, false},
		{"example.com:0", "", 0, false},
		{"example.com:65536", "", 0, false},
		{"example.com:+443", "", 0, false},
		{"2001:db8::1:443", "", 0, false},
		{"[2001:db8::1]443", "", 0, false},
		{"[2001:db8::1", "", 0, false},
		{"exa mple.com:443", "", 0, false},
		{"user@example.com:443", "", 0, false},
		{"example.com:0443", "example.com", 443, true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			h, p, ok := splitHostPort(c.in)
			if h != c.host || p != c.port || ok != c.ok {
				t.Fatalf("got %q %d %v", h, p, ok)
			}
		})
	}
}

func FuzzParseClientHelloSNI(f *testing.F) {
	// Real ClientHellos (from crypto/tls) are in testdata/fuzz.
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{22, 3, 1, 0, 5, 1, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 2*maxHelloBytes {
			return
		}
		sni, err := parseClientHelloSNI(data)
		if err != nil && sni != "" {
			t.Fatalf("SNI %q with error %v", sni, err)
		}
		if err == nil && sni != "" && !bytes.Contains(data, []byte(sni)) {
			t.Fatalf("SNI %q not in the input", sni)
		}
		// A complete answer does not change with more bytes behind it.
		if err == nil || errors.Is(err, errNotTLS) {
			sni2, err2 := parseClientHelloSNI(append(bytes.Clone(data), 0xff, 0, 1))
			if sni2 != sni || !errors.Is(err2, err) && err2 != err {
				t.Fatalf("with trailing bytes: %q %v, before %q %v", sni2, err2, sni, err)
			}
		}
	})
}

func FuzzSplitHostPort(f *testing.F) {
	for _, s := range []string{"example.com:443", "[::1]:80", "1.2.3.4:65535", ":", "[]:1", "a:b:c", "[::1]]:1", "xn--bcher-kva.example:443"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, p, ok := splitHostPort(s)
		if !ok {
			if h != "" || p != 0 {
				t.Fatalf("not ok but %q %d", h, p)
			}
			return
		}
		if h == "" || p < 1 || p > 65535 {
			t.Fatalf("ok with %q %d", h, p)
		}
		h2, p2, ok2 := splitHostPort(net.JoinHostPort(h, strconv.Itoa(p)))
		if !ok2 || h2 != h || p2 != p {
			t.Fatalf("round trip of %q: %q %d %v", s, h2, p2, ok2)
		}
	})
}
