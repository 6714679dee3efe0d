package proxy

import (
	"context"
	"net"
	"net/http"

	"github.com/schoolgate/schoolgate/policy"
)

// SafeSearch through the proxy: for a request the policy gives an engine
// lock (policy.Decision.SafeSearch), the proxy connects to the lock's
// enforcing name instead of the host, as the DNS filter answers it, so a
// CONNECT tunnel ends at the engine's SafeSearch servers; a request it can
// read (plain HTTP, or inside an intercepted tunnel) also carries the
// engine's parameter or header, replacing the client's.

// safeSearchTransports returns one transport per enforcing name, each a
// copy of base that dials the enforcing name whatever host the request
// names. The request keeps its host, so TLS names and verifies the
// engine's own host (www.google.co.uk), and connections are pooled apart
// from those the ordinary transport opens to the real addresses: a
// connection a staff member's request opened to www.google.com is never
// reused for a pupil's.
func (p *Proxy) safeSearchTransports(base *http.Transport) map[string]*http.Transport {
	m := make(map[string]*http.Transport)
	for _, target := range policy.SafeSearchTargets() {
		tr := base.Clone()
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return p.dialer.DialContext(ctx, network, net.JoinHostPort(target, port))
		}
		m[target] = tr
	}
	return m
}

// transportFor returns the transport for a request in state st: the
// SafeSearch one of its lock, or the ordinary one.
func (p *Proxy) transportFor(st *request) *http.Transport {
	if st != nil && st.ss != nil {
		if tr, ok := p.ssTr[st.ss.Target]; ok {
			return tr
		}
	}
	return p.tr
}

// dialHost is the name a CONNECT for st dials: the lock's enforcing name
// when there is one (noted in st for the log), else host.
func dialHost(st *request, host string) string {
	if st.ss == nil {
		return host
	}
	st.safeSearch = true
	return st.ss.Target
}

// lockSafeSearch puts the engine's lock on r (which st allowed): its
// query parameter, replacing every one the client sent, and its header,
// replacing the client's. The logged URL becomes the one sent upstream.
func lockSafeSearch(r *http.Request, st *request) {
	ss := st.ss
	if ss == nil {
		return
	}
	if ss.Param != "" {
		r.URL.RawQuery = ss.LockQuery(r.URL.RawQuery)
		r.URL.ForceQuery = false
	}
	if ss.Header != "" {
		r.Header.Del(ss.Header)
		r.Header.Set(ss.Header, ss.HeaderValue)
	}
	st.safeSearch = true
	st.url = cleanURL(r.URL)
}
