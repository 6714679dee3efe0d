package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/logging"
	"github.com/schoolgate/schoolgate/portal"
	"github.com/schoolgate/schoolgate/proxy"
)

// newPortal binds portal.listen and builds the sign-in page when it is
// set (nil otherwise). Its passwords are checked by the proxy (built
// next): one authenticator, one set of limits.
func (g *gateway) newPortal(reg prometheus.Registerer, accessLog *logging.Writer) (net.Listener, error) {
	p := g.cfg.Portal
	if !p.Enabled() {
		return nil, nil
	}
	ln, err := net.Listen("tcp", p.Listen)
	if err != nil {
		return nil, &listenError{"portal.listen", p.Listen, err}
	}
	g.portal, err = portal.New(portal.Options{
		Engine: g.engine, Identity: g.ids, Log: accessLog, Registerer: reg, Logger: g.logger.Named("portal"),
		Authenticate: func(ctx context.Context, ip netip.Addr, user, pass string) (string, error) {
			return g.prox.Authenticate(ctx, ip, user, pass)
		},
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("starting the portal: %w", err)
	}
	return ln, nil
}

// proxyPortal is the portal as the proxy takes it: a nil interface when off.
func (g *gateway) proxyPortal() proxy.Portal {
	if g.portal == nil {
		return nil
	}
	return g.portal
}

// portalListen is the running portal's portal.listen ("" when off), for
// the DNS filter, which answers portal.hostname with its address.
func (g *gateway) portalListen() string {
	if g.portal == nil {
		return ""
	}
	return g.cfg.Portal.Listen
}

// servePortal serves the portal on ln (from newPortal), once the proxy
// that checks its passwords runs.
func (g *gateway) servePortal(ln net.Listener) {
	if ln == nil {
		return
	}
	go func() { g.errc <- g.portal.Serve(ln) }()
	g.logger.Info("portal listening", zap.String("addr", ln.Addr().String()), zap.String("url", g.portal.SignInURL("")))
}
