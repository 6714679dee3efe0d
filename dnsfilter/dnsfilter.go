// Package dnsfilter is schoolgate's filtering DNS resolver, built on
// miekg/dns, deciding with the policy engine and writing the access log.
package dnsfilter

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/logging"
	"github.com/schoolgate/schoolgate/policy"
)

// Options wires the DNS filter to the rest of schoolgate.
type Options struct {
	Addr        string // listen address, UDP and TCP
	Engine      *policy.Engine
	Log         *logging.Writer
	RecentUsers *policy.RecentUsers
	Registerer  prometheus.Registerer
	Logger      *zap.Logger
}

// Server is the DNS filter.
type Server struct{}

// New returns a DNS filter.
func New(o Options) (*Server, error) { return nil, errors.New("dnsfilter: not implemented yet") }

// Start starts listening; it returns once the listeners are bound.
func (s *Server) Start() error { return errors.New("dnsfilter: not implemented yet") }

// Shutdown stops the listeners, letting in-flight queries finish until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return nil }

// Reload tells the filter the engine has a new snapshot (upstreams, cache
// size and blocked answer may have changed).
func (s *Server) Reload() {}
