package main

import (
	"fmt"
	"net/http"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

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

// startRADIUS binds identity.radius.listen when it is set and serves
// RADIUS accounting on it. Senders default to loopback and `clients`;
// the secret and the senders take a restart.
func (g *gateway) startRADIUS(reg prometheus.Registerer) error {
	r := g.cfg.Identity.RADIUS
	if r.Listen == "" {
		return nil
	}
	secret, err := config.ReadSecret(r.SecretFile)
	if err != nil {
		return fmt.Errorf("identity.radius.secret_file: %w", err)
	}
	allowed := r.Clients
	if len(allowed) == 0 {
		allowed = append([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, g.cfg.Clients...)
	}
	srv, err := g.ids.ListenRADIUS(identity.RADIUSOptions{
		Addr:       r.Listen,
		Secret:     secret,
		Allowed:    func(ip netip.Addr) bool { return prefixesContain(allowed, ip) },
		IsClient:   func(ip netip.Addr) bool { return g.engine.Snapshot().IsClient(ip) },
		Registerer: reg,
		Logger:     g.logger.Named("radius"),
	})
	if err != nil {
		return &listenError{"identity.radius.listen", r.Listen, err}
	}
	g.radius = srv
	go func() {
		// nil after Close, at the stop: nothing to report then.
		if err := srv.Serve(); err != nil {
			select {
			case g.errc <- err:
			default:
			}
		}
	}()
	g.logger.Info("radius accounting listening", zap.String("addr", srv.Addr().String()))
	return nil
}
