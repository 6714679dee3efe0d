package dnsfilter

import (
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/schoolgate/schoolgate/config"
)

const portalHost = "signin.school.example"

// portalConfig is testConfig with the portal on listen, its name also
// listed as gambling (blocked for everyone) and inside a dns.forward
// zone: neither may touch the filter's own answer.
func portalConfig(up, listen string) *config.Config {
	cfg := testConfig(up)
	cfg.Portal = config.Portal{Listen: listen, Hostname: portalHost,
		Networks: []netip.Prefix{netip.MustParsePrefix(studentIP + "/32")}, IdleMinutes: 30}
	cfg.Lists[0].Domains = append(cfg.Lists[0].Domains, portalHost)
	cfg.DNS.Forward = []config.Forward{{Zone: "school.example", Servers: []string{up}}}
	return cfg
}

// digPortal runs dig against addr from the source address from and
// returns its output.
func digPortal(t *testing.T, addr, from string, args ...string) string {
	t.Helper()
	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("dig not installed")
	}
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command(dig, append([]string{"@" + host, "-p", port, "-b", from, "+tries=1", "+time=5"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// answerRE matches an answer line of dig's for the portal's name.
func answerRE(qtype, addr string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(portalHost+".") + `\s+60\s+IN\s+` + qtype + `\s+` + regexp.QuoteMeta(addr) + `$`)
}

// nodata reports whether dig's output is NOERROR with no answer and the
// SOA that lets the client keep that for a minute.
func nodata(out string) bool {
	return strings.Contains(out, "status: NOERROR") && strings.Contains(out, "ANSWER: 0,") &&
		regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(portalHost+".")+`\s+60\s+IN\s+SOA\s`).MatchString(out)
}

// portalEnv is a filter on bind (its Addr) whose portal runs on listen.
func portalEnv(t *testing.T, cfg *config.Config, bind string) *env {
	t.Helper()
	return newEnvWith(t, cfg, func(o *Options) {
		o.Addr, o.PortalListen = bind, cfg.Portal.Listen
	})
}

func TestPortalNameListenAddress(t *testing.T) {
	up := standardUpstream(t)
	e := portalEnv(t, portalConfig(up.addr, "192.0.2.10:8443"), "127.0.0.1:0")
	for _, tcp := range []bool{false, true} {
		proto := "+notcp"
		if tcp {
			proto = "+tcp"
		}
		t.Run(proto, func(t *testing.T) {
			out := digPortal(t, e.addr, studentIP, proto, portalHost, "A")
			if !answerRE("A", "192.0.2.10").MatchString(out) || !strings.Contains(out, " aa") {
				t.Errorf("A: want portal.listen's address, authoritative:\n%s", out)
			}
			// Upper case, as some stub resolvers randomise it: the same answer.
			if out := digPortal(t, e.addr, staffIP, proto, "SignIn.School.Example", "A"); !strings.Contains(out, "192.0.2.10") {
				t.Errorf("mixed case:\n%s", out)
			}
			if out := digPortal(t, e.addr, studentIP, proto, portalHost, "ANY"); !answerRE("A", "192.0.2.10").MatchString(out) {
				t.Errorf("ANY: want the address:\n%s", out)
			}
			for _, qt := range []string{"AAAA", "MX", "HTTPS", "TXT"} {
				if out := digPortal(t, e.addr, studentIP, proto, portalHost, qt); !nodata(out) {
					t.Errorf("%s: want NOERROR with no records (portal.listen is IPv4):\n%s", qt, out)
				}
			}
		})
	}
	for _, qt := range []string{"A", "AAAA", "ANY", "MX", "HTTPS", "TXT"} {
		if n := up.count(portalHost+".", qt); n != 0 {
			t.Errorf("%s asked upstream %d times: the portal's name is never sent on", qt, n)
		}
	}
	l := e.findLog(portalHost, "A")
	if l == nil || l["rule"] != RulePortal || l["verdict"] != "allow" || l["status"] != "NOERROR" || l["profile"] == "" {
		t.Errorf("log line: %v", l)
	}
	// A stranger is refused as for any name.
	if r := e.ask(strangerIP, portalHost, 1, false, false); r.Rcode != 5 {
		t.Errorf("stranger: rcode %d, want REFUSED", r.Rcode)
	}
}

// TestPortalNameArrival: portal.listen binds every address, so each query
// is answered with the address it arrived at: a TCP connection's local
// address, a UDP socket's own address, and on a wildcard UDP socket the
// address the gateway answers the client from.
func TestPortalNameArrival(t *testing.T) {
	up := standardUpstream(t)
	for _, tc := range []struct {
		name, bind, server, from string
		qtype, want              string
	}{
		{"IPv4 socket", "127.0.0.1:0", "127.0.0.1", "127.0.0.1", "A", "127.0.0.1"},
		{"wildcard socket, IPv4", "0.0.0.0:0", "127.0.0.1", "127.0.0.1", "A", "127.0.0.1"},
		{"wildcard socket, IPv6", "[::]:0", "::1", "::1", "AAAA", "::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := portalConfig(up.addr, ":8443")
			cfg.Clients = append(cfg.Clients, netip.MustParsePrefix("::1/128"))
			e := portalEnv(t, cfg, tc.bind)
			_, port, _ := net.SplitHostPort(e.addr)
			addr := net.JoinHostPort(tc.server, port)
			other := map[string]string{"A": "AAAA", "AAAA": "A"}[tc.qtype]
			for _, proto := range []string{"+notcp", "+tcp"} {
				if out := digPortal(t, addr, tc.from, proto, portalHost, tc.qtype); !answerRE(tc.qtype, tc.want).MatchString(out) {
					t.Errorf("%s %s: want %s:\n%s", proto, tc.qtype, tc.want, out)
				}
				// The other family: the query arrived over this one.
				if out := digPortal(t, addr, tc.from, proto, portalHost, other); !nodata(out) {
					t.Errorf("%s %s: want NOERROR with no records:\n%s", proto, other, out)
				}
			}
		})
	}
}

// TestPortalNameReload: the name follows the snapshot (a reload renames
// or removes it at once); the address is the running portal's, which a
// reload does not move (portal.listen takes a restart).
func TestPortalNameReload(t *testing.T) {
	up := standardUpstream(t)
	e := portalEnv(t, portalConfig(up.addr, "192.0.2.10:8443"), "127.0.0.1:0")
	if out := digPortal(t, e.addr, studentIP, portalHost, "A"); !answerRE("A", "192.0.2.10").MatchString(out) {
		t.Fatalf("before reload:\n%s", out)
	}
	reload := func(cfg *config.Config) {
		t.Helper()
		snap, err := policyBuild(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.reload(snap); err != nil {
			t.Fatal(err)
		}
	}
	cfg := portalConfig(up.addr, "[2001:db8::10]:8443")
	cfg.Portal.Hostname = "wifi.school.example"
	reload(cfg)
	if out := digPortal(t, e.addr, studentIP, "wifi.school.example", "A"); !strings.Contains(out, "wifi.school.example.\t60\tIN\tA\t192.0.2.10") {
		t.Errorf("the new name, after reload: want the running portal's address:\n%s", out)
	}
	// The old name is an ordinary one again, here inside the forward
	// zone: sent to its servers.
	digPortal(t, e.addr, studentIP, portalHost, "A")
	if n := up.count(portalHost+".", "A"); n != 1 {
		t.Errorf("the old name went to the forward zone's server %d times, want 1", n)
	}
	// A portal turned off by a reload: its name is not answered here
	// (before, it never went upstream).
	if n := up.count("wifi.school.example.", "A"); n != 0 {
		t.Fatalf("the portal's name went to the forward zone's server %d times", n)
	}
	cfg = portalConfig(up.addr, "")
	cfg.Portal = config.Portal{}
	reload(cfg)
	digPortal(t, e.addr, studentIP, "wifi.school.example", "A")
	if n := up.count("wifi.school.example.", "A"); n != 1 {
		t.Errorf("without a portal the name went to the forward zone's server %d times, want 1", n)
	}
}

func TestListenAddr(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:8443":      "192.0.2.1",
		"[2001:db8::1]:8443":  "2001:db8::1",
		"localhost:8443":      "127.0.0.1",
		":8443":               "invalid IP",
		"0.0.0.0:8443":        "invalid IP",
		"[::]:8443":           "invalid IP",
		"gw.school.example:1": "invalid IP",
		"nonsense":            "invalid IP",
	} {
		if got := listenAddr(in).String(); got != want {
			t.Errorf("listenAddr(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestAnswerable(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":        "192.0.2.1",
		"2001:db8::1":      "2001:db8::1",
		"fe80::1%eth0":     "invalid IP",
		"fe80::1":          "invalid IP",
		"2001:db8::1%eth0": "2001:db8::1",
	} {
		if got := answerable(netip.MustParseAddr(in)).String(); got != want {
			t.Errorf("answerable(%s) = %s, want %s", in, got, want)
		}
	}
}
