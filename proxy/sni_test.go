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
		{"handshake continues in the next record", []byte{22, 3, 1, 0, 4, 1, 0, 1, 0}, "", errNeedMore},
		{"SSLv2 hello is not TLS", []byte{0x80, 0x2e, 1, 3, 1}, "", errNotTLS},
		{"record version 2.x", []byte{22, 2, 1, 0, 4, 1, 0, 0, 0}, "", errMalformed},
		{"ClientHello over 16 KiB", []byte{22, 3, 1, 0, 4, 1, 0, 0x40, 1}, "", errMalformed},
	}
	full := clientHello(t, &tls.Config{ServerName: "a.example"})
	alert := []byte{21, 3, 1, 0, 2, 1, 100} // warning, no_renegotiation
	for _, c := range []struct {
		name    string
		data    []byte
		want    string
		wantErr error
	}{
		{"alert before the ClientHello", append(bytes.Clone(alert), full...), "", errMalformed},
		{"alert alone", alert, "", errMalformed},
		{"alert header alone", alert[:1], "", errMalformed},
		{"change_cipher_spec first", append([]byte{20, 3, 3, 0, 1, 1}, full...), "", errMalformed},
		{"application data first", append([]byte{23, 3, 3, 0, 1, 0}, full...), "", errMalformed},
		{"alert with an odd record version", append([]byte{21, 0x0f, 1, 0, 2, 1, 100}, full...), "", errMalformed},
		{"fragmented in two records", fragmentHello(full, 100), "a.example", nil},
		{"fragmented in 512-byte records", fragmentHello(full, 512), "a.example", nil},
		{"fragmented, header split", fragmentHello(full, 2), "", errMalformed}, // more than maxHelloRecords
		{"fragmented, second record missing", fragmentHello(full, 100)[:105], "", errNeedMore},
		{"alert between fragments", append(append(bytes.Clone(fragmentHello(full, 100)[:105]), alert...), fragmentHello(full, 100)[105:]...), "", errMalformed},
	} {
		cases = append(cases, c)
	}
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

// fragmentHello re-frames the ClientHello in the first record of hello as
// handshake records of at most size bytes each (RFC 8446 §5.1 allows
// it); what follows that record is kept.
func fragmentHello(hello []byte, size int) []byte {
	recLen := int(hello[3])<<8 | int(hello[4])
	msg, rest := hello[recordHeaderLen:recordHeaderLen+recLen], hello[recordHeaderLen+recLen:]
	var out []byte
	for len(msg) > 0 {
		n := min(size, len(msg))
		out = append(out, hello[0], hello[1], hello[2], byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return append(out, rest...)
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
	buf, h, err := peekClientHello(b, make([]byte, 0, 16), time.Second)
	if err != nil || h.sni != "pieces.example" || !bytes.Equal(buf, hello) {
		t.Fatalf("sni %q err %v, %d of %d bytes", h.sni, err, len(buf), len(hello))
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
		{"example.com:0443", "", 0, false},
		{"example.com:00", "", 0, false},
		{"-:443", "-", 443, true}, // a valid authority; dialableHost refuses the host
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

func TestDialableHost(t *testing.T) {
	for host, want := range map[string]bool{
		"example.com": true, "a-b.example": true, "_dmarc.example.com": true, "xn--bcher-kva.example": true,
		"192.0.2.1": true, "2001:db8::1": true, "x": true,
		"-": false, "--": false, "a.-.example": false, "_": false, "example.-": false,
	} {
		if got := dialableHost(host); got != want {
			t.Errorf("dialableHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func FuzzParseClientHelloSNI(f *testing.F) {
	// Real ClientHellos (from crypto/tls) are in testdata/fuzz; more are
	// made here, fragmented and behind other records.
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{22, 3, 1, 0, 5, 1, 0, 0, 1, 0})
	hello := clientHello(f, &tls.Config{ServerName: "fuzz.example"})
	f.Add(fragmentHello(hello, 64))
	f.Add(clientHello(f, &tls.Config{ServerName: "hidden.example", MinVersion: tls.VersionTLS13,
		EncryptedClientHelloConfigList: echConfigList(f, "cloudflare-ech.com")}))
	f.Add(withExtension(f, hello, extECH, []byte{0, 0, 1, 0, 1, 0x8c, 0, 0}))
	f.Add(fragmentHello(hello, 700))
	f.Add(append([]byte{21, 3, 1, 0, 2, 1, 100}, hello...))
	f.Add(append([]byte{20, 3, 3, 0, 1, 1}, hello...))
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 1, 0, 22, 3, 1, 0, 2, 3, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 2*maxHelloBytes {
			return
		}
		sni, err := parseClientHelloSNI(data)
		if err != nil && sni != "" {
			t.Fatalf("SNI %q with error %v", sni, err)
		}
		if err == nil && sni != "" && !bytes.Contains(data, []byte(sni)) && !fragmentedContains(data, sni) {
			t.Fatalf("SNI %q not in the input", sni)
		}
		if len(data) > 0 && looksLikeTLS(data[0]) && data[0] != recordTypeHandshake && err != errMalformed {
			t.Fatalf("a first record of type %d gave %q, %v", data[0], sni, err)
		}
		// A prefix is either incomplete or already has the same answer.
		for _, n := range []int{1, len(data) / 3, len(data) / 2, len(data) - 1} {
			if n <= 0 || n >= len(data) {
				continue
			}
			s2, e2 := parseClientHelloSNI(data[:n])
			if e2 != errNeedMore && (s2 != sni || e2 != err) {
				t.Fatalf("prefix of %d bytes: %q %v; whole: %q %v", n, s2, e2, sni, err)
			}
		}
		// A ClientHello in one record parses the same fragmented.
		if err == nil && len(data) >= recordHeaderLen {
			if recLen := int(data[3])<<8 | int(data[4]); recLen <= len(data)-recordHeaderLen && recLen > 600 {
				s2, e2 := parseClientHelloSNI(fragmentHello(data, 600))
				if s2 != sni || e2 != nil {
					t.Fatalf("fragmented: %q %v; whole: %q", s2, e2, sni)
				}
			}
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

// fragmentedContains reports whether the handshake bytes of data's
// records contain s (a name split across two records is not in data).
func fragmentedContains(data []byte, s string) bool {
	var hs []byte
	for len(data) >= recordHeaderLen {
		n := min(int(data[3])<<8|int(data[4]), len(data)-recordHeaderLen)
		hs = append(hs, data[recordHeaderLen:recordHeaderLen+n]...)
		data = data[recordHeaderLen+n:]
	}
	return bytes.Contains(hs, []byte(s))
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
