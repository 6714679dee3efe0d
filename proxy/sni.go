package proxy

import (
	"errors"
	"net"
	"strconv"
	"time"
)

// The ClientHello parser reads bytes from an untrusted client: every length
// is checked against what is left before it is used, and the whole message
// is bounded (maxHelloBytes), so hostile input costs at most one bounded
// buffer and never a panic.

const (
	recordHeaderLen = 5
	// maxHelloBytes bounds how much of a tunnel's first bytes are held back
	// to find a ClientHello: a ClientHello with post-quantum key shares is
	// about 2 KiB; 16 KiB is the largest TLS record.
	maxHelloBytes = recordHeaderLen + 1<<14
)

var (
	errNeedMore  = errors.New("incomplete ClientHello")
	errNotTLS    = errors.New("not a TLS ClientHello")
	errMalformed = errors.New("malformed ClientHello")
)

// parseClientHelloSNI returns the server name of the TLS ClientHello at the
// start of data ("" when it has none). errNeedMore means data is a valid
// prefix of a ClientHello that continues; errNotTLS that the bytes are not
// TLS at all (some other protocol); errMalformed that they look like TLS
// but do not parse.
//
// Only a ClientHello carried in its first record is supported (RFC 8446
// allows fragmenting it over several records; no browser does, and a
// client that does is treated as malformed rather than let through
// unread).
func parseClientHelloSNI(data []byte) (string, error) {
	if len(data) == 0 {
		return "", errNeedMore
	}
	if data[0] != 22 { // handshake record
		return "", errNotTLS
	}
	if len(data) < recordHeaderLen {
		if len(data) >= 2 && data[1] != 3 {
			return "", errNotTLS
		}
		return "", errNeedMore
	}
	if data[1] != 3 { // record version 3.x (SSL 3.0 .. TLS 1.3 all say 3.x)
		return "", errNotTLS
	}
	recLen := int(data[3])<<8 | int(data[4])
	if recLen == 0 || recLen > 1<<14 {
		return "", errMalformed
	}
	avail := data[recordHeaderLen:]
	if len(avail) < 4 {
		return "", errNeedMore
	}
	if avail[0] != 1 { // handshake type client_hello
		return "", errMalformed
	}
	hsLen := int(avail[1])<<16 | int(avail[2])<<8 | int(avail[3])
	if hsLen+4 > recLen {
		return "", errMalformed // fragmented over records, or lying
	}
	if len(avail) < 4+hsLen {
		return "", errNeedMore
	}
	return parseHelloBody(avail[4 : 4+hsLen])
}

// parseHelloBody parses a ClientHello message body (RFC 8446 §4.1.2).
func parseHelloBody(b []byte) (string, error) {
	s := reader(b)
	if !s.skip(2 + 32) { // legacy_version, random
		return "", errMalformed
	}
	if !s.skipVec(1) || !s.skipVec(2) || !s.skipVec(1) { // session id, cipher suites, compression
		return "", errMalformed
	}
	if len(s) == 0 {
		return "", nil // no extensions at all (SSL 3 style hello)
	}
	exts, ok := s.vec(2)
	if !ok {
		return "", errMalformed
	}
	for len(exts) > 0 {
		typ, ok := exts.u16()
		if !ok {
			return "", errMalformed
		}
		body, ok := exts.vec(2)
		if !ok {
			return "", errMalformed
		}
		if typ != 0 { // server_name (RFC 6066 §3)
			continue
		}
		list, ok := body.vec(2)
		if !ok || len(list) == 0 {
			return "", errMalformed
		}
		for len(list) > 0 {
			if len(list) < 1 {
				return "", errMalformed
			}
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
// read (to be forwarded) and the SNI.
func peekClientHello(c net.Conn, buf []byte, timeout time.Duration) ([]byte, string, error) {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return buf, "", err
	}
	defer c.SetReadDeadline(time.Time{}) //nolint:errcheck // best effort; the relay sets its own
	for {
		sni, err := parseClientHelloSNI(buf)
		if err != errNeedMore {
			return buf, sni, err
		}
		if len(buf) >= maxHelloBytes {
			return buf, "", errMalformed
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
				if sni, err := parseClientHelloSNI(buf); err != errNeedMore {
					return buf, sni, err
				}
			}
			return buf, "", rerr
		}
	}
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
	p, err := strconv.Atoi(portStr)
	if err != nil || p < 1 || p > 65535 {
		return "", 0, false
	}
	return host, p, true
}
