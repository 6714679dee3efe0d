// Package firewall writes the nftables ruleset of transparent gateway
// mode: the school's devices, unconfigured, have their web and DNS traffic
// redirected to schoolgate's listeners, and the ways around them (QUIC,
// DNS over TLS) refused.
//
// The ruleset is one table, `table inet schoolgate`, so that loading it
// (`schoolgate firewall -apply`, `nft -f -`) replaces only schoolgate's own
// rules and leaves the rest of the machine's firewall alone.
package firewall

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/schoolgate/schoolgate/config"
)

// Table is the nftables table the ruleset owns.
const Table = "inet schoolgate"

// target is where one kind of traffic is redirected: a port on the
// address the traffic arrived at (redirect), or a fixed address (dnat).
type target struct {
	setting string // the listen.* key, for messages
	addr    netip.Addr
	port    uint16
}

func parseTarget(setting, s string) (target, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return target{}, fmt.Errorf("%s %q: want host:port", setting, s)
	}
	t := target{setting: setting}
	var p int
	if _, err := fmt.Sscanf(port, "%d", &p); err != nil || p < 1 || p > 65535 {
		return target{}, fmt.Errorf("%s %q: the firewall needs a fixed port (1-65535)", setting, s)
	}
	t.port = uint16(p)
	if host == "" {
		return t, nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return target{}, fmt.Errorf("%s %q: the firewall needs an IP address, not a name", setting, s)
	}
	a = a.Unmap()
	if a.IsLoopback() {
		return target{}, fmt.Errorf("%s %s listens on loopback only, where redirected traffic never arrives: listen on :%d (or the client-facing address)", setting, s, t.port)
	}
	if !a.IsUnspecified() {
		t.addr = a
	}
	return t, nil
}

// rules writes match's traffic redirected to t, for the families t can
// take.
func (t target) rules(b *strings.Builder, v4, v6 string, match string) {
	switch {
	case !t.addr.IsValid():
		if v4 != "" {
			fmt.Fprintf(b, "\t\tip saddr %s %s redirect to :%d\n", v4, match, t.port)
		}
		if v6 != "" {
			fmt.Fprintf(b, "\t\tip6 saddr %s %s redirect to :%d\n", v6, match, t.port)
		}
	case t.addr.Is4() && v4 != "":
		fmt.Fprintf(b, "\t\tip saddr %s %s dnat ip to %s\n", v4, match, netip.AddrPortFrom(t.addr, t.port))
	case t.addr.Is6() && v6 != "":
		fmt.Fprintf(b, "\t\tip6 saddr %s %s dnat ip6 to %s\n", v6, match, netip.AddrPortFrom(t.addr, t.port))
	}
}

// Ruleset returns the nftables ruleset for cfg: from the clients networks,
// TCP 80 and 443 redirected to listen.transparent_http and
// listen.transparent_https, DNS (UDP and TCP 53) to listen.dns, QUIC
// (UDP 80 and 443) and DNS over TLS or QUIC (853) rejected with an error
// the client sees at once (ICMP port unreachable, TCP reset) so browsers
// fall back to TCP and phones to plain DNS without waiting. The gateway's
// own traffic passes untouched: it never goes through the prerouting and
// forward hooks, and traffic to the gateway's own addresses is not
// redirected (only DNS is, to the filter).
func Ruleset(cfg *config.Config, source string) (string, error) {
	s4, s6, errs := clientSets(cfg)
	dns, web, terrs := redirects(cfg)
	if errs = append(errs, terrs...); len(errs) > 0 {
		return "", errors.Join(errs...)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# schoolgate transparent gateway mode, from %s.\n", source)
	b.WriteString("# Load with `schoolgate firewall -apply` (nft -f -): it replaces only this table.\n")
	fmt.Fprintf(&b, "table %s\ndelete table %s\n", Table, Table)
	fmt.Fprintf(&b, "table %s {\n", Table)
	b.WriteString("\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n")
	b.WriteString("\t\t# The gateway's own traffic (on loopback too) is not redirected.\n")
	b.WriteString("\t\tiif lo return\n")
	if dns != nil {
		b.WriteString("\t\t# DNS to any resolver is answered by the filter.\n")
		dns.t.rules(&b, s4, s6, dns.match)
	}
	b.WriteString("\t\t# The gateway's own addresses (its admin page, the explicit proxy) are not redirected.\n")
	b.WriteString("\t\tfib daddr type local return\n")
	for _, t := range web {
		t.t.rules(&b, s4, s6, t.match)
	}
	b.WriteString("\t}\n")
	b.WriteString("\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n")
	b.WriteString("\t\t# QUIC and DNS over TLS/QUIC would pass the filter unread: refused at once, so clients fall back.\n")
	for _, fam := range []struct{ match, set string }{{"ip saddr", s4}, {"ip6 saddr", s6}} {
		if fam.set == "" {
			continue
		}
		fmt.Fprintf(&b, "\t\t%s %s udp dport { 80, 443, 853 } reject with icmpx type port-unreachable\n", fam.match, fam.set)
		fmt.Fprintf(&b, "\t\t%s %s tcp dport 853 reject with tcp reset\n", fam.match, fam.set)
	}
	b.WriteString("\t}\n}\n")
	return b.String(), nil
}

// clientSets is clients as an nft set of IPv4 and one of IPv6 networks
// ("" for a family with none).
func clientSets(cfg *config.Config) (s4, s6 string, errs []error) {
	var v4, v6 []string
	for _, p := range cfg.Clients {
		p = p.Masked()
		switch {
		case p.Addr().Is4In6():
			v4 = append(v4, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).String())
		case p.Addr().Is4():
			v4 = append(v4, p.String())
		default:
			v6 = append(v6, p.String())
		}
	}
	if len(v4)+len(v6) == 0 {
		errs = append(errs, errors.New("clients is empty: there is nobody to redirect"))
	}
	set := func(s []string) string {
		if len(s) == 0 {
			return ""
		}
		return "{ " + strings.Join(s, ", ") + " }"
	}
	return set(v4), set(v6), errs
}

// redirect is where traffic that match selects goes.
type redirect struct {
	t     target
	match string
}

// redirects is where DNS (nil if listen.dns is off) and web traffic go.
func redirects(cfg *config.Config) (dns *redirect, web []redirect, errs []error) {
	one := func(setting, addr, match string) *redirect {
		if addr == "" {
			return nil
		}
		t, err := parseTarget(setting, addr)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		return &redirect{t, match}
	}
	dns = one("listen.dns", cfg.Listen.DNS, "meta l4proto { tcp, udp } th dport 53")
	for _, r := range []*redirect{
		one("listen.transparent_http", cfg.Listen.TransparentHTTP, "tcp dport 80"),
		one("listen.transparent_https", cfg.Listen.TransparentHTTPS, "tcp dport 443"),
	} {
		if r != nil {
			web = append(web, *r)
		}
	}
	if cfg.Listen.TransparentHTTP == "" && cfg.Listen.TransparentHTTPS == "" {
		errs = append(errs, errors.New("neither listen.transparent_http nor listen.transparent_https is set: there is nothing to redirect web traffic to"))
	}
	return dns, web, errs
}
