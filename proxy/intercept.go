package proxy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/categories"
)

// interceptor terminates TLS for the hosts proxy.intercept names, with
// certificates signed by the school's CA, so that HTTPS requests are
// decided (and logged) on the full URL and blocked ones get the block page.
type interceptor struct {
	ca      *x509.Certificate
	caKey   crypto.Signer
	leafKey *ecdsa.PrivateKey // one key for every minted certificate
	certs   *lru.Cache[string, *tls.Certificate]
	mu      sync.Mutex // serialises minting
}

// cert returns a certificate for host, minted on first use and kept until
// a day before it expires.
func (in *interceptor) cert(host string) (*tls.Certificate, error) {
	if c, ok := in.certs.Get(host); ok && time.Until(c.Leaf.NotAfter) > 24*time.Hour {
		return c, nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if c, ok := in.certs.Get(host); ok && time.Until(c.Leaf.NotAfter) > 24*time.Hour {
		return c, nil
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		tmpl.IPAddresses = []net.IP{ip.AsSlice()}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, in.ca, &in.leafKey.PublicKey, in.caKey)
	if err != nil {
		return nil, fmt.Errorf("minting a certificate for %s: %w", host, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	c := &tls.Certificate{Certificate: [][]byte{der, in.ca.Raw}, PrivateKey: in.leafKey, Leaf: leaf}
	in.certs.Add(host, c)
	return c, nil
}

// shouldIntercept reports whether the CONNECT st (decided on its host) is
// to be intercepted: the policy says which hosts proxy.intercept names
// (the same answer `schoolgate check` uses), and the CA must be loaded.
func (p *Proxy) shouldIntercept(st *request) bool {
	return p.settings().mitm != nil && st.snap.Intercepts(st.host, st.cats)
}

// ruleIntercept is the rule logged for an intercepted CONNECT whose host
// is blocked: the tunnel is opened only so that each request inside gets
// the block page (and its own log line with the blocking rule).
const ruleIntercept = "intercept"

// intercept answers the CONNECT, terminates the client's TLS with a minted
// certificate and serves the HTTP requests inside it as proxied https://
// requests, each decided on its full URL and logged on its own line.
func (p *Proxy) intercept(w http.ResponseWriter, r *http.Request, st *request, port int) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		p.fail(w, st, &BadRequestError{Msg: "CONNECT is only supported over HTTP/1.1"})
		return
	}
	client, _, err := hj.Hijack()
	if err != nil {
		p.recordOutcome(st, errClientGone)
		return
	}
	tc := &tunnelConns{client: client, up: client}
	defer p.trackTunnel(tc)()
	client.SetDeadline(time.Now().Add(p.o.HelloTimeout)) //nolint:errcheck
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		p.recordOutcome(st, errClientGone)
		return
	}
	st.status = http.StatusOK
	host := st.host
	mitm := p.settings().mitm
	tconn := tls.Server(client, &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			name := host
			if hello.ServerName != "" {
				if n, ok := categories.NormalizeHost(hello.ServerName); ok {
					name = n
				}
			}
			return mitm.cert(name)
		},
	})
	if err := tconn.Handshake(); err != nil {
		p.logger.Debug("intercept handshake failed", zap.String("host", host), zap.Error(err))
		return
	}
	if sni := tconn.ConnectionState().ServerName; sni != "" && p.checkSNI(st, sni) {
		return
	}
	client.SetDeadline(time.Time{}) //nolint:errcheck
	authority := hostPort(host, port, 443)
	user := st.user
	// The TLS records of request bodies arrive through the client's
	// connection: its body watch cuts a stalled upload here too.
	cc, _ := client.(*clientConn)
	done := make(chan struct{})
	srv := &http.Server{
		ReadHeaderTimeout: p.o.ReadHeaderTimeout,
		IdleTimeout:       p.o.ClientIdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          p.srv.ErrorLog,
		ConnState:         func(_ net.Conn, s http.ConnState) { disarmIdle(cc, s) },
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inner := &request{start: p.now(), snap: p.engine.Snapshot(), method: r.Method, ip: st.ip, user: user, authed: true}
			defer p.finish(inner)
			r.URL.Scheme = "https"
			r.URL.Host = authority
			watchBody(cc, r)
			p.servePlain(w, r, inner)
			p.noteStall(cc, inner)
		}),
	}
	srv.Serve(&oneConnListener{c: &notifyConn{Conn: tconn, done: done}, done: done}) //nolint:errcheck // ends when the conn does
	<-done
}

// oneConnListener serves one connection: the second Accept waits for it to
// close, so that http.Server.Serve returns when the connection ends.
type oneConnListener struct {
	c    net.Conn
	done chan struct{}
	used bool
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if !l.used {
		l.used = true
		return l.c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return l.c.LocalAddr() }

type notifyConn struct {
	net.Conn
	done chan struct{}
	once sync.Once
}

func (c *notifyConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.done) })
	return err
}
