package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIdentityConfig(t *testing.T) {
	const base = "default_profile: p\nprofiles: {p: {}}\n"
	cases := []struct {
		name, yaml string
		wantErr    string // "" = loads
	}{
		{"off", "", ""},
		{"api and radius", "identity:\n  api_secret_file: api.secret\n  radius:\n    listen: 127.0.0.1:1813\n    secret_file: radius.secret\n    clients: [10.0.0.0/8]\n", ""},
		{"radius without a secret", "identity:\n  radius:\n    listen: 127.0.0.1:1813\n", ":4: identity.radius.listen is set but no identity.radius.secret_file"},
		{"bad listen", "identity:\n  radius:\n    listen: nowhere\n    secret_file: r\n", ":5: identity.radius.listen: bad address"},
		{"bad client", "identity:\n  radius:\n    listen: :1813\n    secret_file: r\n    clients: [10.0.0.0/33]\n", "identity.radius.clients"},
		{"unknown key", "identity:\n  api_secret: x\n", "api_secret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := Parse([]byte(base+c.yaml), "c.yaml", dir)
			wantErr(t, err, c.wantErr)
		})
	}
	cfg, err := Parse([]byte(base+cases[1].yaml), "c.yaml", "/etc/schoolgate")
	if err != nil {
		t.Fatal(err)
	}
	id := cfg.Identity
	if id.APISecretFile != "/etc/schoolgate/api.secret" || id.RADIUS.SecretFile != "/etc/schoolgate/radius.secret" ||
		id.RADIUS.Listen != "127.0.0.1:1813" || len(id.RADIUS.Clients) != 1 || id.RADIUS.Clients[0] != netip.MustParsePrefix("10.0.0.0/8") {
		t.Errorf("decoded %+v", id)
	}
}

// config check refuses a secret file that is missing or empty.
func TestIdentitySecretsChecked(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	cfgText := "default_profile: p\nprofiles: {p: {}}\nidentity:\n  api_secret_file: api.secret\n  radius:\n    listen: 127.0.0.1:1813\n    secret_file: radius.secret\n"
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := Check(path)
	if err == nil || !strings.Contains(err.Error(), "c.yaml:4: identity.api_secret_file: secret file "+filepath.Join(dir, "api.secret")+" does not exist") ||
		!strings.Contains(err.Error(), "c.yaml:5: identity.radius.secret_file") {
		t.Fatalf("Check = %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "api.secret"), []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "radius.secret"), []byte("testing123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = Check(path)
	if err == nil || !strings.Contains(err.Error(), "api.secret is empty") || strings.Contains(err.Error(), "radius") {
		t.Fatalf("Check = %v, want only the empty api secret", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "api.secret"), []byte("k7mq-x3tp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Check(path); err != nil {
		t.Fatalf("Check = %v", err)
	}
	if s, err := ReadSecret(filepath.Join(dir, "api.secret")); err != nil || string(s) != "k7mq-x3tp" {
		t.Errorf("ReadSecret = %q %v", s, err)
	}
}
