package main

import (
	"syscall"

	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/admin"
	"github.com/schoolgate/schoolgate/config"
)

// checkFDBudget warns when the process's file-descriptor limit (Go raises
// the soft limit to the hard one at start) cannot hold every listener's
// cap at once: proxy.max_connections client connections and as many
// upstream ones, the admin listener's cap, and room for the DNS filter,
// the log and the lists. Each listener has its own cap, so that one
// cannot take the descriptors the others need; this says when the caps
// together are more than the system gives.
func checkFDBudget(cfg *config.Config, logger *zap.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	need := uint64(512) // DNS (TCP and upstream sockets), the log, lists, the runtime
	if cfg.Listen.Proxy != "" {
		need += 2 * uint64(cfg.Proxy.MaxConnections)
	}
	if cfg.Listen.Admin != "" {
		need += admin.DefaultMaxConns
	}
	if lim.Cur < need {
		logger.Warn("the file-descriptor limit is below what the listeners' caps add up to: raise it (LimitNOFILE= in the unit) or lower proxy.max_connections",
			zap.Uint64("limit", lim.Cur), zap.Uint64("needed", need))
	}
}
