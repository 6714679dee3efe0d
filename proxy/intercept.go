package proxy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/schoolgate/schoolgate/internal/mint"
)

// interceptor terminates TLS for the hosts proxy.intercept names, with
// certificates signed by the school's CA, so that HTTPS requests are
// decided (and logged) on the full URL and blocked ones get the block page.
type interceptor struct {
	ca      *x509.Certificate
	caKey   crypto.Signer
	leafKey *ecdsa.PrivateKey // one key for every minted certificate
	certs   *lru.Cache[string, *tls.Certificate]
	mu      sync.Mutex // serialises minting
}

// cert returns a certificate for host, minted on first use and kept until
// a day before it expires.
func (in *interceptor) cert(host string) (*tls.Certificate, error) {
	if c, ok := in.certs.Get(host); ok && time.Until(c.Leaf.NotAfter) > 24*time.Hour {
		return c, nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if c, ok := in.certs.Get(host); ok && time.Until(c.Leaf.NotAfter) > 24*time.Hour {
		return c, nil
	}
	c, err := mint.Leaf(in.ca, in.caKey, in.leafKey, host, time.Now(), 7*24*time.Hour)
	if err != nil {
		return nil, err
	}
	in.certs.Add(host, c)
	return c, nil
}

// shouldIntercept reports whether the CONNECT st (decided on its host) is
// to be intercepted: the policy says which hosts proxy.intercept names
// (the same answer `schoolgate check` uses), and the CA must be loaded.
func (p *Proxy) shouldIntercept(st *request) bool {
	return p.settings().mitm != nil && st.snap.Intercepts(st.host, st.cats)
}

// ruleIntercept is the rule logged for an intercepted CONNECT whose host
// is blocked: the tunnel is opened only so that each request inside gets
// the block page (and its own log line with the blocking rule).
const ruleIntercept = "intercept"
