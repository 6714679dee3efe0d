package proxy

import (
	"net/netip"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/identity"
)

// TestIdentityNamesRequests: where no credentials are required, the user
// the identity table holds for the address (from RADIUS or the logon API)
// names the request and their profile decides it.
func TestIdentityNamesRequests(t *testing.T) {
	e := newEnv(t, envConfig{})
	ip := netip.MustParseAddr("127.0.0.1")
	netProfile := e.engine.Snapshot().Profile("", ip)
	now := time.Now()
	cases := []struct {
		name        string
		entry       *identity.Entry
		wantUser    string
		wantProfile string
	}{
		{"nobody signed in", nil, "", netProfile},
		{"a user of the users file", &identity.Entry{User: "bob", Source: identity.SourceAPI}, "bob", "staff"},
		{"a user only the source knows", &identity.Entry{User: "visitor", Source: identity.SourceRADIUS}, "visitor", netProfile},
		{"a profile the source named", &identity.Entry{User: "carol", Profile: "staff", Source: identity.SourceRADIUS}, "carol", "staff"},
		{"the users file wins over the source", &identity.Entry{User: "alice", Profile: "staff", Source: identity.SourceRADIUS}, "alice", "student"},
		{"expired", &identity.Entry{User: "bob", Source: identity.SourceAPI, Until: now.Add(-time.Second)}, "", netProfile},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.ids.Remove(ip, "")
			if c.entry != nil {
				en := *c.entry
				en.Since = now
				if en.Until.IsZero() {
					en.Until = now.Add(time.Hour)
				}
				e.ids.Set(ip, en)
			}
			resp, _ := get(t, e.client("", ""), e.upURL+"/hello")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			l := e.lastLog(t, upstreamIP)
			if l.User != c.wantUser || l.Profile != c.wantProfile {
				t.Errorf("line user/profile = %q/%q, want %q/%q", l.User, l.Profile, c.wantUser, c.wantProfile)
			}
		})
	}
}

// TestProxySignInRecorded: a proxy sign-in names its address in the
// identity table (source proxy-auth), for the DNS filter and the logs.
func TestProxySignInRecorded(t *testing.T) {
	e := newEnv(t, envConfig{requireAuth: true})
	ip := netip.MustParseAddr("127.0.0.1")
	if _, ok := e.ids.Lookup(ip, time.Now()); ok {
		t.Fatal("table not empty before any sign-in")
	}
	if resp, _ := get(t, e.client("alice", "nope"), e.upURL+"/hello"); resp.StatusCode != 407 {
		t.Fatalf("wrong password: status %d", resp.StatusCode)
	}
	if en, ok := e.ids.Lookup(ip, time.Now()); ok {
		t.Fatalf("a failed sign-in was recorded: %+v", en)
	}
	if resp, _ := get(t, e.client("bob", "bobpw"), e.upURL+"/hello"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	en, ok := e.ids.Lookup(ip, time.Now())
	if !ok || en.User != "bob" || en.Source != identity.SourceProxyAuth || en.Until.Sub(time.Now()) < 14*time.Minute {
		t.Errorf("entry = %+v %v, want bob from proxy-auth for 15 minutes", en, ok)
	}
}
