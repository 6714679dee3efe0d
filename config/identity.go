package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Identity configures the sources that name who is on an address besides
// proxy sign-in (docs/identity.md): the logon API's secret and RADIUS
// accounting.
type Identity struct {
	// APISecretFile holds the HMAC key of POST /api/identity on the
	// admin listener; "" turns the API off.
	APISecretFile string
	APISecretLine int
	RADIUS        RADIUS
}

// RADIUS is RADIUS accounting (`identity.radius`).
type RADIUS struct {
	Listen     string // UDP host:port; "" turns it off
	SecretFile string // the shared secret
	// Clients may send accounting (default loopback and `clients`).
	Clients []netip.Prefix
	Line    int
}

// identity decodes `identity`.
func (d *decoder) identity(n *yaml.Node) {
	id := &d.cfg.Identity
	d.mapping(n, "identity", []field{
		{"api_secret_file", func(k, v *yaml.Node) {
			id.APISecretLine = k.Line
			if s, ok := d.str(v, "identity.api_secret_file"); ok {
				id.APISecretFile = strings.TrimSpace(s)
			}
		}},
		{"radius", func(k, v *yaml.Node) {
			r := &id.RADIUS
			r.Line = k.Line
			d.mapping(v, "identity.radius", []field{
				{"listen", func(_, v *yaml.Node) {
					if s, ok := d.listenAddr(v, "identity.radius.listen"); ok {
						r.Listen = s
					}
				}},
				{"secret_file", func(_, v *yaml.Node) {
					if s, ok := d.str(v, "identity.radius.secret_file"); ok {
						r.SecretFile = strings.TrimSpace(s)
					}
				}},
				{"clients", func(_, v *yaml.Node) { r.Clients = d.prefixes(v, "identity.radius.clients") }},
			})
			if r.Listen != "" && r.SecretFile == "" {
				d.addf(k.Line, "identity.radius.listen is set but no identity.radius.secret_file holds the shared secret")
			}
		}},
	})
}

// ReadSecret reads a secret file: its content without surrounding
// whitespace, which must not be empty.
func ReadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("secret file %s does not exist", path)
		}
		return nil, fmt.Errorf("reading secret file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil, fmt.Errorf("secret file %s is empty", path)
	}
	return []byte(s), nil
}

// checkIdentity is config check's look at the identity secrets: each
// named file must hold a secret.
func checkIdentity(cfg *Config, addf func(line int, format string, args ...any)) {
	if f := cfg.Identity.APISecretFile; f != "" {
		if _, err := ReadSecret(f); err != nil {
			addf(cfg.Identity.APISecretLine, "identity.api_secret_file: %v", err)
		}
	}
	if r := cfg.Identity.RADIUS; r.Listen != "" && r.SecretFile != "" {
		if _, err := ReadSecret(r.SecretFile); err != nil {
			addf(r.Line, "identity.radius.secret_file: %v", err)
		}
	}
}
