package proxy

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/internal/slapdtest"
)

// ldapEnv is a proxy requiring sign-in, with users.csv (alice, bob) and
// users.ldap on a real slapd holding slapdtest.SchoolLDIF: members of
// AllStaff (tom, through Teachers and Staff) get the staff profile,
// members of Pupils (alice, through Year7) student; gina is in no listed
// group and gets default_profile (student).
func ldapEnv(t testing.TB) (*env, *slapdtest.Server) {
	t.Helper()
	srv := slapdtest.Start(t, slapdtest.SchoolLDIF)
	return ldapEnvOn(t, srv, "url: "+srv.URL, nil), srv
}

// ldapEnvOn is ldapEnv on a slapd of the caller's: conn is the YAML of
// users.ldap's url (and start_tls, ca_file), one key a line; logger (if
// not nil) receives the program log.
func ldapEnvOn(t testing.TB, srv *slapdtest.Server, conn string, logger *zap.Logger) *env {
	t.Helper()
	var dir string
	ec := envConfig{requireAuth: true, edit: func(cfg string) string {
		dir = t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "bind.pw"), []byte("svc-secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		const users = "users: {file: users.csv, require_auth: true}\n"
		if !strings.Contains(cfg, users) {
			t.Fatalf("the test config has no line %q to put users.ldap in", users)
		}
		return strings.Replace(cfg, users, `users:
  file: users.csv
  require_auth: true
  ldap:
    `+strings.ReplaceAll(strings.TrimSpace(conn), "\n", "\n    ")+`
    bind_dn: cn=svc,`+slapdtest.Base+`
    bind_password_file: `+filepath.Join(dir, "bind.pw")+`
    base_dn: `+slapdtest.Base+`
    user_filter: "`+slapdtest.Filter+`"
    cache_minutes: 1
    groups:
      - {group: "cn=AllStaff,ou=groups,`+slapdtest.Base+`", profile: staff}
      - {group: "cn=Pupils,ou=groups,`+slapdtest.Base+`", profile: student}
`, 1)
	}}
	if logger != nil {
		ec.opts = func(o *Options) { o.Logger = logger }
	}
	return newEnv(t, ec)
}

// get fetches url through the proxy as user and returns the status and
// body.
func (e *env) get(t *testing.T, user, pass, url string) (int, string) {
	t.Helper()
	resp, err := e.client(user, pass).Get(url)
	if err != nil {
		t.Fatalf("GET %s as %s: %v", url, user, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestProxyLDAPSignIn(t *testing.T) {
	e, srv := ldapEnv(t)
	// education: allowed for every profile
	school := "http://school.test:" + strconv.Itoa(e.up.Listener.Addr().(*net.TCPAddr).Port) + "/hello"
	tests := []struct {
		name, user, pass string
		status           int
		body             string
	}{
		{"directory user", "tom", "tom-pw", 200, ""},
		{"a name with a star", "star*", "star-pw", 200, ""},
		{"wrong password", "tom", "guess", 407, "not right"},
		{"empty password", "tom", "", 407, ""},
		{"disabled account", "dan", "dan-pw", 407, "not right"},
		{"the users file is tried first", "alice", "alice-pw", 407, "not right"},
		{"a users-file user still signs in", "bob", "bobpw", 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.get(t, tc.user, tc.pass, school)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if tc.body != "" && !strings.Contains(body, tc.body) {
				t.Errorf("page does not say %q:\n%s", tc.body, body)
			}
			l := e.lastLog(t, "school.test")
			if l.User != tc.user {
				t.Errorf("logged user %q, want %q", l.User, tc.user)
			}
			// A refused sign-in is logged as one, under the name tried.
			if tc.status == 407 && (l.Rule != "proxy_auth" || l.Auth != "failed" || l.Verdict != "block") {
				t.Errorf("407 line rule %q auth %q verdict %q, want proxy_auth failed block", l.Rule, l.Auth, l.Verdict)
			}
		})
	}

	// The directory goes away: tom, signed in before, keeps working (from
	// the per-header cache, and past it from the directory's); a name
	// never seen gets a 407 page saying the directory cannot be reached.
	srv.Stop()
	if status, body := e.get(t, "tom", "tom-pw", school); status != 200 {
		t.Fatalf("cached user with the directory down: %d %s", status, body)
	}
	e.p.auth.raw.Purge()
	if status, body := e.get(t, "tom", "tom-pw", school); status != 200 {
		t.Fatalf("cached user, header cache purged, directory down: %d %s", status, body)
	}
	status, body := e.get(t, "gina", "gina-pw", school)
	if status != 407 || !strings.Contains(body, "directory cannot be reached") {
		t.Fatalf("unseen user with the directory down: %d, want 407 saying the directory cannot be reached:\n%s", status, body)
	}
	if status, _ := e.get(t, "bob", "bobpw", school); status != 200 {
		t.Fatalf("users-file user with the directory down: %d", status)
	}
}

// TestProxyLDAPNotOnHotPath: once signed in, a user's requests are
// answered from the per-header cache with the directory gone.
func TestProxyLDAPNotOnHotPath(t *testing.T) {
	e, srv := ldapEnv(t)
	snap := e.engine.Snapshot()
	ctx, ip := context.Background(), netip.MustParseAddr("127.0.0.1")
	hdr := basicAuth("tom", "tom-pw")
	if u, p, err := e.p.auth.verifyCred(ctx, snap, ip, hdr, time.Now()); err != nil || u != "tom" || p != "staff" {
		t.Fatalf("verifyCred = %q %q %v", u, p, err)
	}
	srv.Stop()
	d, _ := e.p.auth.dirs.directory(snap)
	if d == nil {
		t.Fatal("no directory")
	}
	for i := 0; i < 3; i++ {
		if u, p, err := e.p.auth.verifyCred(ctx, snap, ip, hdr, time.Now()); err != nil || u != "tom" || p != "staff" {
			t.Fatalf("cached verifyCred = %q %q %v", u, p, err)
		}
	}
	if n := testing.AllocsPerRun(100, func() { e.p.auth.verifyCred(ctx, snap, ip, hdr, time.Now()) }); n > 0 { //nolint:errcheck
		t.Errorf("a cached directory sign-in allocates %.0f times", n)
	}
}

// BenchmarkAuthHeaderCached compares an authenticated request's
// credential check through the cache: a users-file user and a directory
// user (the issue: no dearer than the CSV).
func BenchmarkAuthHeaderCached(b *testing.B) {
	e, _ := ldapEnv(b)
	snap := e.engine.Snapshot()
	// The request's time, as the proxy passes it (read once a request).
	ctx, ip, now := context.Background(), netip.MustParseAddr("127.0.0.1"), time.Now()
	for _, c := range []struct{ name, user, pass string }{{"csv", "alice", "alicepw"}, {"ldap", "tom", "tom-pw"}} {
		b.Run(c.name, func(b *testing.B) {
			hdr := basicAuth(c.user, c.pass)
			if _, _, err := e.p.auth.verifyCred(ctx, snap, ip, hdr, now); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := e.p.auth.verifyCred(ctx, snap, ip, hdr, now); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkProxyDirectoryUser is BenchmarkProxyPlainHTTP (a whole
// authenticated request: credential check through the cache, decision,
// forwarding, access log) for a users-file user and a directory user of
// the same profile (staff), with the directory stopped once both have
// signed in: a cached directory user's requests never ask it.
func BenchmarkProxyDirectoryUser(b *testing.B) {
	e, srv := ldapEnv(b)
	target := benchUpstream(b)
	users := []struct{ name, user, pass string }{{"csv", "bob", "bobpw"}, {"ldap", "tom", "tom-pw"}}
	for _, u := range users {
		resp, err := e.client(u.user, u.pass).Get(target)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("%s: status %d", u.user, resp.StatusCode)
		}
	}
	srv.Stop()
	for _, u := range users {
		b.Run(u.name, func(b *testing.B) { benchClient(b, e.addr, target, u.user+":"+u.pass) })
	}
}
