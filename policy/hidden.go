package policy

import "github.com/schoolgate/schoolgate/categories"

// Hello is what a TLS ClientHello shows of where a connection goes.
type Hello struct {
	// SNI is the server_name, normalised ("" when there is none).
	SNI string
	// SNIHasHost reports whether SNI resolves to the connection's host,
	// when that host is an IP address (the caller resolves: Hidden is pure).
	SNIHasHost bool
	// ECH reports an encrypted_client_hello extension of the outer kind
	// (RFC 9849): the real server name may be inside, encrypted.
	ECH bool
}

// echFronts are the public names of shared ECH front ends: a ClientHello
// naming one of them with ECH says nothing of the site behind it.
var echFronts = map[string]bool{"cloudflare-ech.com": true}

// Hidden returns the pseudo-categories of a TLS connection to host (a
// CONNECT's host, or a transparent connection's address) whose
// ClientHello is h: ip-literal when host is an IP address and the hello
// names no server that resolves to it, ech when the hello's ECH extension
// can hide the name. They are passed to Decide in Args.Seen, so that rules
// naming ip-literal or ech decide the connection; without such a rule the
// connection is decided as before.
//
// Browsers send a decoy ("GREASE") ECH extension on every connection that
// has no ECH configuration (Chromium does): it names the real server in
// the SNI, which is then the CONNECT host (or resolves to it), so it is
// not ech. ECH that can hide the name shows an outer name other than the
// host, no name, or the public name of a shared ECH front end.
func Hidden(host string, h Hello) categories.Set {
	var s categories.Set
	if _, ip := hostAddr(host); ip && (h.SNI == "" || !h.SNIHasHost) {
		s = s.Add(categories.IPLiteral)
	}
	if h.ECH && (h.SNI == "" || h.SNI != host && !h.SNIHasHost || echFronts[h.SNI]) {
		s = s.Add(categories.ECH)
	}
	return s
}
