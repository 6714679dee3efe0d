package portal

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/identity"
	"github.com/schoolgate/schoolgate/internal/netnstest"
	"github.com/schoolgate/schoolgate/logging"
)

// TestTransparentTLSCutWithoutCA: with no school CA (no proxy.intercept)
// the proxy cannot show a redirected TLS connection the block page with
// the sign-in link, so one from a device in portal.networks that nobody
// is signed in at is cut, logged portal_required (mode transparent); a
// device outside portal.networks, and the same device once signed in at
// the portal, reach the origin. The redirect is nftables' in a network
// namespace of the test's own (SO_ORIGINAL_DST gives the origin).
func TestTransparentTLSCutWithoutCA(t *testing.T) {
	ns := netnstest.New(t, "sgpo", "nft")
	e := newEnv(t, throughProxy) // portal.networks: 127.0.0.1/32
	_, originPort, _ := net.SplitHostPort(e.originTLS.Listener.Addr().String())
	port, _ := strconv.Atoi(originPort)
	ln := netnstest.Redirected(t, ns, port, "127.0.0.1")
	served := make(chan error, 1)
	go func() { served <- e.prox.ServeTransparentHTTPS(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.prox.Shutdown(ctx) //nolint:errcheck
		<-served
	})
	// get opens a TLS connection from src (inside the namespace) to the
	// origin's address, redirected, and asks for /page.
	get := func(src string) (string, error) {
		var c net.Conn
		if err := netnstest.Run(ns, func() (err error) {
			d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			c, err = d.Dial("tcp", net.JoinHostPort("127.0.0.1", originPort))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
		// The SNI must resolve to the destination (else host_mismatch):
		// localhost does; the origin's certificate names only example.com
		// and 127.0.0.1, so it is checked by itself.
		tc := tls.Client(c, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 || !cs.PeerCertificates[0].Equal(e.originTLS.Certificate()) {
					return errors.New("not the origin's certificate")
				}
				return nil
			}})
		if err := tc.Handshake(); err != nil {
			return "", err
		}
		if _, err := io.WriteString(tc, "GET /page HTTP/1.1\r\nHost: example.com:"+originPort+"\r\nConnection: close\r\n\r\n"); err != nil {
			return "", err
		}
		b, err := io.ReadAll(tc)
		return string(b), err
	}
	if out, err := get("127.0.0.2"); err != nil || !containsAll(out, "200 OK", "the page itself") {
		t.Fatalf("a device outside portal.networks: %v\n%s\n%+v", err, out, e.logged())
	}
	if out, err := get("127.0.0.1"); err == nil {
		t.Fatalf("a device that must sign in reached the origin:\n%s", out)
	}
	l := e.findLine(t, "the cut connection", func(l logging.Entry) bool {
		return l.IP == "127.0.0.1" && l.Rule == "portal_required"
	})
	if l.Verdict != "block" || l.Mode != "transparent" || l.Host != "localhost" || l.HTTPStatus != 403 {
		t.Errorf("the cut connection's line: %+v", l)
	}
	now := time.Now()
	e.ids.Set(loop, identity.Entry{User: "alice", Profile: "staff", Source: identity.SourcePortal, Since: now,
		Until: now.Add(time.Hour), End: now.Add(2 * time.Hour)})
	if out, err := get("127.0.0.1"); err != nil || !containsAll(out, "200 OK", "the page itself") {
		t.Fatalf("the device once signed in: %v\n%s", err, out)
	}
	e.findLine(t, "the signed-in device's connection", func(l logging.Entry) bool {
		return l.IP == "127.0.0.1" && l.User == "alice" && l.Mode == "transparent" && l.Verdict == "allow"
	})
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
