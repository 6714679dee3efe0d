package dnsfilter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/identity"
	"github.com/schoolgate/schoolgate/logging"
	"github.com/schoolgate/schoolgate/policy"
)

// Options wires the DNS filter to the rest of schoolgate.
type Options struct {
	Addr   string // listen address, UDP and TCP
	Engine *policy.Engine
	Log    *logging.Writer
	// Identity names the user signed in at a client's address (proxy
	// sign-in, RADIUS, logon API); their profile decides (nil: the
	// address's network's profile).
	Identity *identity.Table
	// Answers, when set, is told the addresses of each upstream answer
	// to an A or AAAA query, for transparent gateway mode (policy.Answers).
	Answers    *policy.Answers
	Registerer prometheus.Registerer
	Logger     *zap.Logger
	// UDPListeners is the number of UDP sockets bound with SO_REUSEPORT
	// (Linux); 0 means one per usable CPU (GOMAXPROCS).
	UDPListeners int
	// MaxTCPConns caps the open DNS-over-TCP connections (0: 1024); serve
	// derives it from the file-descriptor budget.
	MaxTCPConns int
	// PortalListen is portal.listen as the running sign-in page bound it
	// ("" when none runs): portal.hostname (from the snapshot, so a
	// reload renames it) is answered with its address (portal.go). A
	// changed portal.listen takes a restart, so a reload leaves it be:
	// the name always leads where the page is.
	PortalListen string
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Server is the DNS filter.
type Server struct {
	ipStr   ipStrings // text of recent client addresses, for log lines
	o       Options
	engine  *policy.Engine
	log     *logging.Writer
	ids     *identity.Table
	logger  *zap.Logger
	now     func() time.Time
	m       *metrics
	limiter *limiter

	set    atomic.Pointer[settings]
	flight flights
	mu     sync.Mutex // serialises Reload and Start/Shutdown

	servers []*dns.Server
	loops   []*udpLoop     // UDP read loops (see udp.go), when not miekg's
	tcp     *tcpServer     // DNS over TCP (see tcp.go)
	loopWG  sync.WaitGroup // the loops and the goroutines they start
	addr    string
}

// settings is what the filter takes from the config in force; Reload
// swaps it as a whole.
type settings struct {
	upstreams *upstreams
	cache     *cache
	cacheSize int
	null      bool           // dns.blocked_answer: null
	qps       float64        // 0: no rate limit
	forwards  []forwardZone  // dns.forward, most specific zone first
	fwdKey    string         // the configured forward zones, to spot a change
	trusted   []netip.Prefix // dns.trusted_forwarders
	portal    portalName     // portal.hostname, answered here (portal.go)
}

// forwardZone is one zone of dns.forward and its servers.
type forwardZone struct {
	zone string // lower case, with the trailing dot
	dot  string // "." + zone: the suffix of its subdomains
	ups  *upstreams
}

// forwardFor returns the servers of the most specific dns.forward zone
// name is in, or nil. name may be in any case, with or without the
// trailing dot.
func (set *settings) forwardFor(name string) *upstreams {
	if len(set.forwards) == 0 {
		return nil
	}
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	for i := range set.forwards {
		f := &set.forwards[i]
		if strings.EqualFold(name, f.zone) || hasSuffixFold(name, f.dot) {
			return f.ups
		}
	}
	return nil
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// forwardKey is dns.forward as one string, to spot a change on reload.
func forwardKey(fs []config.Forward) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.Zone + "=" + joinUpstreams(f.Servers) + ";")
	}
	return b.String()
}

// closeForwards releases the sockets of the forward zones' servers.
func closeForwards(fs []forwardZone) {
	for _, f := range fs {
		f.ups.close()
	}
}

// containsAddr reports whether one of ps contains a.
func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// New returns a DNS filter serving the engine's current snapshot. It binds
// nothing: Start does.
func New(o Options) (*Server, error) {
	if o.Engine == nil || o.Engine.Snapshot() == nil {
		return nil, errors.New("dnsfilter: no policy engine")
	}
	s := &Server{
		o: o, engine: o.Engine, log: o.Log, ids: o.Identity,
		logger: o.Logger, now: o.Now, limiter: newLimiter(),
	}
	if s.logger == nil {
		s.logger = zap.NewNop()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.m = newMetrics(o.Registerer, func() float64 { return float64(s.set.Load().cache.len()) })
	set, _, err := s.buildSettings(o.Engine.Snapshot().Config, nil)
	if err != nil {
		return nil, err
	}
	s.set.Store(set)
	return s, nil
}

// buildSettings derives the settings from cfg (validated by config),
// reusing what did not change in old (which may be nil). It changes
// nothing in old: what must happen to the shared cache when the new
// settings are installed is returned as apply (nil: nothing).
func (s *Server) buildSettings(cfg *config.Config, old *settings) (set *settings, apply func(), err error) {
	set = &settings{cacheSize: cfg.Cache.DNS, null: cfg.DNS.BlockedAnswer == "null"}
	if cfg.DNS.RateLimit > 0 { // 0 turns the limit off (config's default is 200)
		set.qps = float64(cfg.DNS.RateLimit)
	}
	set.trusted = cfg.DNS.TrustedForwarders
	set.portal = newPortalName(cfg.Portal.Hostname, s.o.PortalListen)
	set.fwdKey = forwardKey(cfg.DNS.Forward)
	if old != nil && old.fwdKey == set.fwdKey {
		set.forwards = old.forwards
	} else {
		for _, f := range cfg.DNS.Forward {
			us, err := newUpstreams(f.Servers, s.m)
			if err != nil {
				return nil, nil, fmt.Errorf("dns.forward %s: %w", f.Zone, err)
			}
			zone := strings.ToLower(strings.TrimSuffix(f.Zone, ".")) + "."
			set.forwards = append(set.forwards, forwardZone{zone: zone, dot: "." + zone, ups: us})
		}
		// Most specific first: more labels win.
		sort.SliceStable(set.forwards, func(i, j int) bool {
			return dns.CountLabel(set.forwards[i].zone) > dns.CountLabel(set.forwards[j].zone)
		})
	}
	// A changed zone list changes which servers answer which names.
	upChanged := old == nil || old.fwdKey != set.fwdKey
	if old != nil && old.upstreams.key == joinUpstreams(cfg.DNS.Upstreams) {
		set.upstreams = old.upstreams
	} else {
		upChanged = true
		us, err := newUpstreams(cfg.DNS.Upstreams, s.m)
		if err != nil {
			return nil, nil, err
		}
		set.upstreams = us
	}
	switch {
	case old == nil || old.cache == nil:
		set.cache = newCache(cfg.Cache.DNS)
	case cfg.Cache.DNS <= 0:
		set.cache = nil
	default:
		c := old.cache
		set.cache = c
		resize := cfg.Cache.DNS != old.cacheSize
		apply = func() {
			if resize {
				c.resize(cfg.Cache.DNS)
			}
			if upChanged {
				// Answers from the old upstreams may differ (a school
				// moving to a filtering upstream, say): start afresh.
				c.purge()
			}
		}
	}
	return set, apply, nil
}

// Prepare builds the filter's settings (upstreams, cache size, blocked
// answer, rate limit) for snap without installing them: an error leaves
// everything as it is. The returned commit installs them; the caller calls
// it once the whole reload has been prepared, right after swapping the
// policy engine to snap.
func (s *Server) Prepare(snap *policy.Snapshot) (commit func(), err error) {
	s.mu.Lock()
	old := s.set.Load()
	s.mu.Unlock()
	set, apply, err := s.buildSettings(snap.Config, old)
	if err != nil {
		return nil, fmt.Errorf("dns settings: %w", err)
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if apply != nil {
			apply()
		}
		prev := s.set.Swap(set)
		if prev != nil && prev.upstreams != set.upstreams {
			prev.upstreams.close()
		}
		if prev != nil && prev.fwdKey != set.fwdKey {
			closeForwards(prev.forwards)
		}
	}, nil
}

func joinUpstreams(a []string) string { return strings.Join(a, ",") }

// Start starts listening on Addr, UDP and TCP; it returns once the
// listeners are bound, or the error binding them.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.servers != nil {
		return errors.New("dnsfilter: already started")
	}
	n := s.o.UDPListeners
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	if !reusePortSupported {
		n = 1
	}
	pcs, ln, err := s.listen(n)
	if err != nil {
		return err
	}
	bound := ln.Addr().String()
	closeAll := func() {
		for _, pc := range pcs {
			pc.Close()
		}
	}

	servers, loops := s.udpServers(pcs, bound)
	if err := s.startServers(servers); err != nil {
		closeAll()
		ln.Close()
		return fmt.Errorf("serving dns on %s: %w", bound, err)
	}
	s.tcp = newTCPServer(s, ln)
	s.tcp.wg.Add(1)
	go s.tcp.serve()
	s.servers, s.loops, s.addr = servers, loops, bound
	for _, l := range loops {
		s.loopWG.Add(1)
		go l.run()
	}
	return nil
}

// udpServers puts each bound UDP socket to work: our own read loop
// (udp.go) on an IPv4 address, miekg's server elsewhere.
func (s *Server) udpServers(pcs []net.PacketConn, bound string) (servers []*dns.Server, loops []*udpLoop) {
	// Bound to one address, answers leave from it anyway: hide the
	// *net.UDPConn from miekg so that it uses plain recvfrom/sendto instead
	// of control messages per packet, which it needs only on a wildcard
	// bind (to answer from the address the query came to). Measured: about
	// 20% less CPU per cached answer.
	specific := false
	if ap, err := netip.ParseAddrPort(bound); err == nil && !ap.Addr().IsUnspecified() {
		specific = true
	}
	// On an IPv4 address, our own read loops do better still: no goroutine
	// and no unpack for a cached answer, recvmmsg/sendmmsg.
	for _, pc := range pcs {
		if uc, ok := pc.(*net.UDPConn); ok && specific && ipv4Bound(uc) {
			if l, err := newUDPLoop(s, uc, &s.loopWG); err == nil {
				loops = append(loops, l)
				continue
			}
		}
		if specific {
			pc = plainPacketConn{pc}
		}
		servers = append(servers, s.newDNSServer(&dns.Server{PacketConn: pc}))
	}
	return servers, loops
}

// startServers starts miekg's servers and waits until each serves, or
// shuts them all down and returns the first failure. A server that stops
// later is logged.
func (s *Server) startServers(servers []*dns.Server) error {
	started := make(chan struct{}, len(servers))
	errc := make(chan error, len(servers)) // buffered: a sender never blocks
	var running atomic.Bool
	for _, srv := range servers {
		srv.NotifyStartedFunc = func() { started <- struct{}{} }
		go func() {
			err := srv.ActivateAndServe()
			switch {
			case err == nil:
			case running.Load():
				s.logger.Error("dns listener stopped", zap.Error(err))
			default:
				errc <- err
			}
		}()
	}
	for range servers {
		select {
		case <-started:
		case err := <-errc:
			for _, srv := range servers {
				srv.Shutdown() //nolint:errcheck // unwinding a failed start
			}
			return err
		}
	}
	running.Store(true)
	return nil
}

func ipv4Bound(c *net.UDPConn) bool {
	a, ok := c.LocalAddr().(*net.UDPAddr)
	return ok && a.IP.To4() != nil
}

// listen binds n UDP sockets (SO_REUSEPORT) and a TCP listener on the same
// address. With port 0 the first UDP socket picks the port and the others
// share it; if TCP cannot have that port too, it tries another.
func (s *Server) listen(n int) ([]net.PacketConn, net.Listener, error) {
	lc := net.ListenConfig{Control: reusePortControl}
	_, port, _ := net.SplitHostPort(s.o.Addr)
	tries := 1
	if port == "0" {
		tries = 10
	}
	var lastErr error
	for range tries {
		first, err := lc.ListenPacket(context.Background(), "udp", s.o.Addr)
		if err != nil {
			return nil, nil, fmt.Errorf("listening on udp %s: %w", s.o.Addr, err)
		}
		bound := first.LocalAddr().String()
		pcs := []net.PacketConn{first}
		closeAll := func() {
			for _, pc := range pcs {
				pc.Close()
			}
		}
		for i := 1; i < n; i++ {
			pc, err := lc.ListenPacket(context.Background(), "udp", bound)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("listening on udp %s: %w", bound, err)
			}
			pcs = append(pcs, pc)
		}
		ln, err := net.Listen("tcp", bound)
		if err == nil {
			return pcs, ln, nil
		}
		closeAll()
		lastErr = fmt.Errorf("listening on tcp %s: %w", bound, err)
	}
	return nil, nil, lastErr
}

func (s *Server) newDNSServer(srv *dns.Server) *dns.Server {
	srv.Handler = s
	// Room for queries with EDNS options (cookies, padding).
	srv.UDPSize = 4096
	srv.MsgAcceptFunc = acceptQuery
	srv.MsgInvalidFunc = func([]byte, error) { s.m.malformed.Inc() }
	srv.ReadTimeout = 2 * time.Second
	srv.WriteTimeout = 2 * time.Second
	return srv
}

// acceptQuery lets the handler see (and log) every query, including those
// with the wrong number of questions. Responses are ignored so that two
// resolvers cannot be made to bounce packets at each other; messages with
// more records than any query needs are refused unparsed.
func acceptQuery(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr != 0 {
		return dns.MsgIgnore
	}
	if dh.Qdcount > 8 || dh.Ancount > 1 || dh.Nscount > 1 || dh.Arcount > 2 {
		return dns.MsgReject
	}
	return dns.MsgAccept
}

// plainPacketConn is a net.PacketConn that is not a *net.UDPConn (see Start).
type plainPacketConn struct{ net.PacketConn }

// Addr returns the bound address (useful with port 0), or "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Shutdown stops the listeners, letting in-flight queries finish until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	servers, loops, tcp := s.servers, s.loops, s.tcp
	s.mu.Unlock()
	var errs []error
	for _, l := range loops {
		l.close()
	}
	if tcp != nil {
		tcp.close()
		idle := make(chan struct{})
		go func() { tcp.wg.Wait(); close(idle) }()
		select {
		case <-idle:
		case <-ctx.Done():
			errs = append(errs, ctx.Err())
		}
	}
	for _, srv := range servers {
		if err := srv.ShutdownContext(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if len(loops) > 0 {
		// The loops end with their sockets; let their queries finish.
		idle := make(chan struct{})
		go func() { s.loopWG.Wait(); close(idle) }()
		select {
		case <-idle:
		case <-ctx.Done():
			errs = append(errs, ctx.Err())
		}
	}
	if set := s.set.Load(); set != nil {
		set.upstreams.close()
		closeForwards(set.forwards)
	}
	return errors.Join(errs...)
}
