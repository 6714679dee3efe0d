package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/policy"
)

// serveConnect handles CONNECT: decided on the host, then either a tunnel
// the proxy terminates and reads as HTTP (terminate.go: port 80, an
// intercepted host, a blocked host's block page) or, if allowed, a relayed
// tunnel whose first bytes are checked for a TLS ClientHello naming another
// host.
func (p *Proxy) serveConnect(w http.ResponseWriter, r *http.Request, st *request) {
	host, port, ok := p.connectTarget(w, r, st)
	if !ok {
		return
	}
	if err := p.identify(st, r); err != nil {
		if se, ok := err.(*SignInError); !ok || !p.signInTunnel(w, r, st, port, se) {
			p.fail(w, st, err)
		}
		return
	}
	blocked := p.decide(st, host, "")
	// The system refusals (not_a_client, deny_destinations) stay at the door.
	if blocked != nil && isSystemRule(st.rule) {
		p.fail(w, st, blocked)
		return
	}
	kind, open, mitm := p.tunnelKindFor(st, port, blocked)
	if !open {
		if blocked == nil || kind == tunnelIntercept {
			blocked = &BlockedError{Rule: "connect_ports",
				Reason: fmt.Sprintf("tunnels to port %d are not allowed (proxy.connect_ports)", port)}
		}
		p.fail(w, st, blocked)
		return
	}
	if n := p.tunnelsOpen.Add(1); n > int64(p.settings().maxTunnels) {
		p.tunnelsOpen.Add(-1)
		p.fail(w, st, &OverloadError{What: "too many tunnels open"})
		return
	}
	defer p.tunnelsOpen.Add(-1)
	if kind != tunnelRelay {
		p.serveTerminated(w, r, st, newInnerTunnel(kind, st, port, blocked, mitm))
		return
	}
	p.serveRelayed(w, r, st, host, port)
}

// connectTarget reads the host and port a CONNECT names into st; on a
// bad one it answers the client and returns false.
func (p *Proxy) connectTarget(w http.ResponseWriter, r *http.Request, st *request) (host string, port int, ok bool) {
	authority := r.URL.Host
	if authority == "" {
		authority = r.Host
	}
	hostRaw, port, ok := splitHostPort(authority)
	if !ok {
		st.host = clip(authority, 253)
		p.fail(w, st, &BadRequestError{Msg: "CONNECT needs host:port, with a port from 1 to 65535"})
		return "", 0, false
	}
	host, ok = categories.NormalizeHost(hostRaw)
	if !ok || !dialableHost(host) {
		st.host = clip(hostRaw, 253)
		p.fail(w, st, &BadRequestError{Msg: "CONNECT names no valid host"})
		return "", 0, false
	}
	st.host = host
	return host, port, true
}

// serveRelayed dials host:port for the allowed CONNECT st, answers 200
// and relays the tunnel.
func (p *Proxy) serveRelayed(w http.ResponseWriter, r *http.Request, st *request, host string, port int) {
	up, err := p.dialer.DialContext(r.Context(), "tcp", net.JoinHostPort(dialHost(st, host), strconv.Itoa(port)))
	if err != nil {
		p.fail(w, st, upstreamOutcome(r.Context(), err))
		return
	}
	// room for a ClientHello behind the bytes already sent
	client, first, ok := p.hijackConnect(w, st, 4096)
	if !ok {
		up.Close()
		return
	}
	tc := &tunnelConns{client: client, up: up}
	defer p.trackTunnel(tc)()

	client.SetWriteDeadline(time.Now().Add(p.o.HelloTimeout)) //nolint:errcheck // a failed write says it
	if _, err := io.WriteString(client, establishedLine(r)); err != nil {
		p.recordOutcome(st, errClientGone)
		return
	}
	client.SetWriteDeadline(time.Time{}) //nolint:errcheck
	st.status = http.StatusOK
	p.beginSession(st)
	p.relay(st, tc, first, port, slices.Contains(p.o.TLSPorts, port))
}

// hijackConnect takes the client's connection of the CONNECT st from the
// HTTP server, with the bytes the client sent right behind its CONNECT
// (before our 200): they are already in the server's buffer, and are the
// tunnel's first bytes (first has room for at least room bytes). When it
// cannot, it has recorded the outcome and returns false.
func (p *Proxy) hijackConnect(w http.ResponseWriter, st *request, room int) (client net.Conn, first []byte, ok bool) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		p.fail(w, st, &BadRequestError{Msg: "CONNECT is only supported over HTTP/1.1"})
		return nil, nil, false
	}
	client, brw, err := hj.Hijack()
	if err != nil {
		p.recordOutcome(st, errClientGone)
		return nil, nil, false
	}
	n := brw.Reader.Buffered()
	first = make([]byte, n, max(n, room))
	if n > 0 {
		copy(first, mustPeek(brw.Reader.Peek(n)))
	}
	return client, first, true
}

// establishedLine is the answer to a CONNECT that opens its tunnel, in
// the client's HTTP version.
func establishedLine(r *http.Request) string {
	if r.ProtoMajor == 1 && r.ProtoMinor == 0 {
		return "HTTP/1.0 200 Connection established\r\n\r\n"
	}
	return "HTTP/1.1 200 Connection established\r\n\r\n"
}

// statusCut is logged for a tunnel the proxy cut after its 200 (the
// ClientHello named a blocked host, or was not TLS): the refusal's 403,
// since the 200 line the client got said nothing about the outcome.
const statusCut = http.StatusForbidden

// Rules logged for tunnels cut by the first-bytes check.
const (
	ruleTLSMalformed = "tls_malformed"
	ruleTLSRequired  = "tls_required"
)

// isSystemRule reports whether rule is one of the refusals that come
// before any profile rule.
func isSystemRule(rule string) bool {
	return rule == policy.RuleNotAClient || rule == policy.RuleDenyDestinations
}

func mustPeek(b []byte, _ error) []byte { return b }

// tunnelConns is the two ends of a tunnel, closed together once.
type tunnelConns struct {
	client, up net.Conn
	once       sync.Once
	// detached stops the relay without closing the client: its tunnel
	// turned out to carry HTTP, which the proxy reads itself.
	detached atomic.Bool
}

func (t *tunnelConns) close() {
	t.once.Do(func() {
		t.client.Close()
		t.up.Close()
	})
}

// relay checks the client's first bytes, then copies both ways until both
// sides are done or the tunnel is idle for TunnelIdleTimeout. A tunnel
// whose first bytes look like TLS must start with a ClientHello (see
// parseClientHelloSNI); one that does not look like TLS at all is relayed
// unread unless tlsOnly (the port is one of Options.TLSPorts, 443 by
// default: HTTPS, where another protocol can only be a way around the
// filter, such as SSH or a VPN on port 443).
//
// The client already has its "200 Connection established" when the check
// cuts the tunnel, so the log line keeps status 200 (what the client got,
// docs/contract.md §4) with verdict block and the rule that cut it.
func (p *Proxy) relay(st *request, tc *tunnelConns, first []byte, port int, tlsOnly bool) {
	rl := p.newRelaying(st, tc)
	// Server to client starts at once (some protocols speak first); the
	// client's bytes go upstream only after the ClientHello check.
	go rl.copyDown()
	defer rl.finish()
	defer p.recoverTunnel(tc)
	buf, ok := rl.checkFirstBytes(first, port, tlsOnly)
	if !ok {
		return
	}
	rl.copyUp(buf)
}

// relaying is one relayed tunnel: its two copies and what they share.
type relaying struct {
	p  *Proxy
	st *request
	tc *tunnelConns
	// Both ends unwrapped to *net.TCPConn where possible, so io.Copy
	// becomes splice(2) and the kernel moves the bytes.
	client, up net.Conn

	lastActive atomic.Int64
	down, upB  atomic.Int64
	downDone   chan struct{} // the server-to-client copy ended
	upDone     chan struct{} // the client-to-server copy ended
	downExited chan struct{}
	upOnce     sync.Once
	downOnce   sync.Once
}

func (p *Proxy) newRelaying(st *request, tc *tunnelConns) *relaying {
	rl := &relaying{p: p, st: st, tc: tc, client: tc.client, up: tc.up,
		downDone: make(chan struct{}), upDone: make(chan struct{}), downExited: make(chan struct{})}
	if cc, ok := tc.client.(*clientConn); ok {
		if t, ok := cc.tcp(); ok {
			rl.client = t
		}
	}
	rl.lastActive.Store(time.Now().UnixNano())
	return rl
}

func (rl *relaying) markUpDone()   { rl.upOnce.Do(func() { close(rl.upDone) }) }
func (rl *relaying) markDownDone() { rl.downOnce.Do(func() { close(rl.downDone) }) }

// copyDown copies server to client, then waits for the client's side.
func (rl *relaying) copyDown() {
	p := rl.p
	defer close(rl.downExited)
	defer rl.markDownDone()
	defer p.recoverTunnel(rl.tc)
	err := p.pump(rl.client, rl.up, rl.tc, &rl.lastActive, &rl.down)
	rl.markDownDone()
	p.m.relayedDown.Add(float64(rl.down.Load()))
	if err == nil {
		closeWrite(rl.client)
		p.await(rl.upDone, rl.tc, &rl.lastActive)
	}
}

// finish waits for the server-to-client copy and logs the bytes it moved.
func (rl *relaying) finish() {
	rl.markUpDone()
	<-rl.downExited
	rl.st.bytes = rl.down.Load()
}

// checkFirstBytes reads and checks the client's first bytes (see relay)
// and returns them to go upstream; false when the tunnel is cut, or
// handed to the HTTP reader.
func (rl *relaying) checkFirstBytes(first []byte, port int, tlsOnly bool) ([]byte, bool) {
	p, st, tc := rl.p, rl.st, rl.tc
	buf, hello, err := peekClientHello(tc.client, first, p.o.HelloTimeout)
	switch {
	case err == nil:
		if cut := p.checkHello(st, hello); cut {
			tc.close()
			return nil, false
		}
	case errors.Is(err, errNotTLS) && !tlsOnly:
		// Not TLS, on a port the school opened for other protocols. HTTP
		// is read as HTTP, as on port 80: relayed unread, it would take
		// any Host to the allowed host's address.
		var isHTTP bool
		if buf, isHTTP = readHTTPStart(tc.client, buf, p.o.HelloTimeout); isHTTP && rl.down.Load() == 0 {
			p.detachHTTP(st, tc, buf, port, rl.downExited)
			return nil, false
		}
	case errors.Is(err, errNotTLS):
		st.verdict, st.rule, st.status = policy.Block, ruleTLSRequired, statusCut
		p.logger.Info("tunnel cut: not TLS on an HTTPS port", zap.String("host", st.host), zap.Stringer("ip", st.ip),
			zap.String("user", st.user))
		tc.close()
		return nil, false
	case errors.Is(err, errMalformed):
		st.verdict, st.rule, st.status = policy.Block, ruleTLSMalformed, statusCut
		p.logger.Info("tunnel cut: malformed TLS ClientHello, or other TLS records before it", zap.String("host", st.host),
			zap.Stringer("ip", st.ip), zap.String("user", st.user))
		tc.close()
		return nil, false
	default:
		// The client said nothing in time, or left.
		tc.close()
		return nil, false
	}
	return buf, true
}

// copyUp sends the checked first bytes upstream, then copies client to
// server and waits for the server's side.
func (rl *relaying) copyUp(buf []byte) {
	p, tc, up := rl.p, rl.tc, rl.up
	rl.lastActive.Store(time.Now().UnixNano())
	if len(buf) > 0 {
		up.SetWriteDeadline(time.Now().Add(p.o.TunnelIdleTimeout)) //nolint:errcheck
		n, err := up.Write(buf)
		up.SetWriteDeadline(time.Time{}) //nolint:errcheck
		rl.upB.Add(int64(n))
		if err != nil {
			p.m.relayedUp.Add(float64(n))
			tc.close()
			return
		}
	}
	err := p.pump(up, rl.client, tc, &rl.lastActive, &rl.upB)
	rl.markUpDone()
	p.m.relayedUp.Add(float64(rl.upB.Load()))
	if err == nil {
		closeWrite(up)
		p.await(rl.downDone, tc, &rl.lastActive)
	}
}

// await waits for the other direction of a tunnel to finish, cutting the
// tunnel when it has been idle too long (the other side may be stuck
// writing to a peer that stopped reading).
func (p *Proxy) await(other <-chan struct{}, tc *tunnelConns, lastActive *atomic.Int64) {
	idle := p.o.TunnelIdleTimeout
	t := time.NewTicker(tunnelSlice(idle))
	defer t.Stop()
	for {
		select {
		case <-other:
			return
		case <-t.C:
			if time.Since(time.Unix(0, lastActive.Load())) >= idle {
				tc.close()
				return
			}
		}
	}
}

func tunnelSlice(idle time.Duration) time.Duration {
	return min(max(idle/4, 50*time.Millisecond), 30*time.Second)
}

// pump copies src to dst until EOF (nil), an error, or the tunnel idles
// out. Read deadlines come in short slices so that both directions see
// the tunnel's latest activity; a slice that ends after moving bytes counts
// as activity. A read deadline fires before any byte of that read is
// taken (with splice too: the pipe is drained before the next read), so
// resuming the copy loses nothing. There is no write deadline for the
// same reason; a write stuck on a peer that stopped reading is cut by the
// other direction's idle check (or by await).
func (p *Proxy) pump(dst, src net.Conn, tc *tunnelConns, lastActive, count *atomic.Int64) error {
	idle := p.o.TunnelIdleTimeout
	slice := tunnelSlice(idle)
	for {
		src.SetReadDeadline(time.Now().Add(slice)) //nolint:errcheck // a closed conn fails the copy
		n, err := io.Copy(dst, src)
		count.Add(n)
		if n > 0 {
			lastActive.Store(time.Now().UnixNano())
		}
		if err == nil {
			return nil
		}
		if tc.detached.Load() {
			return errDetached
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && time.Since(time.Unix(0, lastActive.Load())) < idle {
			continue
		}
		tc.close()
		return err
	}
}

func closeWrite(c net.Conn) {
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := c.(closeWriter); ok {
		cw.CloseWrite() //nolint:errcheck // the peer may be gone
	}
}

func (p *Proxy) recoverTunnel(tc *tunnelConns) {
	if r := recover(); r != nil {
		p.logger.Error("tunnel panic", zap.Any("panic", r), zap.Stack("stack"))
		tc.close()
	}
}

// trackTunnel registers an open tunnel (Shutdown closes what is left, the
// gauge counts it) and returns the function that closes and forgets it.
func (p *Proxy) trackTunnel(tc *tunnelConns) (done func()) {
	p.tmu.Lock()
	p.tunnels[tc] = struct{}{}
	p.tmu.Unlock()
	p.m.activeTunnels.Inc()
	return func() {
		tc.close()
		p.tmu.Lock()
		delete(p.tunnels, tc)
		p.tmu.Unlock()
		p.m.activeTunnels.Dec()
	}
}
