package config

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"os"
)

// CAPool reads users.ldap.ca_file: PEM certificates, or one DER
// certificate (Windows' "DER encoded binary X.509 (.CER)" export of an AD
// CS root). It is the one place the file is judged: `config check`
// reports what it says, and the directory verifies the server with what
// it returns.
func (l *LDAP) CAPool() (*x509.CertPool, error) {
	b, err := os.ReadFile(l.CAFile)
	if err != nil {
		return nil, fmt.Errorf("reading users.ldap.ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if bytes.Contains(b, []byte("-----BEGIN")) {
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("users.ldap.ca_file %s holds no usable PEM certificate", l.CAFile)
		}
		return pool, nil
	}
	cert, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("users.ldap.ca_file %s holds neither PEM certificates nor a DER certificate: %w", l.CAFile, err)
	}
	pool.AddCert(cert)
	return pool, nil
}
