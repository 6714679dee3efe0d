package proxy

import (
	"net"
	"strconv"
	"testing"
)

// TestProxyLDAPProfile: a directory user's groups give the profile the
// proxy decides with and logs (nested membership included); a user in no
// listed group gets default_profile.
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
			}
		})
	}
}
