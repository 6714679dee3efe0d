package main

import (
	"fmt"
	"net/http"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/identity"
)

// logonAPI is the handler of POST /api/identity when
// identity.api_secret_file is set (nil otherwise). The secret is read
// once: a new one takes a restart.
func (g *gateway) logonAPI(reg prometheus.Registerer) (http.Handler, error) {
	f := g.cfg.Identity.APISecretFile
	if f == "" {
		return nil, nil
	}
	secret, err := config.ReadSecret(f)
	if err != nil {
		return nil, fmt.Errorf("identity.api_secret_file: %w", err)
	}
	return g.ids.APIHandler(identity.APIOptions{
		Secret:     secret,
		IsClient:   func(ip netip.Addr) bool { return g.engine.Snapshot().IsClient(ip) },
		Trusted:    func(ip netip.Addr) bool { return prefixesContain(g.engine.Snapshot().Config.Admin.Allow, ip) },
		Registerer: reg,
	})
}

func prefixesContain(ps []netip.Prefix, ip netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
