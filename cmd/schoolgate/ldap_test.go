package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/internal/slapdtest"
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

// TestServeLDAPEndToEnd: serve with users.ldap on a slapd that takes only
// TLS, over ldaps:// with ca_file: directory users sign in to the proxy
// with their groups' profile (nested), a wrong password is a 407 logged
// under the name tried, and with the directory gone a user it accepted
// keeps browsing while a name never seen gets the 407 page saying the
// directory cannot be reached, and the program log says so.
func TestServeLDAPEndToEnd(t *testing.T) {
	srv := slapdtest.StartTLS(t, slapdtest.SchoolLDIF)
	s := startE2EWith(t, func(s *e2eServer) {
		if err := os.WriteFile(filepath.Join(s.dir, "bind.pw"), []byte("svc-secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		s.usersExtra = fmt.Sprintf(`, ldap: {url: %q, ca_file: %q, bind_dn: "cn=svc,%s", bind_password_file: bind.pw, base_dn: %q, user_filter: %q, groups: [{group: "cn=AllStaff,ou=groups,%s", profile: staff}]}`,
			srv.LDAPSURL, srv.CAFile, slapdtest.Base, slapdtest.Base, slapdtest.Filter, slapdtest.Base)
		s.profilesExtra = "  staff:\n    default: allow\n"
	})
	// casino.test is gambling: blocked for student (403); staff may, so
	// the proxy tries the name (which does not resolve: 502).
	get := func(user, pass string) (int, string) {
		t.Helper()
		resp, err := s.client(user, pass).Get("http://casino.test/")
		if err != nil {
			t.Fatalf("GET as %s: %v", user, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	line := func(user, verdict string) e2eLogLine {
		t.Helper()
		return s.waitLog(t, user+" "+verdict, func(l e2eLogLine) bool {
			return l.Host == "casino.test" && l.User == user && l.Verdict == verdict
		})
	}
	tests := []struct {
		name, user, pass string
		status           int
		verdict, profile string
	}{
		{"staff through nested groups", "tom", "tom-pw", 502, "allow", "staff"},
		{"in no listed group: default_profile", "gina", "gina-pw", 403, "block", "student"},
		{"wrong password", "tom", "guess", 407, "block", "student"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if status, body := get(tc.user, tc.pass); status != tc.status {
				t.Fatalf("status %d, want %d:\n%s", status, tc.status, body)
			}
			if l := line(tc.user, tc.verdict); l.Profile != tc.profile || tc.status == 407 && l.Rule != "proxy_auth" {
				t.Fatalf("line %+v, want profile %s", l, tc.profile)
			}
		})
	}

	srv.Stop()
	if status, body := get("tom", "tom-pw"); status != 502 {
		t.Fatalf("tom with the directory gone: %d, want 502 (allowed as staff):\n%s", status, body)
	}
	status, body := get("star*", "star-pw")
	if status != 407 || !strings.Contains(body, "directory cannot be reached") {
		t.Fatalf("a name never seen with the directory gone: %d, want 407 saying the directory cannot be reached:\n%s", status, body)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(s.stderr.String(), "users.ldap: the directory cannot be reached"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the program log does not say the directory cannot be reached:\n%s", s.stderr.String())
		}
	}
}
