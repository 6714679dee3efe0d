package proxy

import (
	"context"
	"net"
	"net/netip"
	"slices"

	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/policy"
)

// ruleSafeSearch cuts a tunnel whose ClientHello names a SafeSearch
// engine's host the tunnel was not dialled for: CONNECT to one of Google's
// own addresses, then SNI www.google.com, would reach its unrestricted
// servers.
const ruleSafeSearch = "safe_search"

// checkHello decides on what a relayed tunnel's ClientHello shows, and
// reports whether the tunnel must be cut:
//
//   - an SNI that is not a host name is malformed;
//   - a CONNECT that names a host is followed by a ClientHello for that
//     host: browsers never send another, and fronting does (host_mismatch);
//   - what the hello hides is decided as the pseudo-categories
//     policy.Hidden names: ip-literal for a CONNECT to an address whose
//     hello names no server that resolves to it, ech for ECH that can hide
//     the name; a profile rule naming them blocks the tunnel;
//   - a CONNECT to an address is decided on the name its hello gives, and
//     refused when that name is one the school intercepts (its URLs would
//     pass unread), or a SafeSearch engine's (the tunnel does not lead to
//     its SafeSearch servers).
//
// The log line of a cut tunnel names what was decided on: the SNI and its
// categories, or the CONNECT host with ip-literal or ech.
func (p *Proxy) checkHello(st *request, h helloInfo) bool {
	name := ""
	if h.sni != "" {
		n, ok := categories.NormalizeHost(h.sni)
		if !ok {
			st.verdict, st.rule, st.status = policy.Block, ruleTLSMalformed, statusCut
			p.logger.Info("tunnel cut: the TLS server name (SNI) is not a host name", zap.String("host", st.host),
				zap.Stringer("ip", st.ip), zap.String("user", st.user))
			return true
		}
		name = n
	}
	addr, err := netip.ParseAddr(st.host)
	isAddr := err == nil
	other := name != "" && name != st.host
	if other && !isAddr {
		p.sniMismatch(st, name, h.sni)
		return true
	}
	hello := policy.Hello{SNI: name, ECH: h.ech}
	if isAddr && other {
		hello.SNIHasHost = p.resolvesTo(name, addr)
	}
	seen := policy.Hidden(st.host, hello)
	if seen.Empty() && !other {
		return false
	}
	on := st.host
	if other {
		on = name
	}
	d := p.engine.Decide(policy.Args{User: st.user, Profile: st.named, IP: st.ip, Host: on, Time: st.start, Seen: seen})
	if other && p.shouldIntercept(&request{snap: st.snap, host: name, cats: d.Categories}) {
		p.sniMismatch(st, name, h.sni)
		return true
	}
	if d.Verdict != policy.Block && d.SafeSearch != nil && (st.ss == nil || st.ss.Target != d.SafeSearch.Target) {
		d.Verdict, d.Rule = policy.Block, ruleSafeSearch
		d.Reason = "the TLS server name is " + name + ", whose SafeSearch this tunnel does not lead to"
	}
	if d.Verdict != policy.Block {
		return false
	}
	p.logger.Info("tunnel cut: the ClientHello names or hides a host that is blocked; an IP address, ECH or SafeSearch bypass",
		zap.String("connect_host", st.host), zap.String("sni", name), zap.Bool("ech", h.ech),
		zap.String("rule", d.Rule), zap.String("reason", d.Reason), zap.Stringer("ip", st.ip), zap.String("user", st.user))
	// The log line names what was decided on (the program's log above
	// keeps the CONNECT host).
	st.host, st.cats, st.verdict, st.rule = on, d.Categories, policy.Block, d.Rule
	st.status = statusCut
	return true
}

// resolvesTo reports whether name resolves to addr, with the proxy's
// resolver and dial timeout; a failed lookup is "no".
func (p *Proxy) resolvesTo(name string, addr netip.Addr) bool {
	r := p.o.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.o.DialTimeout)
	defer cancel()
	addrs, err := r.LookupNetIP(ctx, "ip", name)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	return slices.ContainsFunc(addrs, func(a netip.Addr) bool { return a.Unmap() == addr })
}
