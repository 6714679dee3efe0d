package proxy

import (
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/identity"
	"github.com/schoolgate/schoolgate/policy"
)

// TestProxyLDAPProfile: a directory user's groups give the profile the
// proxy decides with and logs (nested membership included); a user in no
// listed group gets default_profile. The identity table names the same
// user with the same profile.
func TestProxyLDAPProfile(t *testing.T) {
	e, _ := ldapEnv(t)
	// gambling: blocked for student, allowed for staff
	casino := "http://casino.test:" + strconv.Itoa(e.up.Listener.Addr().(*net.TCPAddr).Port) + "/hello"
	tests := []struct {
		name, user, pass string
		status           int
		profile          string
	}{
		{"staff through nested groups (Teachers in Staff in AllStaff)", "tom", "tom-pw", 200, "staff"},
		{"no listed group: default_profile", "gina", "gina-pw", 403, "student"},
		{"a users-file user keeps the users file's profile", "bob", "bobpw", 200, "staff"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i := 0; i < 2; i++ { // the second through the per-header cache
				status, body := e.get(t, tc.user, tc.pass, casino)
				if status != tc.status {
					t.Fatalf("request %d: status %d, want %d: %s", i+1, status, tc.status, body)
				}
				if l := e.lastLog(t, "casino.test"); l.User != tc.user || l.Profile != tc.profile {
					t.Fatalf("request %d: logged user %q profile %q, want %q %q", i+1, l.User, l.Profile, tc.user, tc.profile)
				}
				// The identity table holds the same user and profile, for
				// the DNS filter: a directory user's profile is known only
				// from the sign-in.
				en, ok := e.ids.Lookup(netip.MustParseAddr("127.0.0.1"), time.Now())
				if !ok || en.User != tc.user || en.Source != identity.SourceProxyAuth ||
					e.engine.Snapshot().ProfileOf(policy.Args{User: en.User, Profile: en.Profile, IP: netip.MustParseAddr("127.0.0.1")}) != tc.profile {
					t.Fatalf("request %d: identity entry %+v %v, want %s with profile %s", i+1, en, ok, tc.user, tc.profile)
				}
			}
		})
	}
}
