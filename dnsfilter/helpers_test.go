package dnsfilter

import (
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/identity"
	"github.com/schoolgate/schoolgate/internal/testenv"
	"github.com/schoolgate/schoolgate/logging"
	"github.com/schoolgate/schoolgate/policy"
)

// Test addresses: the filter sees the source address of each client.
const (
	studentIP  = "127.0.0.2" // networks → student (safe_search on)
	staffIP    = "127.0.0.3" // networks → staff
	floodIP    = "127.0.0.4" // a student-profile client used for floods
	juniorIP   = "127.0.0.5" // networks → junior (safe_search on, no rules)
	strangerIP = "127.0.0.9" // not in clients
)

// fakeUpstream is a real DNS server on 127.0.0.1 (UDP and TCP, same port)
// serving fixed records, counting the questions it gets.
type fakeUpstream struct {
	addr    string
	records map[string][]dns.RR // "name./TYPE" → answer
	mu      sync.Mutex
	asked   map[string]int
	ttl     uint32
	defA    string       // address for any other A question
	mangle  atomic.Bool  // answer a different question (a broken or spoofing upstream); set while serving
	delay   atomic.Int64 // nanoseconds to wait before answering; set while serving
}

// startDNSServers serves udp and tcp on one port of 127.0.0.1 until the
// test ends, and returns the address.
func startDNSServers(t testing.TB, udp, tcp dns.Handler) string {
	t.Helper()
	// UDP picks the port; TCP must get the same one, which another
	// process may hold: try again.
	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	for range 20 {
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{}, 2)
	us := &dns.Server{PacketConn: pc, Handler: udp, NotifyStartedFunc: func() { started <- struct{}{} }}
	ts := &dns.Server{Listener: ln, Handler: tcp, NotifyStartedFunc: func() { started <- struct{}{} }}
	go us.ActivateAndServe() //nolint:errcheck // stopped by Cleanup
	go ts.ActivateAndServe() //nolint:errcheck
	<-started
	<-started
	t.Cleanup(func() { us.Shutdown(); ts.Shutdown() }) //nolint:errcheck
	return pc.LocalAddr().String()
}

func rr(t testing.TB, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("bad test record %q: %v", s, err)
	}
	return r
}

func newFakeUpstream(t testing.TB, defA string, recs ...string) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{records: map[string][]dns.RR{}, asked: map[string]int{}, defA: defA}
	for _, s := range recs {
		r := rr(t, s)
		k := strings.ToLower(r.Header().Name) + "/" + dns.TypeToString[r.Header().Rrtype]
		u.records[k] = append(u.records[k], r)
	}
	u.addr = startDNSServers(t,
		dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) { u.serve(w, q, false) }),
		dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) { u.serve(w, q, true) }))
	return u
}

func (u *fakeUpstream) serve(w dns.ResponseWriter, q *dns.Msg, tcp bool) {
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	qq := q.Question[0]
	name := strings.ToLower(qq.Name)
	key := name + "/" + dns.TypeToString[qq.Qtype]
	u.mu.Lock()
	u.asked[key]++
	u.mu.Unlock()
	time.Sleep(time.Duration(u.delay.Load()))
	switch {
	case strings.HasSuffix(name, "nx.example."):
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 3600},
			Ns: "ns.example.", Mbox: "h.example.", Serial: 1, Refresh: 1, Retry: 1, Expire: 1, Minttl: 30}}
	case len(u.records[key]) > 0:
		if qq.Qtype != dns.TypeCNAME {
			for _, r := range u.records[name+"/CNAME"] {
				m.Answer = append(m.Answer, dns.Copy(r))
			}
		}
		for _, r := range u.records[key] {
			m.Answer = append(m.Answer, dns.Copy(r))
		}
	case qq.Qtype == dns.TypeA && u.defA != "":
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
			A: net.ParseIP(u.defA)}}
	}
	if opt := q.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), opt.Do())
	}
	if u.mangle.Load() {
		m.Question[0].Name = "other." + m.Question[0].Name
	}
	if !tcp {
		size := dns.MinMsgSize
		if opt := q.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m) //nolint:errcheck
}

func (u *fakeUpstream) count(name, qtype string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.asked[name+"/"+qtype]
}

// testConfig is a small school: two networks, gambling blocked for all,
// streaming for students only, students with SafeSearch.
func testConfig(upstreams ...string) *config.Config {
	pfx := netip.MustParsePrefix
	return &config.Config{
		Timezone: "UTC",
		Location: time.UTC,
		Clients:  []netip.Prefix{pfx("127.0.0.1/32"), pfx(studentIP + "/32"), pfx(staffIP + "/32"), pfx(floodIP + "/32"), pfx(juniorIP + "/32")},
		DNS:      config.DNS{Upstreams: upstreams, BlockedAnswer: "nxdomain", RateLimit: 100000},
		Networks: []config.Network{
			{Prefix: pfx(staffIP + "/32"), Profile: "staff", Line: 1},
			{Prefix: pfx(studentIP + "/32"), Profile: "student", Line: 2},
			{Prefix: pfx(juniorIP + "/32"), Profile: "junior", Line: 2},
		},
		DefaultProfile: "student",
		Schedules:      map[string]config.Schedule{},
		Lists: []config.List{
			{Category: "gambling", Domains: []string{"casino.example"}, Line: 3},
			{Category: "streaming", Domains: []string{"videos.example"}, Line: 4},
			{Category: "education", Domains: []string{"school.example"}, Line: 5},
		},
		Profiles: map[string]config.Profile{
			"student": {SafeSearch: true, Default: "allow", Rules: []config.Rule{
				{Action: "allow", Categories: []string{"education"}, Line: 6},
				{Action: "block", Categories: []string{"gambling", "streaming", "doh"}, Line: 7},
			}},
			"junior": {SafeSearch: true, Default: "allow"},
			"staff": {Default: "allow", Rules: []config.Rule{
				{Action: "block", Categories: []string{"gambling"}, Line: 8},
			}},
		},
		Log:   config.Log{Dir: "logs"},
		Cache: config.Cache{Verdicts: 1000, DNS: 1000},
	}
}

// testClock is a settable clock for cache TTL tests.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

type env struct {
	t      testing.TB
	srv    *Server
	reg    *prometheus.Registry
	engine *policy.Engine
	log    *logging.Writer
	logDir string
	ids    *identity.Table
	clock  *testClock
	addr   string
}

func newEnv(t testing.TB, cfg *config.Config) *env {
	t.Helper()
	return newEnvWith(t, cfg, nil)
}

// newEnvWith is newEnv with the server's options changed by opts first.
func newEnvWith(t testing.TB, cfg *config.Config, opts func(*Options)) *env {
	t.Helper()
	snap, err := policy.Build(cfg)
	if err != nil {
		t.Fatalf("policy.Build: %v", err)
	}
	e := &env{t: t, reg: prometheus.NewRegistry(), logDir: t.TempDir(), clock: &testClock{}}
	e.clock.ns.Store(time.Now().UnixNano())
	if e.ids, err = identity.New(identity.Options{Now: e.clock.now}); err != nil {
		t.Fatalf("identity.New: %v", err)
	}
	t.Cleanup(e.ids.Close)
	e.engine = policy.NewEngine(snap, cfg.Cache.Verdicts, e.reg)
	e.log, err = logging.Open(logging.Options{Dir: e.logDir, Location: time.UTC, Registerer: e.reg})
	if err != nil {
		t.Fatalf("logging.Open: %v", err)
	}
	t.Cleanup(func() { e.log.Close() }) //nolint:errcheck
	o := Options{Addr: "127.0.0.1:0", Engine: e.engine, Log: e.log, Identity: e.ids,
		Registerer: e.reg, Now: e.clock.now}
	if opts != nil {
		opts(&o)
	}
	e.srv, err = New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := e.srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { e.srv.Shutdown(t.Context()) }) //nolint:errcheck
	e.addr = e.srv.Addr()
	return e
}

// ask sends one question from the source address from (UDP unless tcp).
func (e *env) ask(from, name string, qtype uint16, tcp bool, edns bool) *dns.Msg {
	e.t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	if edns {
		m.SetEdns0(1232, false)
	}
	r, err := e.exchange(from, m, tcp)
	if err != nil {
		e.t.Fatalf("asking %s %s from %s: %v", name, dns.TypeToString[qtype], from, err)
	}
	return r
}

func (e *env) exchange(from string, m *dns.Msg, tcp bool) (*dns.Msg, error) {
	// Longer than the filter's own wait for its upstreams (tryTimeout and
	// a hedge or two), so that its SERVFAIL arrives even on a loaded machine.
	c := &dns.Client{Timeout: 6 * time.Second, Dialer: &net.Dialer{Timeout: 6 * time.Second}}
	if tcp {
		c.Net = "tcp"
		c.Dialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	} else {
		c.Dialer.LocalAddr = &net.UDPAddr{IP: net.ParseIP(from)}
		c.UDPSize = 65535 // read whatever comes; truncation is the filter's job
	}
	r, _, err := c.Exchange(m, e.addr)
	return r, err
}

// logLines flushes the access log and returns its lines for today.
func (e *env) logLines() []map[string]any {
	e.t.Helper()
	if err := e.log.Flush(); err != nil {
		e.t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(e.logDir, "access-*.jsonl"))
	var out []map[string]any
	for _, f := range files {
		out = append(out, testenv.ReadJSONLines[map[string]any](e.t, f)...)
	}
	return out
}

// findLog returns the last log line for host and method.
func (e *env) findLog(host, method string) map[string]any {
	e.t.Helper()
	// The line is written just after the answer is sent: wait for it.
	var found map[string]any
	for deadline := time.Now().Add(3 * time.Second); found == nil && time.Now().Before(deadline); {
		for _, l := range e.logLines() {
			if l["host"] == host && l["method"] == method {
				found = l
			}
		}
		if found == nil {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if found == nil {
		e.t.Fatalf("no log line for %s %s", method, host)
	}
	return found
}

// metric returns the value of a counter or gauge with the given labels
// (a subset match), summed over matching series.
func (e *env) metric(name string, labels ...string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		ok := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == kv[i] && lp.GetValue() == kv[i+1] {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// fakeWriter is a dns.ResponseWriter for handler tests and benchmarks.
type fakeWriter struct {
	remote net.Addr
	last   []byte
	n      int
}

func (w *fakeWriter) LocalAddr() net.Addr  { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (w *fakeWriter) RemoteAddr() net.Addr { return w.remote }
func (w *fakeWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
func (w *fakeWriter) Write(b []byte) (int, error) {
	w.last = append(w.last[:0], b...)
	w.n++
	return len(b), nil
}
func (w *fakeWriter) Close() error        { return nil }
func (w *fakeWriter) TsigStatus() error   { return nil }
func (w *fakeWriter) TsigTimersOnly(bool) {}
func (w *fakeWriter) Hijack()             {}

// servePacket does what miekg's server does with a packet before calling
// the handler: header check, accept function, unpack.
func (s *Server) servePacket(b []byte, w dns.ResponseWriter) {
	m := new(dns.Msg)
	if len(b) < 12 {
		s.m.malformed.Inc()
		return
	}
	dh := dns.Header{Id: uint16(b[0])<<8 | uint16(b[1]), Bits: uint16(b[2])<<8 | uint16(b[3]),
		Qdcount: uint16(b[4])<<8 | uint16(b[5]), Ancount: uint16(b[6])<<8 | uint16(b[7]),
		Nscount: uint16(b[8])<<8 | uint16(b[9]), Arcount: uint16(b[10])<<8 | uint16(b[11])}
	if acceptQuery(dh) != dns.MsgAccept {
		return
	}
	if err := m.Unpack(b); err != nil {
		s.m.malformed.Inc()
		return
	}
	s.ServeDNS(w, m)
}

func policyBuild(cfg *config.Config) (*policy.Snapshot, error) { return policy.Build(cfg) }

// rawExchange sends m over UDP from the source address from and returns
// the answer's size on the wire and the answer.
func (e *env) rawExchange(from string, m *dns.Msg) (int, *dns.Msg) {
	e.t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(from)})
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	to, _ := net.ResolveUDPAddr("udp", e.addr)
	b, err := m.Pack()
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := conn.WriteToUDP(b, to); err != nil {
		e.t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second)) //nolint:errcheck
	buf := make([]byte, 65536)
	n, _, err := conn.ReadFromUDP(buf)
	if err != nil {
		e.t.Fatalf("no answer from the filter: %v", err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil {
		e.t.Fatalf("unpacking the answer: %v", err)
	}
	return n, r
}

// reload installs snap as serve does: the filter's settings are prepared
// first, and only when they are sound is the engine swapped and the
// settings committed.
func (e *env) reload(snap *policy.Snapshot) error {
	commit, err := e.srv.Prepare(snap)
	if err != nil {
		return err
	}
	e.engine.Swap(snap)
	commit()
	return nil
}
