package proxy

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"github.com/schoolgate/schoolgate/internal/testenv"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testCA makes a CA and returns it with its key, writing both as PEM
// files in dir.
func testCA(t testing.TB, dir string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	return testenv.WriteCA(t, filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key"), "Test School CA")
}

func TestIntercept(t *testing.T) {
	e := newEnv(t, envConfig{requireAuth: true})
	ca, caKey := testCA(t, e.dir)
	pool := poolOf(ca)
	// An upstream with a certificate from the same CA for allowed.test,
	// which the proxy's transport must verify.
	port := tlsUpstream(t, ca, caKey, e.upstreamHandler(), "allowed.test", "www.allowed.test")
	addr := interceptProxyCA(t, e, ca, "domains: [allowed.test]", port)

	proxyURL := &url2{host: addr, user: "alice", pass: "alicepw"}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy:           http.ProxyURL(proxyURL.url()),
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}
	base := "https://www.allowed.test:" + strconv.Itoa(port)

	t.Run("allowed URL, certificate from the school CA", func(t *testing.T) {
		resp, body := get(t, c, base+"/hello")
		if resp.StatusCode != 200 || body != "hello from upstream" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 || resp.TLS.PeerCertificates[0].Issuer.CommonName != "Test School CA" {
			t.Fatal("not intercepted with the school CA")
		}
		l := e.lastLog(t, "www.allowed.test")
		if l.URL != base+"/hello" || l.Method != "GET" || l.User != "alice" || statusNum(l.Status) != 200 {
			t.Errorf("log line %+v", l)
		}
	})
	t.Run("blocked URL gets the block page", func(t *testing.T) {
		resp, body := get(t, c, base+"/forbidden/page")
		if resp.StatusCode != 403 || !strings.Contains(body, "adult") || !strings.Contains(body, "/forbidden/page") {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		l := e.lastLog(t, "www.allowed.test")
		if l.URL != base+"/forbidden/page" || l.Verdict != "block" || statusNum(l.Status) != 403 {
			t.Errorf("log line %+v", l)
		}
	})
	t.Run("the tunnel's CONNECT line is not a visit", func(t *testing.T) {
		c.CloseIdleConnections() // ends the tunnel: its CONNECT line is logged
		// An allowed host too: the requests inside are the visits, each on
		// its own line; the report leaves "intercept" CONNECTs out of them.
		l := e.logFor(t, "www.allowed.test", "CONNECT")
		if l.Verdict != "allow" || l.Rule != ruleIntercept || statusNum(l.Status) != 200 || l.URL != "" {
			t.Errorf("CONNECT log line %+v", l)
		}
	})
	t.Run("other hosts are tunnelled", func(t *testing.T) {
		cc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			Proxy:           http.ProxyURL(proxyURL.url()),
			TLSClientConfig: &tls.Config{RootCAs: e.roots, ServerName: "example.com"},
		}}
		resp, body := get(t, cc, "https://"+upstreamIP+":"+strconv.Itoa(e.tlsPort)+"/hello")
		if resp.StatusCode != 200 || body != "hello from upstream" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	})
}
