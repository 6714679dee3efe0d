package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestLDAPConfig(t *testing.T) {
	const profiles = "profiles:\n  staff: {}\n  pupils: {}\ndefault_profile: pupils\n"
	doc := "users:\n  ldap:\n    url: ldaps://dc.school.local\n    bind_dn: cn=svc,dc=school,dc=local\n    bind_password_file: bind.pw\n    base_dn: dc=school,dc=local\n    ca_file: ca.pem\n    groups:\n      - {group: \"cn=Staff,dc=school,dc=local\", profile: staff}\n      - {group: \"cn=Pupils,dc=school,dc=local\", profile: pupils}\n" + profiles
	cfg, err := Parse([]byte(doc), "/etc/schoolgate/schoolgate.yaml", "/etc/schoolgate")
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Users.LDAP
	if l == nil {
		t.Fatal("Users.LDAP is nil")
	}
	if l.UserFilter != DefaultLDAPUserFilter || l.CacheMinutes != 15 {
		t.Errorf("defaults: filter %q, cache %d", l.UserFilter, l.CacheMinutes)
	}
	if l.BindPasswordFile != filepath.Join("/etc/schoolgate", "bind.pw") || l.CAFile != "/etc/schoolgate/ca.pem" {
		t.Errorf("paths not relative to the config: %q %q", l.BindPasswordFile, l.CAFile)
	}
	if len(l.Groups) != 2 || l.Groups[0].Profile != "staff" || l.Groups[1].Group != "cn=Pupils,dc=school,dc=local" {
		t.Errorf("groups = %+v", l.Groups)
	}

	bad := []struct {
		name, ldap string
		line       int
		msg        string
	}{
		{"plain remote", "    url: ldap://dc.school.local\n    base_dn: dc=x\n", 3, "passwords would cross the network unencrypted"},
		{"plain remote ip", "    url: ldap://10.0.0.5:389\n    base_dn: dc=x\n", 3, "unencrypted"},
		{"scheme", "    url: https://dc\n    base_dn: dc=x\n", 3, "the scheme must be ldaps or ldap"},
		{"no url", "    base_dn: dc=x\n", 2, "users.ldap.url is missing"},
		{"ldaps with start_tls", "    url: ldaps://dc\n    start_tls: true\n    base_dn: dc=x\n", 4, "start_tls is for ldap:// URLs"},
		{"no base", "    url: ldaps://dc\n", 2, "base_dn is missing"},
		{"bind dn alone", "    url: ldaps://dc\n    base_dn: dc=x\n    bind_dn: cn=svc\n", 2, "bind_dn and bind_password_file go together"},
		{"filter without user", "    url: ldaps://dc\n    base_dn: dc=x\n    user_filter: (uid=bob)\n", 5, "must contain {user}"},
		{"cache zero", "    url: ldaps://dc\n    base_dn: dc=x\n    cache_minutes: 0\n", 5, "cache_minutes must be at least 1"},
		{"unknown profile", "    url: ldaps://dc\n    base_dn: dc=x\n    groups:\n      - {group: cn=g, profile: staf}\n", 6, `unknown profile "staf"`},
		{"group without dn", "    url: ldaps://dc\n    base_dn: dc=x\n    groups:\n      - {profile: staff}\n", 6, "needs group (a DN) and profile"},
		{"unknown key", "    url: ldaps://dc\n    base_dn: dc=x\n    bindpw: x\n", 5, `unknown key "bindpw" in users.ldap`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte("users:\n  ldap:\n"+tc.ldap+profiles), "t.yaml", "")
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Parse = %v, want problems", err)
			}
			for _, p := range ps {
				if p.Line == tc.line && strings.Contains(p.Msg, tc.msg) {
					return
				}
			}
			t.Fatalf("want %q at line %d, got %v", tc.msg, tc.line, ps)
		})
	}
	for _, ok := range []string{"ldap://127.0.0.1:3890", "ldap://localhost", "ldap://[::1]:389"} {
		if _, err := Parse([]byte("users:\n  ldap:\n    url: "+ok+"\n    base_dn: dc=x\n"+profiles), "t.yaml", ""); err != nil {
			t.Errorf("%s (loopback) refused: %v", ok, err)
		}
	}
	if _, err := Parse([]byte("users:\n  ldap:\n    url: ldap://dc.school.local\n    start_tls: true\n    base_dn: dc=x\n"+profiles), "t.yaml", ""); err != nil {
		t.Errorf("start_tls refused: %v", err)
	}
}
