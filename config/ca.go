package config

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// LoadCA reads the school's interception CA that ic names: a PEM
// certificate that is a CA, and the PEM key that belongs to it. It is the
// one place the files are judged: `config check` reports what it says
// against the ca_cert line, and the proxy mints its certificates from what
// it returns (at start and at each reload).
func (ic *Intercept) LoadCA() (*x509.Certificate, crypto.Signer, error) {
	pair, err := tls.LoadX509KeyPair(ic.CACert, ic.CAKey)
	if err != nil {
		return nil, nil, fmt.Errorf("loading the interception CA %s and key %s: %w", ic.CACert, ic.CAKey, err)
	}
	ca, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("parsing the interception CA %s: %w", ic.CACert, err)
	}
	if !ca.IsCA {
		return nil, nil, fmt.Errorf("the interception certificate %s is not a CA (basicConstraints CA:TRUE is missing)", ic.CACert)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("the interception CA key cannot sign")
	}
	return ca, signer, nil
}
