package identity

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
)

// RADIUSTTL is how long a Start or Interim-Update names its address when
// no Stop comes (a controller restarted, a packet lost).
const RADIUSTTL = 12 * time.Hour

// RADIUSOptions configure RADIUS accounting.
type RADIUSOptions struct {
	Addr   string // UDP host:port (identity.radius.listen)
	Secret []byte // the shared secret (identity.radius.secret_file)
	// Allowed reports whether a sender may send accounting
	// (identity.radius.clients; default loopback and `clients`).
	Allowed func(netip.Addr) bool
	// IsClient reports whether a Framed-IP-Address may be named
	// (`clients`); nil allows any.
	IsClient   func(netip.Addr) bool
	Registerer prometheus.Registerer
	Logger     *zap.Logger
	Now        func() time.Time
}

// RADIUSServer takes RADIUS accounting (RFC 2866) from Wi-Fi
// controllers: Start and Interim-Update name Framed-IP-Address with
// User-Name, Stop ends it. Packets from senders not Allowed, and packets
// whose Request Authenticator does not check out under the secret, are
// dropped unanswered and counted.
type RADIUSServer struct {
	t       *Table
	o       RADIUSOptions
	conn    net.PacketConn
	packets *prometheus.CounterVec
	wg      sync.WaitGroup
	closed  chan struct{}
	once    sync.Once
}

// RADIUS results: the label values of
// schoolgate_identity_radius_packets_total.
var radiusResults = []string{"ok", "ignored", "bad_authenticator", "stranger", "malformed"}

// ListenRADIUS binds o.Addr; Serve answers on it.
func (t *Table) ListenRADIUS(o RADIUSOptions) (*RADIUSServer, error) {
	if len(o.Secret) == 0 {
		return nil, errors.New("RADIUS accounting needs a shared secret")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &RADIUSServer{t: t, o: o, closed: make(chan struct{}),
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schoolgate_identity_radius_packets_total",
			Help: "RADIUS accounting packets by result (ok, ignored, bad_authenticator, stranger, malformed).",
		}, []string{"result"})}
	for _, r := range radiusResults {
		s.packets.WithLabelValues(r)
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(s.packets); err != nil {
			return nil, err
		}
	}
	conn, err := net.ListenPacket("udp", o.Addr)
	if err != nil {
		return nil, err
	}
	s.conn = conn
	return s, nil
}

// Addr is the address the server is bound to.
func (s *RADIUSServer) Addr() net.Addr { return s.conn.LocalAddr() }

// Serve answers packets until Close.
func (s *RADIUSServer) Serve() error {
	buf := make([]byte, 4096) // RFC 2865 §3: at most 4096 bytes
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			select {
			case <-s.closed:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		s.handle(buf[:n], from)
	}
}

// Close stops Serve.
func (s *RADIUSServer) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		err = s.conn.Close()
	})
	return err
}

func (s *RADIUSServer) count(result string) { s.packets.WithLabelValues(result).Inc() }

// handle decides on one packet; a panic on a malformed one would be a
// bug, and must not stop the listener.
func (s *RADIUSServer) handle(b []byte, from net.Addr) {
	defer func() {
		if r := recover(); r != nil {
			s.o.Logger.Error("RADIUS packet handling panicked", zap.Any("panic", r))
			s.count("malformed")
		}
	}()
	ua, ok := from.(*net.UDPAddr)
	if !ok {
		return
	}
	src := canon(ua.AddrPort().Addr())
	if s.o.Allowed != nil && !s.o.Allowed(src) {
		s.count("stranger")
		return
	}
	if len(b) < 20 || radius.Code(b[0]) != radius.CodeAccountingRequest {
		s.count("malformed")
		return
	}
	if !radius.IsAuthenticRequest(b, s.o.Secret) {
		s.count("bad_authenticator")
		return
	}
	p, err := radius.Parse(b, s.o.Secret)
	if err != nil {
		s.count("malformed")
		return
	}
	s.count(s.account(p))
	out, err := p.Response(radius.CodeAccountingResponse).Encode()
	if err != nil {
		return
	}
	s.conn.WriteTo(out, from) //nolint:errcheck // the controller retransmits
}

// account applies an authentic Accounting-Request to the table; it is
// answered whatever the result, so that the controller does not resend.
func (s *RADIUSServer) account(p *radius.Packet) string {
	status := rfc2866.AcctStatusType_Get(p)
	user := RADIUSUser(rfc2865.UserName_GetString(p))
	ipRaw := rfc2865.FramedIPAddress_Get(p)
	ip, ok := netip.AddrFromSlice(ipRaw)
	if !ok {
		return "ignored" // Accounting-On/Off, or a Start before an address was leased
	}
	ip = canon(ip)
	if !ip.IsValid() || ip.IsUnspecified() || s.o.IsClient != nil && !s.o.IsClient(ip) {
		return "ignored"
	}
	now := s.o.Now()
	switch status {
	case rfc2866.AcctStatusType_Value_Start, rfc2866.AcctStatusType_Value_InterimUpdate:
		if checkUser(user) != "" {
			return "malformed"
		}
		since := now
		if e, ok := s.t.Lookup(ip, now); ok && e.User == user && e.Source == SourceRADIUS {
			since = e.Since
		}
		s.t.Set(ip, Entry{User: user, Source: SourceRADIUS, Since: since, Until: now.Add(RADIUSTTL)})
	case rfc2866.AcctStatusType_Value_Stop:
		s.t.Remove(ip, user)
	default:
		return "ignored"
	}
	return "ok"
}

// RADIUSUser is the user a User-Name names: "SCHOOL\alice" and
// "alice@school.example" are alice, as the users file names her.
func RADIUSUser(name string) string {
	name = strings.TrimSpace(name)
	if i := strings.LastIndexByte(name, '\\'); i >= 0 {
		name = name[i+1:]
	}
	if i := strings.IndexByte(name, '@'); i > 0 {
		name = name[:i]
	}
	return name
}
