package portal

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/identity"
	"github.com/schoolgate/schoolgate/internal/slapdtest"
	"github.com/schoolgate/schoolgate/logging"
)

// TestDirectorySignIn: the portal checks names the users file does not
// hold against users.ldap (a real slapd), as a proxy sign-in does: a
// teacher signs in with the profile of a group she is in through a nested
// one, and browses with it; a wrong directory password signs nobody in.
func TestDirectorySignIn(t *testing.T) {
	e, _ := directoryEnv(t)
	c := e.proxyClient("127.0.0.1")
	page := e.origin.URL + "/page"
	if resp, body := e.signInThroughProxy(t, c, page, "tom", "not-tom-pw"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong directory password: %d\n%s", resp.StatusCode, body)
	}
	if en, ok := e.ids.Lookup(loop, time.Now()); ok {
		t.Fatalf("a wrong directory password signed in %+v", en)
	}
	if resp, _ := e.signInThroughProxy(t, c, page, "tom", "tom-pw"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("tom's sign-in: %d", resp.StatusCode)
	}
	en, ok := e.ids.Lookup(loop, time.Now())
	if !ok || en.User != "tom" || en.Profile != "staff" || en.Source != identity.SourcePortal {
		t.Fatalf("identity after tom's sign-in: %+v %v, want the directory's profile staff", en, ok)
	}
	if resp, _ := do(t, c, "GET", page, nil, ""); resp.StatusCode != 200 {
		t.Fatalf("tom's page: %d", resp.StatusCode)
	}
	e.findLine(t, "tom's page as staff", func(l logging.Entry) bool {
		return l.URL == page && l.User == "tom" && l.Profile == "staff" && l.HTTPStatus == 200
	})
	e.findLine(t, "tom's failed sign-in", func(l logging.Entry) bool {
		return l.Rule == RuleSignIn && l.User == "tom" && l.AuthFailed && l.HTTPStatus == 401
	})
}

// TestDirectoryDown: with the directory stopped, a sign-in of a name the
// users file does not hold is answered 503 with a page that says why
// (not "wrong password"), signs nobody in, is counted unavailable and
// logged as a failed sign-in with status 503. (That sign-ins go through
// again once it is back: directory's TestSlapdDirectoryDown.)
func TestDirectoryDown(t *testing.T) {
	e, srv := directoryEnv(t)
	srv.Stop()
	c := e.proxyClient("127.0.0.1")
	page := e.origin.URL + "/page"
	resp, body := e.signInThroughProxy(t, c, page, "tom", "tom-pw")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "user directory cannot be reached") ||
		strings.Contains(body, "was not right") {
		t.Fatalf("a sign-in with the directory down: %d\n%s", resp.StatusCode, body)
	}
	if en, ok := e.ids.Lookup(loop, time.Now()); ok {
		t.Fatalf("a sign-in with the directory down signed in %+v", en)
	}
	if n := counter(t, e, resultUnavailable); n != 1 {
		t.Errorf("unavailable = %v, want 1", n)
	}
	if n := counter(t, e, resultFailed); n != 0 {
		t.Errorf("failed = %v, want 0: the password was never checked", n)
	}
	e.findLine(t, "the sign-in with the directory down", func(l logging.Entry) bool {
		return l.Rule == RuleSignIn && l.User == "tom" && l.AuthFailed && l.Verdict == "block" && l.HTTPStatus == http.StatusServiceUnavailable
	})
	// The page still works: the form is shown again, and the proxy
	// still sends the device here.
	if resp, _ := do(t, c, "GET", page, nil, ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the page after the failed sign-in: %d, want the redirect to the portal", resp.StatusCode)
	}
}

// directoryEnv is an env reached through the proxy whose users.ldap is a
// real slapd with the school's directory (AllStaff: profile staff).
func directoryEnv(t *testing.T) (*env, *slapdtest.Server) {
	t.Helper()
	srv := slapdtest.Start(t, slapdtest.SchoolLDIF)
	users := fmt.Sprintf("\nusers:\n  file: users.csv\n  ldap: {url: %q, bind_dn: \"cn=svc,%s\", bind_password_file: bind.pw, base_dn: %q, user_filter: %q, groups: [{group: \"cn=AllStaff,ou=groups,%s\", profile: staff}]}\n",
		srv.URL, slapdtest.Base, slapdtest.Base, slapdtest.Filter, slapdtest.Base)
	e := newEnvWith(t, throughProxy+users, func(dir string) {
		if err := os.WriteFile(filepath.Join(dir, "bind.pw"), []byte("svc-secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	})
	return e, srv
}
