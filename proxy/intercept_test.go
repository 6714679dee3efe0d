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
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testCA makes a CA and returns it with its key, writing both as PEM
// files in dir.
func testCA(t *testing.T, dir string) (*x509.Certificate, *ecdsa.PrivateKey) {
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
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	// An upstream with a certificate from the same CA for allowed.test,
	// which the proxy's transport must verify.
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	lt := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{"allowed.test", "www.allowed.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	lder, err := x509.CreateCertificate(rand.Reader, lt, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewUnstartedServer(e.upstreamHandler())
	up.Listener = listenUpstream(t)
	up.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{lder}, PrivateKey: leafKey}}}
	up.StartTLS()
	t.Cleanup(up.Close)
	port := up.Listener.Addr().(*net.TCPAddr).Port

	cfg := readFile(t, e.cfgPath)
	cfg = strings.Replace(cfg, "connect_ports: [", "connect_ports: ["+strconv.Itoa(port)+", ", 1)
	cfg = strings.Replace(cfg, "  block_page:", "  intercept: {ca_cert: ca.pem, ca_key: ca.key, domains: [allowed.test]}\n  block_page:", 1)
	writeFile(t, e.cfgPath, cfg)
	e.engine.Swap(e.build())
	o := e.p.o
	o.RootCAs = pool
	o.Registerer = nil // the first proxy's metrics are registered already
	addr := startProxy(t, o)

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
