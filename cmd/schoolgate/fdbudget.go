package main

import (
	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/admin"
	"github.com/schoolgate/schoolgate/config"
)

// fdBudget shares the process's file descriptors (RLIMIT_NOFILE, which
// the Go runtime raises to the hard limit at start) between the
// listeners, and each listener's cap comes from its share, so that
// connections to one cannot take the descriptors the others need (the
// admin listener's idle connections once took the proxy and the DNS
// filter down with them):
//
//   - reserve: 128 for what is not a client connection (the listeners,
//     the access log and its index, lists being read, the state folder,
//     the DNS filter's upstream sockets, alert webhooks);
//   - admin: a sixteenth, at most admin.DefaultMaxConns (256);
//   - dnsTCP: an eighth, at most 1024 DNS-over-TCP connections;
//   - proxy: half of what is left, since a proxied connection may hold
//     two (the client's and the upstream's); proxy.max_connections is
//     lowered to it when larger.
//
// With the packaged unit's LimitNOFILE=65536 that is 256, 1024 and 32 064
// connections; with a shell's common 1024, 64, 128 and 352.
type fdBudget struct {
	nofile, admin, dnsTCP, proxy int
}

const fdReserve = 128

func newFDBudget(nofile int) fdBudget {
	b := fdBudget{nofile: nofile}
	b.admin = max(min(admin.DefaultMaxConns, nofile/16), 4)
	b.dnsTCP = max(min(1024, nofile/8), 4)
	b.proxy = max((nofile-fdReserve-b.admin-b.dnsTCP)/2, 16)
	return b
}

// log tells the program log the shares, and warns when the config asks
// for more proxy connections than the share allows.
func (b fdBudget) log(cfg *config.Config, logger *zap.Logger) {
	logger.Info("file descriptors shared", zap.Int("nofile", b.nofile), zap.Int("admin_connections", b.admin),
		zap.Int("dns_tcp_connections", b.dnsTCP), zap.Int("proxy_connections", b.proxy))
	if cfg.Listen.Proxy != "" && cfg.Proxy.MaxConnections > b.proxy {
		logger.Warn("proxy.max_connections is more than the file-descriptor limit allows; the proxy holds at most proxy_connections: "+
			"raise the limit (LimitNOFILE= in the unit) or lower proxy.max_connections",
			zap.Int("max_connections", cfg.Proxy.MaxConnections), zap.Int("proxy_connections", b.proxy), zap.Int("nofile", b.nofile))
	}
}
