// Package proxy is schoolgate's explicit HTTP/HTTPS forward proxy, built on
// goproxy, deciding with the policy engine and writing the access log.
package proxy

import (
	"context"
	"errors"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/logging"
	"github.com/schoolgate/schoolgate/policy"
)

// Options wires the proxy to the rest of schoolgate.
type Options struct {
	Engine      *policy.Engine
	Log         *logging.Writer
	RecentUsers *policy.RecentUsers
	Registerer  prometheus.Registerer
	Logger      *zap.Logger
	// AdminAddr is the admin listener's address, never reachable through the proxy.
	AdminAddr string
}

// Proxy is the forward proxy.
type Proxy struct{}

// New returns a proxy.
func New(o Options) (*Proxy, error) { return nil, errors.New("proxy: not implemented yet") }

// Serve serves on ln until Shutdown.
func (p *Proxy) Serve(ln net.Listener) error { return errors.New("proxy: not implemented yet") }

// Shutdown stops accepting, lets in-flight requests finish until ctx ends.
func (p *Proxy) Shutdown(ctx context.Context) error { return nil }
