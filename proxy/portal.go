package proxy

import (
	"io"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/identity"
	"github.com/schoolgate/schoolgate/policy"
)

// Portal is the sign-in page for devices that cannot do proxy sign-in
// (package portal). The proxy sends a client in portal.networks that
// nobody is signed in at there, and answers requests for portal.hostname
// by handing them to it, so that the portal sees the client's own
// address (and such requests reach it even where nothing else may).
type Portal interface {
	// ServeHTTP answers a plain HTTP request for the portal.
	http.Handler
	// ServeConn serves a client connection taken over after a CONNECT
	// to the portal (TLS, then HTTP, as on its own listener).
	ServeConn(net.Conn)
	// SignInURL is the sign-in page's address, to come back to original.
	SignInURL(original string) string
}

// rulePortalRequired is logged for a request refused (plain HTTP:
// redirected to the portal) because its address must sign in first.
const rulePortalRequired = "portal_required"

// SignInError is a request from an address in portal.networks that
// nobody is signed in at: plain HTTP is redirected to the sign-in page
// (303), a tunnel refused with the block page, which links to it.
type SignInError struct {
	URL    string // the sign-in page, to come back to the page asked for
	Tunnel bool   // a CONNECT or a redirected TLS connection: no redirect is possible
}

func (e *SignInError) Error() string { return "sign-in needed at " + e.URL }

// isPortalHost reports whether authority (host, or host:port) names the
// portal, when there is one.
func (p *Proxy) isPortalHost(snap *policy.Snapshot, authority string) bool {
	if p.o.Portal == nil || snap.Config.Portal.Hostname == "" || authority == "" {
		return false
	}
	h, ok := categories.NormalizeHost(authority)
	return ok && h == snap.Config.Portal.Hostname
}

// servePortal hands a client's request for the portal to it: a plain
// HTTP request is answered by it, a CONNECT's connection is given to it.
// Neither is decided nor logged here (the portal logs its sign-ins). It
// reports whether r was the portal's.
func (p *Proxy) servePortal(w http.ResponseWriter, r *http.Request, st *request) bool {
	if p.o.Portal == nil || !st.snap.IsClient(st.ip) {
		return false
	}
	if r.Method != http.MethodConnect {
		if !r.URL.IsAbs() || !p.isPortalHost(st.snap, r.URL.Host) {
			return false
		}
		r.Header.Del("Proxy-Authorization")
		st.quiet = true
		p.o.Portal.ServeHTTP(w, r)
		return true
	}
	authority := r.URL.Host
	if authority == "" {
		authority = r.Host
	}
	if !p.isPortalHost(st.snap, authority) {
		return false
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return false
	}
	st.quiet = true
	client, brw, err := hj.Hijack()
	if err != nil {
		return true
	}
	var first []byte
	if n := brw.Reader.Buffered(); n > 0 {
		first = append(first, mustPeek(brw.Reader.Peek(n))...)
	}
	client.SetWriteDeadline(time.Now().Add(p.o.HelloTimeout)) //nolint:errcheck // a failed write says it
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		client.Close()
		return true
	}
	client.SetWriteDeadline(time.Time{}) //nolint:errcheck
	p.o.Portal.ServeConn(&prefixConn{Conn: client, prefix: first})
	return true
}

// portalRequired reports whether st's address must sign in at the portal
// before it uses the web: it is a client in portal.networks, and the
// portal runs.
func (p *Proxy) portalRequired(st *request) bool {
	return p.o.Portal != nil && st.snap.Config.Portal.Required(st.ip) && st.snap.IsClient(st.ip)
}

// portalSignedIn returns who signed in at st's address through the
// portal, renewing the sign-in (traffic): where require_auth is on, that
// stands in for proxy credentials.
func (p *Proxy) portalSignedIn(st *request) (identity.Entry, bool) {
	if p.o.Portal == nil {
		return identity.Entry{}, false
	}
	e, ok := p.ids.Touch(st.ip, st.start)
	return e, ok && e.Source == identity.SourcePortal
}

// signInFirst is the refusal of a request from an address that must sign
// in at the portal first, to come back to what st asked for.
func (p *Proxy) signInFirst(st *request, tunnel bool) error {
	back := st.url
	if back == "" && st.host != "" {
		back = "https://" + st.host + "/"
	}
	return &SignInError{URL: p.o.Portal.SignInURL(back), Tunnel: tunnel}
}

// signInTunnel answers a CONNECT from an address that must sign in first
// with the block page and its sign-in link, inside TLS with a certificate
// from the school CA, when there is one and the port is open; it reports
// whether it did (else the CONNECT is refused, 403).
func (p *Proxy) signInTunnel(w http.ResponseWriter, r *http.Request, st *request, port int, se *SignInError) bool {
	mitm := p.settings().mitm
	if mitm == nil || port == httpPort || !slices.Contains(st.snap.Config.Proxy.ConnectPorts, port) {
		return false
	}
	p.recordOutcome(st, se)
	if n := p.tunnelsOpen.Add(1); n > int64(p.settings().maxTunnels) {
		p.tunnelsOpen.Add(-1)
		p.fail(w, st, &OverloadError{What: "too many tunnels open"})
		return true
	}
	defer p.tunnelsOpen.Add(-1)
	p.serveTerminated(w, r, st, newInnerTunnel(tunnelBlockPage, st, port, se, mitm))
	return true
}

// portalHello handles a redirected TLS connection the portal has a say
// in, and reports whether it did: one for portal.hostname is handed to
// the portal; one from an address that must sign in first gets the block
// page with the sign-in link (TLS with the school CA, for a named host)
// or is cut.
func (p *Proxy) portalHello(st *request, c net.Conn, h *transparentHello) bool {
	if h.name != "" && p.isPortalHost(st.snap, h.name) && st.snap.IsClient(st.ip) {
		st.quiet = true
		p.o.Portal.ServeConn(&prefixConn{Conn: c, prefix: h.buf})
		return true
	}
	if st.user != "" || !p.portalRequired(st) {
		return false
	}
	se := p.signInFirst(st, true)
	if mitm := p.settings().mitm; mitm != nil && h.name != "" {
		p.recordOutcome(st, se)
		p.serveTransparentTerminated(c, h.buf, newInnerTunnel(tunnelBlockPage, st, int(st.dst.Port()), se, mitm))
	} else {
		p.cut(st, se)
	}
	return true
}
