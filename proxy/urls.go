package proxy

import (
	"net"
	"net/url"
	"strconv"
	"strings"
)

// hostPort writes host and port as a URL authority, leaving out the port
// when it is the scheme's default (def): https://example.org/games, not
// https://example.org:443/games.
func hostPort(host string, port, def int) string {
	if port == def {
		if strings.IndexByte(host, ':') >= 0 {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// defaultPorts are the ports a URL of the scheme need not name.
var defaultPorts = map[string]string{"http": "80", "https": "443"}

// cleanURL is u as it is logged and shown on a page: without userinfo
// (credentials in http(s) URLs are deprecated, RFC 9110 §4.2.4, and must
// not end up in the access log) and without the scheme's default port.
func cleanURL(u *url.URL) string {
	c := *u
	c.User = nil
	if def, ok := defaultPorts[strings.ToLower(c.Scheme)]; ok {
		if h, port, err := net.SplitHostPort(c.Host); err == nil && port == def {
			c.Host = h
			if strings.IndexByte(h, ':') >= 0 {
				c.Host = "[" + h + "]"
			}
		}
	}
	return c.String()
}

// decidedURL is the logged URL u (scheme://authority/path?query) with its
// path and query replaced by path, the reading a decision was made on.
func decidedURL(u, path string) string {
	i := strings.Index(u, "://")
	if i < 0 {
		return path
	}
	if j := strings.IndexAny(u[i+3:], "/?"); j >= 0 {
		u = u[:i+3+j]
	}
	return u + path
}
