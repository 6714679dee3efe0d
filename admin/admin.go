// Package admin serves the admin listener: /metrics, /healthz, /proxy.pac
// and /wpad.dat.
package admin

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/schoolgate/schoolgate/policy"
)

// Options wires the admin handler.
type Options struct {
	Gatherer prometheus.Gatherer
	Engine   *policy.Engine
}

// Handler returns the admin listener's handler.
func Handler(o Options) http.Handler {
	return http.NotFoundHandler()
}
