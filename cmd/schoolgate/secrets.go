package main

import (
	"os"

	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/config"
)

// warnOpenCAKey warns when the interception CA's key can be read by every
// local user: whoever copies it can impersonate any site to the school's
// devices. The packaged layout is root:schoolgate 0640 (docs/install.md).
func warnOpenCAKey(cfg *config.Config, logger *zap.Logger) {
	ic := cfg.Proxy.Intercept
	if ic == nil || ic.CAKey == "" {
		return
	}
	st, err := os.Stat(ic.CAKey)
	if err != nil || st.Mode().Perm()&0o004 == 0 {
		return
	}
	logger.Warn("the interception CA key is readable by every local user: whoever copies it can impersonate any site "+
		"to the school's devices; make it readable by root and the service only",
		zap.String("ca_key", ic.CAKey), zap.String("mode", st.Mode().Perm().String()),
		zap.String("fix", "chown root:schoolgate KEY && chmod 0640 KEY"))
}
