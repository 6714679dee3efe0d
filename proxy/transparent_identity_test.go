package proxy

import (
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/identity"
)

// TestTransparentIdentity: a redirected connection carries no
// credentials, so the identity table names it: the user signed in at the
// device's address (RADIUS, the logon API, a proxy sign-in against the
// directory that named a profile) decides and is logged, as in explicit
// mode. www.casino.test is gambling: blocked for student (the network's
// profile, 403), allowed for staff (then the upstream's certificate,
// which is not for that name, makes it a 502: the decision is what
// counts here).
func TestTransparentIdentity(t *testing.T) {
	te := newTransparentEnv(t, nil)
	ip := netip.MustParseAddr(deviceA)
	now := time.Now()
	cases := []struct {
		name       string
		entry      *identity.Entry
		verdict    string
		user, prof string
	}{
		{"nobody signed in", nil, "block", "", "student"},
		{"a users-file user from the logon API", &identity.Entry{User: "bob", Source: identity.SourceAPI}, "allow", "bob", "staff"},
		{"a directory user's profile from a proxy sign-in", &identity.Entry{User: "carol", Profile: "staff", Source: identity.SourceProxyAuth}, "allow", "carol", "staff"},
		{"a RADIUS user the users file makes a student", &identity.Entry{User: "alice", Profile: "staff", Source: identity.SourceRADIUS}, "block", "alice", "student"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			te.ids.Remove(ip, "")
			if c.entry != nil {
				en := *c.entry
				en.Since, en.Until = now, now.Add(time.Hour)
				te.ids.Set(ip, en)
			}
			cl := te.client(deviceA, upstreamIP, te.schools)
			defer cl.CloseIdleConnections()
			path := "/bet" + string(rune('a'+i))
			resp, err := cl.Get(te.url("www.casino.test", path))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body) //nolint:errcheck
			resp.Body.Close()
			if blocked := resp.StatusCode == 403; blocked != (c.verdict == "block") {
				t.Fatalf("status %d, want the verdict %s", resp.StatusCode, c.verdict)
			}
			for _, l := range te.logLines(t) {
				if l.URL == te.url("www.casino.test", path) {
					if l.Mode != modeTransparent || l.User != c.user || l.Profile != c.prof || l.Verdict != c.verdict {
						t.Fatalf("line mode %q user %q profile %q verdict %q, want transparent %q %q %s", l.Mode, l.User, l.Profile, l.Verdict, c.user, c.prof, c.verdict)
					}
					return
				}
			}
			t.Fatalf("no line for %s", path)
		})
	}
}
