package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPortalConfig(t *testing.T) {
	const base = "default_profile: p\nprofiles: {p: {}}\n"
	const ca = "proxy:\n  intercept:\n    ca_cert: ca.pem\n    ca_key: ca.key\n"
	cases := []struct {
		name, yaml string
		wantErr    string // "" = loads
	}{
		{"off", "", ""},
		{"loopback plain", "portal:\n  listen: 127.0.0.1:8080\n  hostname: signin.school.test\n  networks: [10.20.0.0/16]\n", ""},
		{"own certificate", "portal:\n  listen: :8443\n  hostname: signin.school.test\n  cert: portal.pem\n  key: portal.key\n", ""},
		{"minted from the school CA", ca + "portal:\n  listen: :8443\n  hostname: signin.school.test\n", ""},
		{"CA after the portal", "portal:\n  listen: :8443\n  hostname: signin.school.test\n" + ca, ""},
		{"no TLS off loopback", "portal:\n  listen: :8443\n  hostname: signin.school.test\n", ":4: portal.listen :8443 is not loopback"},
		{"no hostname", "portal:\n  listen: 127.0.0.1:8080\n", ":3: portal.listen is set but portal.hostname is not"},
		{"hostname with a port", "portal:\n  listen: 127.0.0.1:8080\n  hostname: signin.school.test:8080\n", ":5: portal.hostname \"signin.school.test:8080\" is not a host name"},
		{"hostname a URL", "portal:\n  listen: 127.0.0.1:8080\n  hostname: https://signin.school.test/\n", "is not a host name"},
		{"cert without key", "portal:\n  listen: :8443\n  hostname: h.test\n  cert: c.pem\n", ":6: portal.cert and portal.key go together"},
		{"networks without listen", "portal:\n  networks: [10.0.0.0/8]\n", ":3: portal: portal.listen is not set"},
		{"bad network", "portal:\n  listen: 127.0.0.1:8080\n  hostname: h.test\n  networks: [10.0.0.0/33]\n", "portal.networks"},
		{"bad listen", "portal:\n  listen: nowhere\n  hostname: h.test\n", ":4: portal.listen: bad address"},
		{"idle zero", "portal:\n  listen: 127.0.0.1:8080\n  hostname: h.test\n  idle_minutes: 0\n", ":6: portal.idle_minutes must be at least 1"},
		{"idle over a day", "portal:\n  listen: 127.0.0.1:8080\n  hostname: h.test\n  idle_minutes: 1441\n", ":6: portal.idle_minutes 1441 is over a day"},
		{"no proxy", "listen: {proxy: \"\"}\nportal:\n  listen: 127.0.0.1:8080\n  hostname: h.test\n", ":5: portal.listen is set but the proxy is not"},
		{"unknown key", "portal:\n  listen: 127.0.0.1:8080\n  hostname: h.test\n  idle: 5\n", "unknown key \"idle\" in portal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(base+c.yaml), "c.yaml", t.TempDir())
			wantErr(t, err, c.wantErr)
		})
	}

	cfg, err := Parse([]byte(base+cases[1].yaml), "c.yaml", "/etc/schoolgate")
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Portal
	if !p.Enabled() || !p.PlainHTTP() || p.Hostname != "signin.school.test" || p.IdleMinutes != DefaultPortalIdleMinutes ||
		p.Idle() != 30*time.Minute {
		t.Errorf("decoded %+v", p)
	}
	if !p.Required(netip.MustParseAddr("10.20.3.4")) || !p.Required(netip.MustParseAddr("::ffff:10.20.3.4")) ||
		p.Required(netip.MustParseAddr("10.21.0.1")) {
		t.Error("Required does not follow portal.networks")
	}
	cfg, err = Parse([]byte(base+cases[2].yaml), "c.yaml", "/etc/schoolgate")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Portal.Cert != "/etc/schoolgate/portal.pem" || cfg.Portal.Key != "/etc/schoolgate/portal.key" || cfg.Portal.PlainHTTP() {
		t.Errorf("cert paths %q %q, plain %v", cfg.Portal.Cert, cfg.Portal.Key, cfg.Portal.PlainHTTP())
	}
	if Default().Portal.Enabled() || Default().Portal.Required(netip.MustParseAddr("127.0.0.1")) {
		t.Error("the portal is on by default")
	}
}

// config check loads portal.cert and portal.key and refuses a pair that
// does not load or does not name portal.hostname.
func TestPortalCertChecked(t *testing.T) {
	dir := t.TempDir()
	writePair(t, dir, "good", "signin.school.test")
	writePair(t, dir, "other", "elsewhere.test")
	cases := []struct{ name, cert, key, want string }{
		{"good", "good.pem", "good.key", ""},
		{"missing", "none.pem", "none.key", "c.yaml:6: portal.cert: open " + filepath.Join(dir, "none.pem")},
		{"mismatched key", "good.pem", "other.key", "c.yaml:6: portal.cert: tls: private key does not match public key"},
		{"other name", "other.pem", "other.key", "c.yaml:6: portal.cert " + filepath.Join(dir, "other.pem") + " does not name portal.hostname signin.school.test"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, "c.yaml")
			text := "default_profile: p\nprofiles: {p: {}}\nportal:\n  listen: :8443\n  hostname: signin.school.test\n  cert: " +
				c.cert + "\n  key: " + c.key + "\n"
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := Check(path)
			wantErr(t, err, c.want)
		})
	}
}

// writePair writes a self-signed certificate for host and its key as
// dir/name.pem and dir/name.key.
func writePair(t *testing.T, dir, name, host string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestPortalLoopbackWarning: a loopback portal that portal.networks
// sends other devices to is a warning of config check, not a problem.
func TestPortalLoopbackWarning(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, listen, networks, want string }{
		{"loopback, a Wi-Fi network", "127.0.0.1:8080", "[127.0.0.0/8, 10.30.0.0/16]", "c.yaml:4: warning: portal.listen 127.0.0.1:8080 is loopback, so only the gateway itself can reach the sign-in page (and the DNS filter answers signin.school.test with a loopback address), but portal.networks names 10.30.0.0/16: their devices cannot sign in"},
		{"localhost, everything", "localhost:8080", "[0.0.0.0/0]", "portal.networks names 0.0.0.0/0:"},
		{"loopback, loopback only", "127.0.0.1:8080", "[127.0.0.1/32, \"::1/128\"]", ""},
		{"an address of the gateway's", "10.30.0.1:8443", "[10.30.0.0/16]", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, "c.yaml")
			text := "default_profile: p\nprofiles: {p: {}}\nportal:\n  listen: \"" + c.listen + "\"\n  hostname: signin.school.test\n  networks: " + c.networks + "\n"
			if !strings.HasPrefix(c.listen, "127.") && !strings.HasPrefix(c.listen, "localhost") {
				writePair(t, dir, "p", "signin.school.test")
				text += "  cert: p.pem\n  key: p.key\n"
			}
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			_, warnings, err := Check(path)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case c.want == "" && len(warnings) != 0:
				t.Errorf("warnings: %v", warnings)
			case c.want != "" && (len(warnings) != 1 || !strings.Contains(warnings.Error(), c.want)):
				t.Errorf("warnings: %v, want one with %q", warnings, c.want)
			}
		})
	}
}
