package proxy

import (
	"errors"
	"net"
	"net/netip"
	"time"
)

// The ClientHello parser reads bytes from an untrusted client: every length
// is checked against what is left before it is used, and the whole message
// is bounded (maxHelloBytes), so hostile input costs at most one bounded
// buffer and never a panic.

const (
	recordHeaderLen = 5
	// maxRecordLen is the largest TLS plaintext record (RFC 8446 §5.1).
	maxRecordLen = 1 << 14
	// maxHelloLen bounds the ClientHello message: one with post-quantum
	// key shares is about 2 KiB.
	maxHelloLen = 1 << 14
	// maxHelloRecords bounds how many records a fragmented ClientHello
	// may take (512-byte fragments, the smallest max_fragment_length,
	// put 16 KiB in 32).
	maxHelloRecords = 64
	// maxHelloBytes bounds how much of a tunnel's first bytes are held
	// back to find a ClientHello: the message, its record headers, and
	// what one more read may bring behind it.
	maxHelloBytes = 4 + maxHelloLen + maxHelloRecords*recordHeaderLen + 1024

	recordTypeHandshake  = 22
	handshakeClientHello = 1
)

var (
	errNeedMore  = errors.New("incomplete ClientHello")
	errNotTLS    = errors.New("not a TLS ClientHello")
	errMalformed = errors.New("malformed ClientHello")
)

// looksLikeTLS reports whether a tunnel's first byte is a TLS record's
// content type (change_cipher_spec 20, alert 21, handshake 22,
// application_data 23, heartbeat 24). None is a printable character, so
// no text protocol (HTTP, SSH, SMTP...) starts with one. A first byte of
// that range is judged as TLS whatever follows: servers are lenient about
// the record version of a first record (crypto/tls takes anything below
// 0x1000), so "not TLS after all" must not be a way around the SNI check.
func looksLikeTLS(b byte) bool { return b >= 20 && b <= 24 }

// helloInfo is what a ClientHello shows of where the connection goes.
type helloInfo struct {
	sni string // server_name ("" when there is none), as sent
	ech bool   // an outer encrypted_client_hello extension (RFC 9849)
}

// extECH is the encrypted_client_hello extension (RFC 9849 §11.1).
const extECH = 0xfe0d

// parseClientHelloSNI returns the server name of the TLS ClientHello at the
// start of data; see parseClientHello.
func parseClientHelloSNI(data []byte) (string, error) {
	h, err := parseClientHello(data)
	return h.sni, err
}

// parseClientHello returns the server name of the TLS ClientHello at the
// start of data ("" when it has none) and whether it offers ECH. errNeedMore means data is a valid
// prefix of a ClientHello that continues; errNotTLS that the bytes are not
// TLS at all (some other protocol); errMalformed that they look like TLS
// but are not a ClientHello that parses.
//
// The ClientHello may be fragmented over several consecutive handshake
// records (RFC 8446 §5.1 allows it); it is reassembled, bounded by
// maxHelloLen and maxHelloRecords. Any other record before the ClientHello
// is complete (an alert, change_cipher_spec, application data) is
// malformed: a server may skip a warning alert and then read a
// ClientHello that names a blocked host, so such a prefix is never let
// through unread.
//
// Until the ClientHello is complete only record headers are walked, so
// calling it again after every read of a slow client stays cheap.
func parseClientHello(data []byte) (helloInfo, error) {
	if len(data) == 0 {
		return helloInfo{}, errNeedMore
	}
	if !looksLikeTLS(data[0]) {
		return helloInfo{}, errNotTLS
	}
	var (
		hdr  [4]byte // the handshake message header, gathered across records
		got  int     // handshake bytes seen
		need = -1    // the whole message's length, once its header is in
		nrec int
		rest = data
	)
	for need < 0 || got < need {
		if len(rest) == 0 {
			return helloInfo{}, errNeedMore
		}
		if rest[0] != recordTypeHandshake {
			return helloInfo{}, errMalformed
		}
		if len(rest) >= 2 && rest[1] != 3 { // 3.x: SSL 3.0 .. TLS 1.3
			return helloInfo{}, errMalformed
		}
		if len(rest) < recordHeaderLen {
			return helloInfo{}, errNeedMore
		}
		recLen := int(rest[3])<<8 | int(rest[4])
		if recLen == 0 || recLen > maxRecordLen { // RFC 8446 forbids empty handshake records
			return helloInfo{}, errMalformed
		}
		if nrec++; nrec > maxHelloRecords {
			return helloInfo{}, errMalformed
		}
		frag := rest[recordHeaderLen:]
		whole := len(frag) >= recLen
		if whole {
			frag = frag[:recLen]
			rest = rest[recordHeaderLen+recLen:]
		} else {
			rest = nil
		}
		for i := 0; i < len(frag) && got+i < len(hdr); i++ {
			hdr[got+i] = frag[i]
		}
		got += len(frag)
		if got >= 1 && hdr[0] != handshakeClientHello {
			return helloInfo{}, errMalformed
		}
		if need < 0 && got >= len(hdr) {
			hsLen := int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
			if hsLen > maxHelloLen {
				return helloInfo{}, errMalformed
			}
			need = len(hdr) + hsLen
		}
		if !whole && (need < 0 || got < need) {
			return helloInfo{}, errNeedMore
		}
	}
	return parseHelloBody(helloMessage(data, need)[len(hdr):])
}

// helloMessage returns the first need handshake bytes of data, whose
// records parseClientHelloSNI has checked: the first record's fragment
// itself when it holds them all (the usual case), else a reassembled copy.
func helloMessage(data []byte, need int) []byte {
	var msg []byte
	for rest := data; len(msg) < need && len(rest) >= recordHeaderLen; {
		recLen := int(rest[3])<<8 | int(rest[4])
		end := min(recordHeaderLen+recLen, len(rest))
		frag := rest[recordHeaderLen:end]
		rest = rest[end:]
		if msg == nil && len(frag) >= need {
			return frag[:need]
		}
		if msg == nil {
			msg = make([]byte, 0, need)
		}
		msg = append(msg, frag[:min(len(frag), need-len(msg))]...)
	}
	return msg
}

// parseHelloBody parses a ClientHello message body (RFC 8446 §4.1.2):
// its server_name (RFC 6066 §3) and whether it has an outer
// encrypted_client_hello extension. Every extension is walked, so a
// malformed one after the server name is malformed too.
func parseHelloBody(b []byte) (helloInfo, error) {
	var h helloInfo
	s := reader(b)
	if !s.skip(2 + 32) { // legacy_version, random
		return h, errMalformed
	}
	if !s.skipVec(1) || !s.skipVec(2) || !s.skipVec(1) { // session id, cipher suites, compression
		return h, errMalformed
	}
	if len(s) == 0 {
		return h, nil // no extensions at all (SSL 3 style hello)
	}
	exts, ok := s.vec(2)
	if !ok {
		return h, errMalformed
	}
	seenSNI := false
	for len(exts) > 0 {
		typ, ok := exts.u16()
		if !ok {
			return helloInfo{}, errMalformed
		}
		body, ok := exts.vec(2)
		if !ok {
			return helloInfo{}, errMalformed
		}
		switch typ {
		case extECH:
			// ECHClientHello: type outer(0) carries an encrypted inner
			// hello; inner(1) belongs only inside it.
			h.ech = len(body) > 0 && body[0] == 0
		case 0: // server_name
			if seenSNI {
				return helloInfo{}, errMalformed // a server may read either
			}
			seenSNI = true
			name, err := parseServerName(body)
			if err != nil {
				return helloInfo{}, err
			}
			h.sni = name
		}
	}
	return h, nil
}

// parseServerName returns the host_name of a server_name extension's
// body ("" when it names none).
func parseServerName(body reader) (string, error) {
	list, ok := body.vec(2)
	if !ok || len(list) == 0 {
		return "", errMalformed
	}
	for len(list) > 0 {
		nameType := list[0]
		list = list[1:]
		name, ok := list.vec(2)
		if !ok {
			return "", errMalformed
		}
		if nameType == 0 { // host_name
			if len(name) == 0 {
				return "", errMalformed
			}
			return string(name), nil
		}
	}
	return "", nil
}

// reader is a cursor over a byte slice whose methods never read past its end.
type reader []byte

func (r *reader) skip(n int) bool {
	if n < 0 || len(*r) < n {
		return false
	}
	*r = (*r)[n:]
	return true
}

func (r *reader) u16() (uint16, bool) {
	if len(*r) < 2 {
		return 0, false
	}
	v := uint16((*r)[0])<<8 | uint16((*r)[1])
	*r = (*r)[2:]
	return v, true
}

// vec reads a vector with a lenBytes-byte length prefix.
func (r *reader) vec(lenBytes int) (reader, bool) {
	if len(*r) < lenBytes {
		return nil, false
	}
	n := 0
	for i := 0; i < lenBytes; i++ {
		n = n<<8 | int((*r)[i])
	}
	rest := (*r)[lenBytes:]
	if len(rest) < n {
		return nil, false
	}
	*r = rest[n:]
	return rest[:n], true
}

func (r *reader) skipVec(lenBytes int) bool {
	_, ok := r.vec(lenBytes)
	return ok
}

// peekClientHello reads the first bytes a client sends into a tunnel until
// they are a complete ClientHello, clearly not TLS, malformed, or
// maxHelloBytes long, with a read deadline of timeout. It returns the bytes
// read (to be forwarded) and what the hello shows.
func peekClientHello(c net.Conn, buf []byte, timeout time.Duration) ([]byte, helloInfo, error) {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return buf, helloInfo{}, err
	}
	defer c.SetReadDeadline(time.Time{}) //nolint:errcheck // best effort; the relay sets its own
	for {
		h, err := parseClientHello(buf)
		if err != errNeedMore {
			return buf, h, err
		}
		if len(buf) >= maxHelloBytes {
			return buf, helloInfo{}, errMalformed
		}
		if cap(buf)-len(buf) < 1024 && cap(buf) < maxHelloBytes {
			nb := make([]byte, len(buf), maxHelloBytes)
			copy(nb, buf)
			buf = nb
		}
		end := min(cap(buf), maxHelloBytes)
		n, rerr := c.Read(buf[len(buf):end])
		buf = buf[:len(buf)+n]
		if rerr != nil {
			if n > 0 {
				if h, err := parseClientHello(buf); err != errNeedMore {
					return buf, h, err
				}
			}
			return buf, helloInfo{}, rerr
		}
	}
}

// parsePort parses a port number as a URL or a CONNECT names it: decimal
// 1..65535 without a leading zero ("0443" is refused, not read as 443:
// what the client meant is unclear and a filter must not guess).
func parsePort(s string) (int, bool) {
	if len(s) == 0 || len(s) > 5 || s[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, n <= 65535
}

// dialableHost reports whether a normalised host can name a server: an
// IP address, or a name each of whose labels has a letter or a digit
// ("-" or "a.--.b" is no host, and asking DNS for it would only turn a bad
// request into a 502).
func dialableHost(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	alnum := false
	for i := 0; i <= len(host); i++ {
		if i == len(host) || host[i] == '.' {
			if !alnum {
				return false
			}
			alnum = false
			continue
		}
		if c := host[i]; c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= 0x80 {
			alnum = true
		}
	}
	return true
}

// splitHostPort splits a CONNECT authority ("host:port", "[v6]:port")
// into its host (brackets removed) and port. It is stricter than
// net.SplitHostPort: the port must be decimal 1..65535 and the host
// non-empty, without spaces or stray brackets.
func splitHostPort(s string) (host string, port int, ok bool) {
	if len(s) == 0 || len(s) > 300 {
		return "", 0, false
	}
	var portStr string
	if s[0] == '[' {
		end := -1
		for i := 1; i < len(s); i++ {
			if s[i] == ']' {
				end = i
				break
			}
		}
		if end < 0 || end+1 >= len(s) || s[end+1] != ':' {
			return "", 0, false
		}
		host, portStr = s[1:end], s[end+2:]
	} else {
		i := len(s) - 1
		for i >= 0 && s[i] != ':' {
			i--
		}
		if i < 0 {
			return "", 0, false
		}
		host, portStr = s[:i], s[i+1:]
		for j := 0; j < len(host); j++ {
			if host[j] == ':' { // an unbracketed IPv6 address is ambiguous
				return "", 0, false
			}
		}
	}
	if host == "" || len(portStr) == 0 || len(portStr) > 5 {
		return "", 0, false
	}
	for i := 0; i < len(host); i++ {
		switch c := host[i]; {
		case c <= ' ', c == 0x7f, c == '[', c == ']', c == '/', c == '@':
			return "", 0, false
		}
	}
	for i := 0; i < len(portStr); i++ {
		if portStr[i] < '0' || portStr[i] > '9' {
			return "", 0, false
		}
	}
	p, ok := parsePort(portStr)
	if !ok {
		return "", 0, false
	}
	return host, p, true
}
