package proxy

import (
	"bytes"
	"net/netip"
	"net/url"
	"strings"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/policy"
)

// logRefused writes the access-log line for a request net/http refused
// before any handler saw it (a malformed request line or CONNECT
// authority, a control byte in the target, headers over MaxHeaderBytes:
// 431, a protocol version other than HTTP/1.x: 505): every answer the proxy gives is one line, and a malformed
// request that names a blocked host is evidence too. head is what the
// client sent (its first bytes); the line names the method, the target and
// the host as far as they can be read, with the host's categories.
func (p *Proxy) logRefused(ip netip.Addr, head []byte, status int) {
	st := &request{start: p.now(), snap: p.engine.Snapshot(), ip: ip, status: status,
		verdict: policy.Block, rule: ruleBadRequest} // as any request the proxy cannot make sense of
	method, target, hostRaw := parseRefused(head)
	st.method = clip(method, 32)
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		st.url = clip(target, 2048)
	}
	st.host = clip(hostRaw, 253)
	if h, ok := categories.NormalizeHost(hostRaw); ok {
		st.host = h
		d := p.engine.Decide(policy.Args{IP: ip, Host: h, Time: st.start})
		st.profile, st.cats = d.Profile, d.Categories
	} else if st.snap != nil {
		st.profile = st.snap.Profile("", ip)
	}
	p.finish(st)
}

// parseRefused reads the request line of what a client sent (up to the
// first line break, or all of it) and the host it names: a CONNECT's
// authority, an absolute URL's host, or the Host header.
func parseRefused(head []byte) (method, target, host string) {
	line := head
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	fields := strings.SplitN(string(line), " ", 3)
	method = fields[0]
	if len(fields) > 1 {
		target = fields[1]
	}
	switch {
	case method == "CONNECT":
		host = stripPort(target)
	case strings.Contains(target, "://"):
		if u, err := url.Parse(target); err == nil {
			host = u.Hostname()
		} else if i := strings.Index(target, "://"); i >= 0 {
			rest := target[i+3:]
			if j := strings.IndexAny(rest, "/?#"); j >= 0 {
				rest = rest[:j]
			}
			host = stripPort(rest)
		}
	}
	if host == "" {
		host = stripPort(headerValue(head, "host"))
	}
	return method, target, host
}

// stripPort drops a trailing :digits (and brackets of an IPv6 literal),
// after cutting a at the first byte that cannot be in an authority (a
// malformed one such as "casino.test:443\x00" still names its host).
func stripPort(a string) string {
	if i := strings.IndexFunc(a, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '.' || r == '-' || r == '_' || r == ':' || r == '[' || r == ']' || r >= 0x80)
	}); i >= 0 {
		a = a[:i]
	}
	if i := strings.LastIndexByte(a, ':'); i >= 0 && !strings.HasSuffix(a, "]") {
		port := a[i+1:]
		if strings.Trim(port, "0123456789") == "" && (strings.Count(a, ":") == 1 || strings.HasPrefix(a, "[")) {
			a = a[:i]
		}
	}
	return strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")
}

// headerValue finds a header in the raw bytes (case-insensitive name).
func headerValue(head []byte, name string) string {
	for _, l := range bytes.Split(head, []byte("\n"))[1:] {
		k, v, ok := bytes.Cut(l, []byte(":"))
		if ok && strings.EqualFold(string(bytes.TrimSpace(k)), name) {
			return string(bytes.TrimSpace(v))
		}
	}
	return ""
}
