//go:build tools

// This file pins the project's chosen dependencies in go.mod while the
// packages that use them are being written; it is never built.
package schoolgate

import (
	_ "github.com/elazarl/goproxy"
	_ "github.com/hashicorp/golang-lru/v2"
	_ "github.com/hashicorp/golang-lru/v2/simplelru"
	_ "github.com/miekg/dns"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "go.uber.org/zap"
	_ "golang.org/x/crypto/bcrypt"
	_ "golang.org/x/net/html"
	_ "golang.org/x/net/idna"
	_ "golang.org/x/text/unicode/norm"
	_ "gopkg.in/yaml.v3"
)
