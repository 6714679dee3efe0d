package proxy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/policy"
)

// settings is what the proxy takes from the config in force beyond the
// policy itself: the interception CA and the connection limits. It is
// built to the side from a new snapshot (Prepare) and swapped whole, so a
// reload that changes the CA or proxy.max_connections takes effect on the
// next connection, and one whose CA cannot be loaded changes nothing.
type settings struct {
	mitm *interceptor // nil without proxy.intercept

	maxConns, perClient, maxTunnels int
}

// buildSettings derives the settings from snap's config, reusing old's
// interceptor (and its minted certificates) when the CA did not change.
// Options set by the caller (tests) win over the config.
func (p *Proxy) buildSettings(snap *policy.Snapshot, old *settings) (*settings, error) {
	s := &settings{maxConns: p.o.MaxConnections, perClient: p.o.MaxConnsPerClient, maxTunnels: p.o.MaxTunnels}
	cfg := snap.Config
	if s.maxConns <= 0 {
		s.maxConns = cfg.Proxy.MaxConnections
	}
	if b := p.o.ConnectionBudget; b > 0 && s.maxConns > b {
		s.maxConns = b
	}
	if s.perClient <= 0 {
		// A terminal server or a NAT is one address for many people.
		s.perClient = max(s.maxConns/4, 64)
	}
	s.perClient = min(s.perClient, s.maxConns)
	if s.maxTunnels <= 0 {
		s.maxTunnels = s.maxConns
	}
	if ic := cfg.Proxy.Intercept; ic != nil {
		var prev *interceptor
		if old != nil {
			prev = old.mitm
		}
		in, err := loadInterceptor(ic, prev)
		if err != nil {
			return nil, err
		}
		s.mitm = in
	}
	return s, nil
}

// loadInterceptor loads the CA ic names; when it is the one prev already
// mints from, prev is kept.
func loadInterceptor(ic *config.Intercept, prev *interceptor) (*interceptor, error) {
	ca, signer, err := ic.LoadCA()
	if err != nil {
		return nil, err
	}
	// The key was checked to belong to the certificate: the same
	// certificate is the same CA.
	if prev != nil && bytes.Equal(prev.ca.Raw, ca.Raw) {
		return prev, nil
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	certs, _ := lru.New[string, *tls.Certificate](4096)
	return &interceptor{ca: ca, caKey: signer, leafKey: leafKey, certs: certs}, nil
}

// Prepare builds the proxy's settings for snap without installing them:
// an error (a CA that cannot be loaded) leaves everything as it is. The
// returned commit installs them; the caller calls it once the whole reload
// has been prepared, right after swapping the policy engine to snap.
func (p *Proxy) Prepare(snap *policy.Snapshot) (commit func(), err error) {
	s, err := p.buildSettings(snap, p.set.Load())
	if err != nil {
		return nil, err
	}
	return func() { p.set.Store(s) }, nil
}

func (p *Proxy) settings() *settings { return p.set.Load() }
