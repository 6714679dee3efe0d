package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheckLDAP: `config check` refuses a plain bind to a directory
// that is not on this machine, at the line of the URL, a missing bind
// password file and a ca_file that holds no certificate; a loopback plain
// URL, start_tls and ldaps pass.
func TestConfigCheckLDAP(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "bind.pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "ca.cer")
	if err := os.WriteFile(bad, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := func(url, extra string) string {
		return "timezone: UTC\nclients: [10.0.0.0/8]\nusers:\n  require_auth: true\n  ldap:\n    url: " + url +
			"\n    bind_dn: cn=svc,dc=school,dc=local\n    bind_password_file: " + pw + "\n    base_dn: dc=school,dc=local\n" + extra +
			"default_profile: p\nprofiles:\n  p: {}\n"
	}
	tests := []struct {
		name, yaml string
		code       int
		want       string
	}{
		{"plain remote", conf("ldap://dc1.school.local", ""), 1, ":6: users.ldap.url ldap://dc1.school.local: passwords would cross the network unencrypted"},
		{"plain loopback", conf("ldap://127.0.0.1:3890", ""), 0, ": ok"},
		{"start_tls", conf("ldap://dc1.school.local", "    start_tls: true\n"), 0, ": ok"},
		{"ldaps", conf("ldaps://dc1.school.local", ""), 0, ": ok"},
		{"ca_file not a certificate", conf("ldaps://dc1.school.local", "    ca_file: "+bad+"\n"), 1, ":5: users.ldap.ca_file " + bad + " holds neither PEM certificates nor a DER certificate"},
		{"missing password file", strings.Replace(conf("ldaps://dc1.school.local", ""), pw, pw+".gone", 1), 1, "users.ldap.bind_password_file " + pw + ".gone does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if err := os.WriteFile(p, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errs := runCmd(t, "", "config", "check", p)
			if code != tc.code || !strings.Contains(out+errs, tc.want) {
				t.Fatalf("exit %d, want %d with %q; stdout %q stderr %q", code, tc.code, tc.want, out, errs)
			}
		})
	}
}
