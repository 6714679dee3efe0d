package directory

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/internal/slapdtest"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// schoolConfig is users.ldap for slapdtest.SchoolLDIF on srv.
func schoolConfig(t *testing.T, url string) config.LDAP {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "bind.pw")
	if err := os.WriteFile(pw, []byte("svc-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.LDAP{
		URL:              url,
		BindDN:           "cn=svc," + slapdtest.Base,
		BindPasswordFile: pw,
		BaseDN:           slapdtest.Base,
		UserFilter:       slapdtest.Filter,
		CacheMinutes:     1,
		Groups: []config.LDAPGroup{
			{Group: "cn=AllStaff,ou=groups," + slapdtest.Base, Profile: "staff"},
			{Group: "CN=Pupils, OU=groups," + slapdtest.Base, Profile: "pupils"},
		},
	}
}

func newDir(t *testing.T, cfg config.LDAP) (*Directory, *clock) {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}
	d.now = c.now
	return d, c
}

func TestSlapdSignIn(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.SchoolLDIF)
	d, _ := newDir(t, schoolConfig(t, srv.URL))
	tests := []struct {
		name, user, pass string
		profile          string
		rejected         bool
	}{
		{"pupil through nested group", "alice", "alice-pw", "pupils", false},
		{"teacher two levels down", "tom", "tom-pw", "staff", false},
		{"in no listed group", "gina", "gina-pw", "", false},
		{"wrong password", "alice", "nope", "", true},
		{"empty password", "alice", "", "", true},
		{"unknown user", "mallory", "x", "", true},
		{"disabled account", "dan", "dan-pw", "", true},
		{"filter characters are escaped", "*", "alice-pw", "", true},
		{"a name with a star signs in as itself", "star*", "star-pw", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := d.Authenticate(context.Background(), tc.user, tc.pass)
			var re *RejectedError
			switch {
			case tc.rejected && !errors.As(err, &re):
				t.Fatalf("Authenticate = %+v, %v; want a RejectedError", r, err)
			case !tc.rejected && err != nil:
				t.Fatalf("Authenticate: %v", err)
			case !tc.rejected && r.Profile != tc.profile:
				t.Fatalf("profile = %q, want %q", r.Profile, tc.profile)
			}
		})
	}
	// slapd does not take the in-chain rule (it is not Active
	// Directory): found once, remembered.
	if got := d.inChain.Load(); got != 2 {
		t.Errorf("inChain = %d, want 2 (walk) against slapd", got)
	}
}

func TestSlapdDirectoryDown(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.SchoolLDIF)
	d, clk := newDir(t, schoolConfig(t, srv.URL))
	ctx := context.Background()
	if _, err := d.Authenticate(ctx, "alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	clk.add(2 * time.Hour) // long past cache_minutes
	r, err := d.Authenticate(ctx, "alice", "alice-pw")
	if err != nil || r.Profile != "pupils" {
		t.Fatalf("cached user while the directory is down: %+v, %v; want pupils", r, err)
	}
	var ue *UnavailableError
	if _, err := d.Authenticate(ctx, "tom", "tom-pw"); !errors.As(err, &ue) {
		t.Fatalf("unseen user while the directory is down: %v, want UnavailableError", err)
	}
	if _, err := d.Authenticate(ctx, "alice", "wrong"); !errors.As(err, &ue) {
		t.Fatalf("wrong password while the directory is down: %v, want UnavailableError", err)
	}
	clk.add(StaleFor)
	if _, err := d.Authenticate(ctx, "alice", "alice-pw"); !errors.As(err, &ue) {
		t.Fatalf("cached user more than 8 hours past the cache: %v, want UnavailableError", err)
	}
	srv.Restart()
	// Failures are remembered for retryDown, so the next attempts do not
	// each wait for a connect timeout.
	if _, err := d.Authenticate(ctx, "tom", "tom-pw"); !errors.As(err, &ue) {
		t.Fatalf("just after the directory failed: %v, want UnavailableError without asking", err)
	}
	// Sign-ins answered so, without asking, do not put the next try off:
	// a school's steady stream of them must not keep the directory
	// "down" for good once it is back.
	clk.add(retryDown / 2)
	if _, err := d.Authenticate(ctx, "gina", "gina-pw"); !errors.As(err, &ue) {
		t.Fatalf("half a retryDown after the directory failed: %v, want UnavailableError without asking", err)
	}
	clk.add(retryDown - retryDown/2)
	if r, err := d.Authenticate(ctx, "tom", "tom-pw"); err != nil || r.Profile != "staff" {
		t.Fatalf("after the directory is back: %+v, %v", r, err)
	}
}

func TestSlapdPasswordAndGroupChange(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.SchoolLDIF)
	d, clk := newDir(t, schoolConfig(t, srv.URL))
	ctx := context.Background()
	if _, err := d.Authenticate(ctx, "alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}
	srv.SetPassword("uid=alice,ou=people,"+slapdtest.Base, "new-pw")
	// Moving gina into Teachers makes her staff (two levels down).
	srv.Modify("dn: cn=Teachers,ou=groups,"+slapdtest.Base+"\nchangetype: modify\nadd: member\nmember: uid=gina,ou=people,"+slapdtest.Base+"\n", "")
	// Within cache_minutes the old password still stands; the new one is
	// checked at once.
	if _, err := d.Authenticate(ctx, "alice", "alice-pw"); err != nil {
		t.Fatalf("old password within the cache: %v", err)
	}
	if _, err := d.Authenticate(ctx, "alice", "new-pw"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	clk.add(61 * time.Second)
	var re *RejectedError
	if _, err := d.Authenticate(ctx, "alice", "alice-pw"); !errors.As(err, &re) {
		t.Fatalf("old password after the cache expired: %v, want RejectedError", err)
	}
	if r, err := d.Authenticate(ctx, "gina", "gina-pw"); err != nil || r.Profile != "staff" {
		t.Fatalf("gina after joining Teachers: %+v, %v; want staff", r, err)
	}
}

func TestSlapdServiceAccountRefused(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.SchoolLDIF)
	cfg := schoolConfig(t, srv.URL)
	if err := os.WriteFile(cfg.BindPasswordFile, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, _ := newDir(t, cfg)
	var ue *UnavailableError
	if _, err := d.Authenticate(context.Background(), "alice", "alice-pw"); !errors.As(err, &ue) {
		t.Fatalf("with a refused service account: %v, want UnavailableError", err)
	}
}

func TestNewRefusesPlainRemote(t *testing.T) {
	_, err := New(config.LDAP{URL: "ldap://dc.school.test", BaseDN: slapdtest.Base})
	if err == nil {
		t.Fatal("New accepted a plain bind to a remote server")
	}
	if _, err := New(config.LDAP{URL: "ldap://dc.school.test", StartTLS: true, BaseDN: slapdtest.Base}); err != nil {
		t.Fatalf("start_tls: %v", err)
	}
}
