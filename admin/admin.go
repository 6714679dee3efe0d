// Package admin serves the admin listener: /metrics, /healthz, /proxy.pac
// and /wpad.dat, and the logon API (POST /api/identity, identity.APIHandler)
// when it is configured.
//
// The PAC file (served as both /proxy.pac and /wpad.dat, for WPAD
// discovery) sends web traffic to the proxy listener and leaves plain host
// names (not IPv6 literals, which have no dot either), localhost and the
// school's own networks (`clients` and `networks`; IPv6 ones where the
// browser has isInNetEx, as Chromium does) direct. It is
// built from the snapshot in force, so a reload changes it. PACHandler is
// also what the proxy listener serves the file with.
package admin

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/policy"
)

// Options wires the admin handler.
type Options struct {
	Gatherer prometheus.Gatherer
	Engine   *policy.Engine
	// ProxyAddr is the proxy listener's address ("host:port"). When its
	// host is a wildcard (or empty), the PAC file names the host the PAC
	// was requested from, with the proxy's port.
	ProxyAddr string
	// IdleTimeout closes idle connections (default DefaultIdleTimeout).
	IdleTimeout time.Duration
	// Identity, when set, serves the logon API at POST /api/identity
	// (identity.APIHandler): reachable from `clients` as well as
	// admin.allow, as every school machine's logon script calls it; its
	// signature, not the address, is what authenticates it.
	Identity http.Handler
}

// Handler returns the admin listener's handler.
func Handler(o Options) http.Handler {
	mux := http.NewServeMux()
	if o.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if o.Engine == nil || o.Engine.Snapshot() == nil {
			http.Error(w, "no policy loaded", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintln(w, "ok")
	})
	pac := PACHandler(o.Engine, o.ProxyAddr)
	mux.Handle("GET /proxy.pac", pac)
	mux.Handle("GET /wpad.dat", pac)
	if o.Identity != nil {
		mux.Handle("POST "+apiIdentity, o.Identity)
	}
	return mux
}

// PACHandler serves the PAC file for the proxy listening on proxyAddr,
// built from engine's snapshot in force. The admin listener serves it, and
// so does the proxy listener (to a GET addressed to the proxy itself), so
// that browsers can find the proxy without the admin listener, which
// carries /metrics, being on the pupils' side.
func PACHandler(engine *policy.Engine, proxyAddr string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if proxyAddr == "" {
			http.Error(w, "the proxy listener is off", http.StatusNotFound)
			return
		}
		var direct []netip.Prefix
		if engine != nil {
			if s := engine.Snapshot(); s != nil && s.Config != nil {
				direct = append(direct, s.Config.Clients...)
				for _, n := range s.Config.Networks {
					direct = append(direct, n.Prefix)
				}
			}
		}
		body := PAC(proxyHostPort(proxyAddr, r.Host), direct)
		w.Header().Set("Content-Type", "application/x-ns-proxy-autoconfig")
		w.Header().Set("Cache-Control", "max-age=300")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method != http.MethodHead {
			w.Write(body) //nolint:errcheck // the client may have gone
		}
	})
}

// proxyHostPort is the address clients should use for the proxy: its
// listen address, or the host the PAC was asked from when the proxy
// listens on a wildcard address.
func proxyHostPort(listen, reqHost string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip, err := netip.ParseAddr(host); host != "" && (err != nil || !ip.IsUnspecified()) {
		return net.JoinHostPort(host, port)
	}
	h := reqHost
	if hh, _, err := net.SplitHostPort(reqHost); err == nil {
		h = hh
	}
	// The Host header is the client's word: only a well-formed host name
	// or address goes into the script.
	if n, ok := categories.NormalizeHost(h); ok && safePACHost(n) {
		return net.JoinHostPort(n, port)
	}
	return net.JoinHostPort("127.0.0.1", port)
}

func safePACHost(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':') {
			return false
		}
	}
	return s != ""
}

// PAC returns a proxy auto-config script sending http and https to the
// proxy at hostPort, and leaving plain host names, localhost and the IPv4
// prefixes in direct (for hosts written as addresses) direct. It does no
// DNS look-up: browsers call it for every URL.
func PAC(hostPort string, direct []netip.Prefix) []byte {
	var b bytes.Buffer
	b.WriteString("// schoolgate proxy auto-config\n")
	b.WriteString("function FindProxyForURL(url, host) {\n")
	b.WriteString("  host = host.toLowerCase();\n")
	// isPlainHostName is true for any name without a dot, which an IPv6
	// literal (2001:db8::1) is too: an address is never a plain host name.
	b.WriteString("  if ((isPlainHostName(host) && host.indexOf(\":\") < 0) || host == \"localhost\" || dnsDomainIs(host, \".localhost\") ||\n")
	b.WriteString("      host == \"127.0.0.1\" || host == \"::1\" || host == \"[::1]\")\n")
	b.WriteString("    return \"DIRECT\";\n")
	var v4 []netip.Prefix
	for _, p := range direct {
		p = p.Masked()
		if p.Addr().Is4() && !slices.Contains(v4, p) {
			v4 = append(v4, p)
		}
	}
	if len(v4) > 0 {
		b.WriteString("  if (/^\\d+\\.\\d+\\.\\d+\\.\\d+$/.test(host)) {\n")
		for _, p := range v4 {
			fmt.Fprintf(&b, "    if (isInNet(host, %q, %q)) return \"DIRECT\";\n", p.Addr().String(), mask4(p.Bits()))
		}
		b.WriteString("  }\n")
	}
	// IPv6 networks: isInNetEx (a Microsoft extension Chromium implements)
	// takes CIDR; a browser without it sends IPv6 literals to the proxy.
	var v6 []netip.Prefix
	for _, p := range direct {
		p = p.Masked()
		if p.Addr().Is6() && !p.Addr().Is4In6() && !slices.Contains(v6, p) {
			v6 = append(v6, p)
		}
	}
	if len(v6) > 0 {
		b.WriteString("  if (host.indexOf(\":\") >= 0 && typeof isInNetEx == \"function\") {\n")
		b.WriteString("    var h6 = host.replace(/^\\[|\\]$/g, \"\");\n")
		for _, p := range v6 {
			fmt.Fprintf(&b, "    if (isInNetEx(h6, %q)) return \"DIRECT\";\n", p.String())
		}
		b.WriteString("  }\n")
	}
	fmt.Fprintf(&b, "  var u = url.substring(0, 6).toLowerCase();\n")
	fmt.Fprintf(&b, "  if (u == \"http:/\" || u == \"https:\" || u.substring(0, 3) == \"ws:\" || u.substring(0, 4) == \"wss:\")\n")
	fmt.Fprintf(&b, "    return %q;\n", "PROXY "+hostPort)
	b.WriteString("  return \"DIRECT\";\n}\n")
	return b.Bytes()
}

func mask4(bits int) string {
	m := uint32(0)
	if bits > 0 {
		m = ^uint32(0) << (32 - bits)
	}
	return strings.Join([]string{
		strconv.Itoa(int(m >> 24)), strconv.Itoa(int(m >> 16 & 0xff)),
		strconv.Itoa(int(m >> 8 & 0xff)), strconv.Itoa(int(m & 0xff)),
	}, ".")
}
