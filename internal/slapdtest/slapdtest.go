// Package slapdtest starts a real OpenLDAP server (Debian's slapd) for
// tests: a temporary database under dc=school,dc=test with the memberof
// overlay, on a loopback port, loaded with an LDIF through ldapadd (so the
// overlay fills memberOf, nested groups included). StartTLS gives it a
// certificate from a test CA and an ldaps:// listener as well, and makes
// it refuse every operation that is not under TLS.
package slapdtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Base is the suffix of the test directory.
const Base = "dc=school,dc=test"

// Admin and AdminPassword are the directory manager (rootdn).
const (
	Admin         = "cn=admin," + Base
	AdminPassword = "admin-secret"
)

// Server is a running slapd.
type Server struct {
	URL  string // ldap://127.0.0.1:PORT
	Port int

	// Set by StartTLS only.
	LDAPSURL    string // ldaps://127.0.0.1:TLSPORT
	TLSPort     int
	CAFile      string // PEM: the CA that signed the server's certificate
	OtherCAFile string // PEM: a CA that signed nothing the server has

	dir   string
	slapd string
	cmd   *exec.Cmd
	t     testing.TB
}

// Start starts slapd with the given LDIF loaded and stops it when the
// test ends. It skips the test when slapd or ldapadd is missing.
func Start(t testing.TB, ldif string) *Server {
	t.Helper()
	return start(t, ldif, false)
}

// StartTLS is Start with TLS: slapd gets a certificate for 127.0.0.1,
// ::1 and localhost signed by a CA of the test's own (CAFile), listens on
// ldaps:// (LDAPSURL) besides ldap:// (URL, where StartTLS works), and
// refuses any operation, binds included, on a connection without TLS
// (security tls=1), so a sign-in that works is one that was encrypted.
func StartTLS(t testing.TB, ldif string) *Server {
	t.Helper()
	return start(t, ldif, true)
}

func start(t testing.TB, ldif string, withTLS bool) *Server {
	t.Helper()
	slapd := "/usr/sbin/slapd"
	if p, err := exec.LookPath("slapd"); err == nil {
		slapd = p
	}
	if _, err := os.Stat(slapd); err != nil {
		t.Skip("slapd is not installed (Debian package slapd; .ci/run installs it)")
	}
	if _, err := exec.LookPath("ldapadd"); err != nil {
		t.Skip("ldapadd is not installed (Debian package ldap-utils)")
	}
	modules := "/usr/lib/ldap"
	if _, err := os.Stat(filepath.Join(modules, "memberof.la")); err != nil {
		t.Skip("slapd's memberof module is missing from /usr/lib/ldap")
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath %s
moduleload back_mdb
moduleload memberof
pidfile %s/slapd.pid
database mdb
maxsize 16777216
suffix "%s"
rootdn "%s"
rootpw %s
directory %s/db
overlay memberof
`, modules, dir, Base, Admin, AdminPassword, dir)
	s := &Server{dir: dir, slapd: slapd, t: t}
	s.Port = freePort(t)
	s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", s.Port)
	if withTLS {
		s.TLSPort = freePort(t)
		s.LDAPSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", s.TLSPort)
		certs := writePKI(t, dir)
		s.CAFile, s.OtherCAFile = certs.ca, certs.otherCA
		// Global directives (before "database"): slapd.conf's names for
		// cn=config's olcTLSCACertificateFile, olcTLSCertificateFile,
		// olcTLSCertificateKeyFile and olcSecurity.
		conf = strings.Replace(conf, "database mdb\n", fmt.Sprintf(
			"TLSCACertificateFile %s\nTLSCertificateFile %s\nTLSCertificateKeyFile %s\nsecurity tls=1\ndatabase mdb\n",
			certs.ca, certs.cert, certs.key), 1)
	}
	if err := os.WriteFile(filepath.Join(dir, "slapd.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start()
	t.Cleanup(s.Stop)
	s.Modify(ldif, "-a")
	return s
}

// start runs slapd in the foreground (-d 0) and waits until it answers.
func (s *Server) start() {
	s.t.Helper()
	urls := s.URL
	if s.LDAPSURL != "" {
		urls += " " + s.LDAPSURL
	}
	s.cmd = exec.Command(s.slapd, "-d", "0", "-f", filepath.Join(s.dir, "slapd.conf"), "-h", urls)
	var out bytes.Buffer
	s.cmd.Stdout, s.cmd.Stderr = &out, &out
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting slapd: %v", err)
	}
	ports := []int{s.Port}
	if s.TLSPort != 0 {
		ports = append(ports, s.TLSPort)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, port := range ports {
		for {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				s.Stop()
				s.t.Fatalf("slapd did not listen on %s: %s", urls, out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// Stop stops slapd (the directory "cannot be reached"); Restart brings
// it back with the same data.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Restart starts a stopped server again on the same port.
func (s *Server) Restart() {
	s.t.Helper()
	s.start()
}

// Modify runs ldapadd (-a) or ldapmodify ("") as the directory manager
// with ldif on its input.
func (s *Server) Modify(ldif, mode string) {
	s.t.Helper()
	args := []string{"-x", "-H", s.URL, "-D", Admin, "-w", AdminPassword}
	if mode != "" {
		args = append(args, mode)
	}
	cmd := exec.Command("ldapmodify", args...)
	if s.CAFile != "" {
		// The server refuses operations without TLS: StartTLS, required
		// (-ZZ), verifying with the test CA.
		cmd.Args = append(cmd.Args, "-ZZ")
		cmd.Env = append(os.Environ(), "LDAPTLS_CACERT="+s.CAFile, "LDAPTLS_REQCERT=demand")
	}
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("ldapmodify %s: %v\n%s", mode, err, out)
	}
}

// SetPassword sets dn's userPassword.
func (s *Server) SetPassword(dn, pw string) {
	s.t.Helper()
	s.Modify(fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: userPassword\nuserPassword: %s\n", dn, pw), "")
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// SchoolLDIF is a small school: a service account, pupils, staff, a
// disabled account, and nested groups (Year7 is in Pupils; Teachers is
// in Staff, which is in AllStaff).
const SchoolLDIF = `dn: ` + Base + `
objectClass: dcObject
objectClass: organization
o: Test School
dc: school

dn: ou=people,` + Base + `
objectClass: organizationalUnit
ou: people

dn: ou=groups,` + Base + `
objectClass: organizationalUnit
ou: groups

dn: cn=svc,` + Base + `
objectClass: inetOrgPerson
cn: svc
sn: service
userPassword: svc-secret

dn: uid=alice,ou=people,` + Base + `
objectClass: inetOrgPerson
uid: alice
cn: Alice Pupil
sn: Pupil
userPassword: alice-pw

dn: uid=tom,ou=people,` + Base + `
objectClass: inetOrgPerson
uid: tom
cn: Tom Teacher
sn: Teacher
userPassword: tom-pw

dn: uid=gina,ou=people,` + Base + `
objectClass: inetOrgPerson
uid: gina
cn: Gina Guest
sn: Guest
userPassword: gina-pw

dn: uid=dan,ou=people,` + Base + `
objectClass: inetOrgPerson
uid: dan
cn: Dan Disabled
sn: Disabled
employeeType: disabled
userPassword: dan-pw

dn: uid=star*,ou=people,` + Base + `
objectClass: inetOrgPerson
uid: star*
cn: Star
sn: Star
userPassword: star-pw

dn: cn=Year7,ou=groups,` + Base + `
objectClass: groupOfNames
cn: Year7
member: uid=alice,ou=people,` + Base + `

dn: cn=Pupils,ou=groups,` + Base + `
objectClass: groupOfNames
cn: Pupils
member: cn=Year7,ou=groups,` + Base + `

dn: cn=Teachers,ou=groups,` + Base + `
objectClass: groupOfNames
cn: Teachers
member: uid=tom,ou=people,` + Base + `

dn: cn=Staff,ou=groups,` + Base + `
objectClass: groupOfNames
cn: Staff
member: cn=Teachers,ou=groups,` + Base + `

dn: cn=AllStaff,ou=groups,` + Base + `
objectClass: groupOfNames
cn: AllStaff
member: cn=Staff,ou=groups,` + Base + `
`

// Filter is a user filter for SchoolLDIF: people by uid, with accounts
// marked employeeType=disabled left out (OpenLDAP has no
// userAccountControl).
const Filter = "(&(objectClass=inetOrgPerson)(uid={user})(!(employeeType=disabled)))"
