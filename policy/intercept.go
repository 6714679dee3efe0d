package policy

import (
	"strings"

	"github.com/schoolgate/schoolgate/categories"
)

// Intercepts reports whether the proxy terminates TLS for a CONNECT to
// host (whose categories, decided on the host alone, are cats) under the
// snapshot's proxy.intercept: a host under one of intercept.domains, or in
// one of intercept.categories ("unclassified" for a host with none);
// naming neither intercepts every host. Without proxy.intercept it is
// false. The proxy and `schoolgate check` both ask here, so that check
// decides an https:// target on its full URL exactly when the proxy sees
// that URL.
func (s *Snapshot) Intercepts(host string, cats categories.Set) bool {
	if s == nil || s.Config == nil || s.Config.Proxy.Intercept == nil || host == "" {
		return false
	}
	ic := s.Config.Proxy.Intercept
	if len(ic.Domains) == 0 && len(ic.Categories) == 0 {
		return true
	}
	for _, d := range ic.Domains {
		d, ok := categories.NormalizeHost(d)
		if !ok {
			continue
		}
		if host == d || len(host) > len(d) && strings.HasSuffix(host, d) && host[len(host)-len(d)-1] == '.' {
			return true
		}
	}
	for _, name := range ic.Categories {
		c, ok := categories.Parse(name)
		if !ok {
			continue
		}
		if cats.Has(c) || c == categories.Unclassified && cats.Empty() {
			return true
		}
	}
	return false
}
