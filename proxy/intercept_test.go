package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
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
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test School CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	kder, _ := x509.MarshalECPrivateKey(key)
	writeFile(t, filepath.Join(dir, "ca.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, filepath.Join(dir, "ca.key"), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
	return ca, key
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
