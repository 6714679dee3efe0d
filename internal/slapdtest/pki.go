package slapdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/internal/testenv"
)

// pki is the files of a test PKI.
type pki struct {
	ca, otherCA string // CA certificates (PEM)
	cert, key   string // the server's certificate and key (PEM)
}

// writePKI writes a test CA, a server certificate it signs for 127.0.0.1,
// ::1 and localhost (the names a loopback test dials), the server's key,
// and an unrelated second CA, into dir (the CAs' keys beside them).
func writePKI(t testing.TB, dir string) pki {
	t.Helper()
	p := pki{
		ca:      filepath.Join(dir, "ca.pem"),
		otherCA: filepath.Join(dir, "other-ca.pem"),
		cert:    filepath.Join(dir, "server.pem"),
		key:     filepath.Join(dir, "server.key"),
	}
	caCert, caKey := testenv.WriteCA(t, p.ca, filepath.Join(dir, "ca.key"), "schoolgate test CA")
	// Same name, other key: only the signature tells them apart.
	testenv.WriteCA(t, p.otherCA, filepath.Join(dir, "other-ca.key"), "schoolgate test CA")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, p.cert, "CERTIFICATE", der)
	writePEM(t, p.key, "PRIVATE KEY", keyDER)
	return p
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
