package dnsfilter

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/schoolgate/schoolgate/config"
)

// Tests against real DNS software: NSD serving a zone signed by
// ldns-signzone, and unbound validating behind schoolgate (or forwarding
// to it with ECS, as a school's own DNS server would). Each is started
// by the test, unprivileged, in a temporary folder, on a loopback port.

func needBinaries(t *testing.T, names ...string) map[string]string {
	t.Helper()
	paths := map[string]string{}
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
				if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
					p = filepath.Join(dir, n)
				}
			}
		}
		if p == "" {
			t.Skipf("%s not installed (Debian: nsd, ldnsutils, unbound); skipping the test against real DNS software", n)
		}
		paths[n] = p
	}
	return paths
}

// freePort returns a loopback port free for both UDP and TCP just now.
func freePort(t *testing.T, ip string) int {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		pc.Close()
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// startDaemon runs a server in the foreground until the test ends, and
// waits until it answers a question for name.
func startDaemon(t *testing.T, dir, logName string, addr, name string, args ...string) {
	t.Helper()
	out, err := os.Create(filepath.Join(dir, logName))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", args[0], err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); out.Close(); close(exited) }() //nolint:errcheck // its exit is the cleanup's business
	t.Cleanup(func() {
		// Its own process group (NSD forks its servers): this test started it.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) //nolint:errcheck
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) //nolint:errcheck
			<-exited
		}
	})
	c := &dns.Client{Timeout: 300 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeSOA)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, logName))
			t.Fatalf("%s exited at start:\n%s", args[0], b)
		default:
		}
		if r, _, err := c.Exchange(q, addr); err == nil && r.Rcode != dns.RcodeServerFailure {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(dir, logName))
	t.Fatalf("%s did not answer on %s:\n%s", args[0], addr, b)
}

// nsdZone is one zone NSD serves; signed ones are signed with a fresh
// KSK and ZSK (ldns-keygen, ldns-signzone).
type nsdZone struct {
	name   string // with the trailing dot
	text   string // zone file body
	signed bool
	ksk    string // after startNSD: the KSK's DNSKEY record file (a trust anchor)
}

// startNSD serves zones with NSD on a loopback port and returns its address.
func startNSD(t *testing.T, zones []*nsdZone) string {
	t.Helper()
	need := []string{"nsd"}
	for _, z := range zones {
		if z.signed {
			need = append(need, "ldns-keygen", "ldns-signzone")
			break
		}
	}
	bins := needBinaries(t, need...)
	dir := t.TempDir()
	port := freePort(t, "127.0.0.1")
	var conf strings.Builder
	fmt.Fprintf(&conf, `server:
  ip-address: 127.0.0.1@%d
  username: ""
  chroot: ""
  zonesdir: %q
  pidfile: %q
  database: ""
  xfrdfile: %q
  zonelistfile: %q
  xfrdir: %q
  server-count: 1
  do-ip6: no
  verbosity: 1
  hide-version: no
remote-control:
  control-enable: no
`, port, dir, filepath.Join(dir, "nsd.pid"), filepath.Join(dir, "xfrd.state"), filepath.Join(dir, "zone.list"), dir)
	for _, z := range zones {
		file := strings.TrimSuffix(z.name, ".") + ".zone"
		if err := os.WriteFile(filepath.Join(dir, file), []byte(z.text), 0o600); err != nil {
			t.Fatal(err)
		}
		if z.signed {
			keygen := func(args ...string) string {
				cmd := exec.Command(bins["ldns-keygen"], args...)
				cmd.Dir = dir
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("ldns-keygen %v: %v", args, err)
				}
				return strings.TrimSpace(string(out))
			}
			ksk := keygen("-a", "ECDSAP256SHA256", "-k", strings.TrimSuffix(z.name, "."))
			zsk := keygen("-a", "ECDSAP256SHA256", strings.TrimSuffix(z.name, "."))
			cmd := exec.Command(bins["ldns-signzone"], file, ksk, zsk)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("ldns-signzone: %v\n%s", err, out)
			}
			file += ".signed"
			z.ksk = filepath.Join(dir, ksk+".key")
		}
		fmt.Fprintf(&conf, "zone:\n  name: %s\n  zonefile: %s\n", z.name, file)
	}
	cf := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(cf, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	startDaemon(t, dir, "nsd.out", addr, zones[0].name, bins["nsd"], "-d", "-c", cf, "-l", filepath.Join(dir, "nsd.log"))
	return addr
}

// startUnbound runs unbound on a loopback port, forwarding everything to
// forwardTo (schoolgate), with extra lines in its server section.
func startUnbound(t *testing.T, listenIP, forwardTo, probe string, extra ...string) string {
	t.Helper()
	bins := needBinaries(t, "unbound")
	dir := t.TempDir()
	port := freePort(t, listenIP)
	host, fport, _ := net.SplitHostPort(forwardTo)
	conf := fmt.Sprintf(`server:
  interface: %s@%d
  port: %d
  username: ""
  chroot: ""
  directory: %q
  pidfile: %q
  use-syslog: no
  logfile: ""
  do-ip6: no
  num-threads: 1
  so-reuseport: no
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  qname-minimisation: no
  verbosity: 1
%s
remote-control:
  control-enable: no
forward-zone:
  name: "."
  forward-addr: %s@%s
`, listenIP, port, port, dir, filepath.Join(dir, "unbound.pid"), "  "+strings.Join(extra, "\n  "), host, fport)
	cf := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(listenIP, strconv.Itoa(port))
	startDaemon(t, dir, "unbound.out", addr, probe, bins["unbound"], "-d", "-c", cf)
	return addr
}

const signedZone = `$ORIGIN signed.example.
$TTL 300
@ IN SOA ns1 hostmaster 1 3600 600 86400 60
@ IN NS ns1
ns1 IN A 127.0.0.1
www IN A 192.0.2.10
www IN HTTPS 1 . alpn=h2 ech=AEX+DQBBpQAgACBHIwdq
plain IN HTTPS 1 . alpn=h2
zero 0 IN A 192.0.2.11
five 5 IN A 192.0.2.12
alias IN CNAME www
`

// queryAt asks addr (from the source address from) with DO set.
func queryAt(t *testing.T, addr, from, name string, qtype uint16, tcp bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, true)
	c := &dns.Client{Timeout: 5 * time.Second}
	if tcp {
		c.Net = "tcp"
		c.Dialer = &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	} else {
		c.Dialer = &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("asking %s for %s %s: %v", addr, name, dns.TypeToString[qtype], err)
	}
	return r
}

func hasECH(m *dns.Msg) bool {
	for _, a := range m.Answer {
		if strings.Contains(a.String(), "ech=") {
			return true
		}
	}
	return false
}

// TestRealSignedZoneBehindValidator: NSD serves a signed zone, schoolgate
// forwards to it, unbound validates behind schoolgate.
func TestRealSignedZoneBehindValidator(t *testing.T) {
	needBinaries(t, "nsd", "ldns-keygen", "ldns-signzone", "unbound")
	zone := &nsdZone{name: "signed.example.", text: signedZone, signed: true}
	nsd := startNSD(t, []*nsdZone{zone})
	e := newEnv(t, testConfig(nsd))
	ub := startUnbound(t, "127.0.0.1", e.addr, "signed.example.",
		"trust-anchor-file: "+strconv.Quote(zone.ksk), `module-config: "validator iterator"`, "val-log-level: 2")

	t.Run("validates through schoolgate", func(t *testing.T) {
		// Signatures and NSEC proofs survive the scrub and the cache.
		r := queryAt(t, ub, "127.0.0.1", "www.signed.example", dns.TypeA, false)
		if r.Rcode != dns.RcodeSuccess || !r.AuthenticatedData {
			t.Errorf("A via unbound: %s AD=%v, want a validated answer", rcodeOf(r), r.AuthenticatedData)
		}
		r = queryAt(t, ub, "127.0.0.1", "nothere.signed.example", dns.TypeA, false)
		if r.Rcode != dns.RcodeNameError || !r.AuthenticatedData {
			t.Errorf("NXDOMAIN via unbound: %s AD=%v, want a validated NXDOMAIN", rcodeOf(r), r.AuthenticatedData)
		}
		r = queryAt(t, ub, "127.0.0.1", "plain.signed.example", dns.TypeHTTPS, false)
		if r.Rcode != dns.RcodeSuccess || !r.AuthenticatedData || len(r.Answer) == 0 {
			t.Errorf("HTTPS without ech via unbound: %s AD=%v %v, want validated and unchanged", rcodeOf(r), r.AuthenticatedData, r.Answer)
		}
	})
	t.Run("item 1: changed answer claims nothing", func(t *testing.T) {
		r := queryAt(t, e.addr, staffIP, "www.signed.example", dns.TypeHTTPS, false)
		if hasECH(r) || r.AuthenticatedData {
			t.Errorf("schoolgate's HTTPS answer: AD=%v %v, want ech stripped and AD clear", r.AuthenticatedData, r.Answer)
		}
		for _, a := range r.Answer {
			if sig, ok := a.(*dns.RRSIG); ok && sig.TypeCovered == dns.TypeHTTPS {
				t.Errorf("the stripped record's signature is still there: %v", a)
			}
		}
		// The validator never passes it on as secure, nor with ech.
		r = queryAt(t, ub, "127.0.0.1", "www.signed.example", dns.TypeHTTPS, false)
		t.Logf("HTTPS via unbound: %s AD=%v %v", rcodeOf(r), r.AuthenticatedData, r.Answer)
		if hasECH(r) || r.AuthenticatedData {
			t.Errorf("via unbound: %s AD=%v %v", rcodeOf(r), r.AuthenticatedData, r.Answer)
		}
	})
	t.Run("item 5: real TTLs", func(t *testing.T) {
		for name, want := range map[string]uint32{"zero.signed.example": 0, "five.signed.example": 5} {
			r := queryAt(t, e.addr, staffIP, name, dns.TypeA, false)
			var got []uint32
			for _, a := range r.Answer {
				if a.Header().Rrtype == dns.TypeA {
					got = append(got, a.Header().Ttl)
				}
			}
			if len(got) != 1 || got[0] > want {
				t.Errorf("%s: TTLs %v, want %d or less", name, got, want)
			}
		}
	})
	t.Run("item 6: ANY", func(t *testing.T) {
		if r := queryAt(t, e.addr, staffIP, "nothere.signed.example", dns.TypeANY, false); r.Rcode != dns.RcodeNameError {
			t.Errorf("ANY for a missing name: %s", rcodeOf(r))
		}
		r := queryAt(t, e.addr, staffIP, "alias.signed.example", dns.TypeANY, false)
		if len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != dns.TypeCNAME {
			t.Errorf("ANY for an alias: %v, want its CNAME", r.Answer)
		}
	})
	t.Run("item 7: CHAOS not forwarded", func(t *testing.T) {
		m := new(dns.Msg)
		m.SetQuestion("version.bind.", dns.TypeTXT)
		m.Question[0].Qclass = dns.ClassCHAOS
		c := &dns.Client{Timeout: 3 * time.Second}
		direct, _, err := c.Exchange(m, nsd)
		if err != nil || len(direct.Answer) == 0 {
			t.Skipf("NSD itself does not answer version.bind (%v): nothing to compare", err)
		}
		r, _, err := c.Exchange(m, e.addr)
		if err != nil || r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
			t.Errorf("version.bind via schoolgate: %v %v, want REFUSED (NSD would have said %v)", err, r, direct.Answer)
		}
	})
	t.Run("item 8: AA cleared, RA set", func(t *testing.T) {
		direct := queryAt(t, nsd, "127.0.0.1", "www.signed.example", dns.TypeA, false)
		r := queryAt(t, e.addr, staffIP, "www.signed.example", dns.TypeA, false)
		if !direct.Authoritative || r.Authoritative || !r.RecursionAvailable {
			t.Errorf("NSD AA=%v; schoolgate AA=%v RA=%v, want AA clear and RA set", direct.Authoritative, r.Authoritative, r.RecursionAvailable)
		}
	})
	t.Run("item 4: EDNS", func(t *testing.T) {
		m := new(dns.Msg)
		m.SetQuestion("www.signed.example.", dns.TypeA)
		m.SetEdns0(1232, false)
		m.IsEdns0().SetVersion(1)
		r, err := e.exchange(staffIP, m, false)
		if err != nil || r.Rcode != dns.RcodeBadVers || r.IsEdns0() == nil {
			t.Errorf("EDNS version 1: %v %v, want BADVERS with OPT", err, r)
		}
	})
}

const adZone = `$ORIGIN school.local.
$TTL 600
@ IN SOA dc1 hostmaster 1 3600 600 86400 60
@ IN NS dc1
@ IN A 10.0.0.10
dc1 IN A 10.0.0.10
_ldap._tcp IN SRV 0 100 389 dc1
_kerberos._tcp IN SRV 0 100 88 dc1
_ldap._tcp.dc._msdcs IN SRV 0 100 389 dc1
`

const adReverseZone = `$ORIGIN 10.in-addr.arpa.
$TTL 600
@ IN SOA dc1.school.local. hostmaster.school.local. 1 3600 600 86400 60
@ IN NS dc1.school.local.
10.0.0 IN PTR dc1.school.local.
`

// TestRealADBesideSchoolgate: the AD zones live on a real authoritative
// server (NSD, standing in for the domain controllers); schoolgate
// forwards them there and everything else to its normal upstream.
func TestRealADBesideSchoolgate(t *testing.T) {
	dc := startNSD(t, []*nsdZone{{name: "school.local.", text: adZone}, {name: "10.in-addr.arpa.", text: adReverseZone}})
	up := standardUpstream(t)
	cfg := testConfig(up.addr)
	cfg.DNS.Forward = []config.Forward{
		{Zone: "school.local", Servers: []string{dc}},
		{Zone: "10.in-addr.arpa", Servers: []string{dc}},
	}
	e := newEnv(t, cfg)
	cases := []struct {
		name  string
		qtype uint16
		want  string
	}{
		{"_ldap._tcp.school.local", dns.TypeSRV, "389 dc1.school.local."},
		{"_ldap._tcp.dc._msdcs.school.local", dns.TypeSRV, "389 dc1.school.local."},
		{"school.local", dns.TypeA, "10.0.0.10"},
		{"10.0.0.10.in-addr.arpa", dns.TypePTR, "dc1.school.local."},
		{"www.elsewhere.example", dns.TypeA, "192.0.2.99"}, // the normal upstream
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := queryAt(t, e.addr, studentIP, c.name, c.qtype, false)
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || !strings.HasSuffix(r.Answer[0].String(), c.want) {
				t.Errorf("%s %v, want %s", rcodeOf(r), r.Answer, c.want)
			}
		})
	}
	if r := queryAt(t, e.addr, studentIP, "nothere.school.local", dns.TypeA, true); r.Rcode != dns.RcodeNameError {
		t.Errorf("missing AD name over TCP: %s, want the DC's NXDOMAIN", rcodeOf(r))
	}
	if l := e.findLog("_ldap._tcp.school.local", "SRV"); l["rule"] != RuleForwarded || l["verdict"] != "allow" {
		t.Errorf("log line %v", l)
	}
	if n := up.count("_ldap._tcp.school.local.", "SRV"); n != 0 {
		t.Errorf("the normal upstream was asked for the AD zone %d times", n)
	}
}

// TestRealDCForwardingWithECS: a school DNS server (unbound on the
// trusted address 127.0.0.6, sending ECS) forwards its clients' queries
// to schoolgate; each client still gets its own profile, in the verdict
// and the log line, and the server's cache keeps the answers apart.
func TestRealDCForwardingWithECS(t *testing.T) {
	e := trustedEnv(t, 200)
	ub := startUnbound(t, dcIP, e.addr, "example.",
		"outgoing-interface: "+dcIP, `module-config: "subnetcache iterator"`,
		"send-client-subnet: 127.0.0.1", "max-client-subnet-ipv4: 32", "client-subnet-always-forward: yes")
	r := queryAt(t, ub, studentIP, "videos.example", dns.TypeA, false)
	if r.Rcode != dns.RcodeNameError {
		t.Errorf("pupil via the school's DNS server: %s %v, want the student profile's block", rcodeOf(r), r.Answer)
	}
	if l := e.findLog("videos.example", "A"); l["ip"] != studentIP || l["profile"] != "student" || l["verdict"] != "block" {
		t.Errorf("log line %v, want the pupil's address and profile", l)
	}
	r = queryAt(t, ub, staffIP, "videos.example", dns.TypeA, false)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		t.Errorf("staff via the school's DNS server, same name: %s %v, want allowed (not the pupil's cached block)", rcodeOf(r), r.Answer)
	}
	r = queryAt(t, ub, studentIP, "videos.example", dns.TypeA, false)
	if r.Rcode != dns.RcodeNameError {
		t.Errorf("pupil again: %s %v, want still blocked (not the teacher's cached answer)", rcodeOf(r), r.Answer)
	}
}
