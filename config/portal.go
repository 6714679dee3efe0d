package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/schoolgate/schoolgate/categories"
)

// Portal is the sign-in page for devices that cannot do proxy sign-in
// (BYOD, guests, transparent traffic): docs/identity.md.
type Portal struct {
	// Listen is the portal's own listener (host:port, TCP); "" turns the
	// portal off.
	Listen string
	// Hostname is the name clients reach the portal by: the proxy
	// redirects to it and answers requests for it itself, and a minted
	// certificate names it.
	Hostname string
	// Cert and Key are the portal's TLS certificate and key (PEM). With
	// neither, the portal mints a certificate for Hostname from the
	// school CA (proxy.intercept), or, on a loopback Listen, speaks plain
	// HTTP.
	Cert, Key string
	// Networks need a sign-in: a client address in them that the
	// identity table does not name is sent to the portal.
	Networks []netip.Prefix
	// IdleMinutes ends a portal sign-in after this long without traffic
	// from its address (a sign-in also ends at the end of the day).
	IdleMinutes int
	// Lines of portal, listen and cert, for problems.
	Line, ListenLine, CertLine int
}

// DefaultPortalIdleMinutes is portal.idle_minutes when absent: a lesson
// with the device in a bag does not sign its owner out, a device left
// signed in over lunch does not stay named for someone else all afternoon.
const DefaultPortalIdleMinutes = 30

// maxPortalIdleMinutes is a day: a sign-in ends at the end of the day anyway.
const maxPortalIdleMinutes = 24 * 60

// Enabled reports whether the portal is on.
func (p *Portal) Enabled() bool { return p.Listen != "" }

// PlainHTTP reports whether the portal speaks plain HTTP: only on a
// loopback listener without a certificate of its own (a front end on the
// same machine, or a test).
func (p *Portal) PlainHTTP() bool {
	return p.Cert == "" && listenLoopback(p.Listen)
}

// Idle is IdleMinutes as a duration.
func (p *Portal) Idle() time.Duration { return time.Duration(p.IdleMinutes) * time.Minute }

// Required reports whether a client at ip must sign in at the portal
// before it uses the web (its address is in portal.networks).
func (p *Portal) Required(ip netip.Addr) bool {
	if p.Listen == "" {
		return false
	}
	ip = ip.Unmap()
	for _, n := range p.Networks {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// LoadCert loads portal.cert and portal.key: the one place the pair is
// judged, by `config check` and by the portal at start and reload.
func (p *Portal) LoadCert() (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(p.Cert, p.Key)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// listenLoopback reports whether a listen address binds loopback only.
func listenLoopback(s string) bool {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	return loopbackHost(host)
}

// portal decodes `portal`.
func (d *decoder) portal(k, n *yaml.Node) {
	p := &d.cfg.Portal
	p.Line = k.Line
	var networksSet bool
	d.mapping(n, "portal", []field{
		{"listen", func(k, v *yaml.Node) {
			p.ListenLine = k.Line
			if s, ok := d.listenAddr(v, "portal.listen"); ok {
				p.Listen = s
			}
		}},
		{"hostname", func(_, v *yaml.Node) {
			s, ok := d.str(v, "portal.hostname")
			if !ok || strings.TrimSpace(s) == "" {
				return
			}
			h, ok := categories.NormalizeHost(strings.TrimSpace(s))
			if !ok || strings.Contains(s, ":") && !strings.Contains(h, ":") {
				d.addf(deref(v).Line, "portal.hostname %q is not a host name (no scheme, port or path: the name alone, such as signin.school.example)", s)
				return
			}
			p.Hostname = h
		}},
		{"cert", func(k, v *yaml.Node) {
			p.CertLine = k.Line
			if s, ok := d.str(v, "portal.cert"); ok {
				p.Cert = strings.TrimSpace(s)
			}
		}},
		{"key", func(_, v *yaml.Node) {
			if s, ok := d.str(v, "portal.key"); ok {
				p.Key = strings.TrimSpace(s)
			}
		}},
		{"networks", func(_, v *yaml.Node) {
			networksSet = !isEmptyList(v)
			p.Networks = d.prefixes(v, "portal.networks")
		}},
		{"idle_minutes", func(_, v *yaml.Node) {
			if m, ok := d.nonNegative(v, "portal.idle_minutes", true); ok {
				if m > maxPortalIdleMinutes {
					d.addf(deref(v).Line, "portal.idle_minutes %d is over a day (%d): a sign-in ends at the end of the day anyway", m, maxPortalIdleMinutes)
					return
				}
				p.IdleMinutes = m
			}
		}},
	})
	switch {
	case p.Listen == "" && (networksSet || p.Hostname != "" || p.Cert != ""):
		d.addf(k.Line, "portal: portal.listen is not set, so no one could sign in (set it, such as :8443, or remove portal)")
	case p.Listen == "":
	case p.Hostname == "":
		d.addf(k.Line, "portal.listen is set but portal.hostname is not: the name clients reach the portal by is needed to send them there")
	case (p.Cert == "") != (p.Key == ""):
		line := p.CertLine
		if line == 0 {
			line = k.Line
		}
		d.addf(line, "portal.cert and portal.key go together: set both, or neither to mint a certificate from the school CA (proxy.intercept)")
	}
	// Whether the school CA can mint the certificate is known once
	// proxy: has been read, wherever it is in the file.
	d.later = append(d.later, func() {
		if l := d.cfg.Listen; p.Listen != "" && l.Proxy == "" && l.TransparentHTTP == "" && l.TransparentHTTPS == "" {
			d.addf(p.ListenLine, "portal.listen is set but the proxy is not (listen.proxy, listen.transparent_http or listen.transparent_https): "+
				"the portal signs in for the proxy, which checks its passwords")
		}
		if p.Listen != "" && p.Hostname != "" && p.Cert == "" && p.Key == "" &&
			!listenLoopback(p.Listen) && d.cfg.Proxy.Intercept == nil {
			d.addf(p.ListenLine, "portal.listen %s is not loopback: the portal needs TLS there; set portal.cert and portal.key, "+
				"or proxy.intercept (the school CA) to mint a certificate for %s (plain HTTP only on a loopback address)", p.Listen, p.Hostname)
		}
	})
}

// checkPortal is config check's look at the portal's certificate: the
// pair must load, and name portal.hostname.
func checkPortal(cfg *Config, addf func(line int, format string, args ...any)) {
	p := &cfg.Portal
	if p.Listen == "" || p.Cert == "" || p.Key == "" {
		return
	}
	c, err := p.LoadCert()
	if err != nil {
		addf(p.CertLine, "portal.cert: %v", err)
		return
	}
	if c.Leaf != nil && p.Hostname != "" {
		if err := c.Leaf.VerifyHostname(p.Hostname); err != nil {
			addf(p.CertLine, "portal.cert %s does not name portal.hostname %s: browsers would refuse it (%v)", p.Cert, p.Hostname, err)
		}
	}
}

// portalWarnings is config check's warning about a portal the devices it
// is for cannot reach: on a loopback portal.listen only the gateway
// itself reaches the page (and the DNS filter answers portal.hostname
// with that loopback address), yet portal.networks names networks of
// other devices. Serving it there through a front end on the same
// machine is a choice, so it is a warning, not a problem.
func portalWarnings(cfg *Config, file string) Problems {
	p := &cfg.Portal
	if p.Listen == "" || !listenLoopback(p.Listen) {
		return nil
	}
	var outside []string
	for _, n := range p.Networks {
		if a := n.Masked().Addr(); !a.IsLoopback() || a.Is4() && n.Bits() < 8 {
			outside = append(outside, n.String())
		}
	}
	if len(outside) == 0 {
		return nil
	}
	return Problems{{File: file, Line: p.ListenLine, Msg: fmt.Sprintf("warning: portal.listen %s is loopback, so only the gateway itself can reach the sign-in page "+
		"(and the DNS filter answers %s with a loopback address), but portal.networks names %s: their devices cannot sign in; "+
		"listen on an address of the gateway's (such as :8443), or serve the page through a front end on one",
		p.Listen, p.Hostname, strings.Join(outside, ", "))}}
}
