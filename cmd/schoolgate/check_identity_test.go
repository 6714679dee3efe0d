package main

import (
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/identity"
)

// TestCheckIPShowsIdentity: check -ip ADDR reads the gateway's identity
// table (state_dir/identity.json) and shows the user there and their
// profile; targets are then decided as that user.
func TestCheckIPShowsIdentity(t *testing.T) {
	cfg := checkConfig(t)
	tb, err := identity.New(identity.Options{Path: filepath.Join(filepath.Dir(cfg), "state", identity.FileName)})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	// alice is staff in the users file; 10.10.0.0/16 is the student network.
	tb.Set(netip.MustParseAddr("10.10.0.5"), identity.Entry{User: "alice", Source: identity.SourceRADIUS, Since: now, Until: now.Add(time.Hour)})
	tb.Set(netip.MustParseAddr("10.10.0.6"), identity.Entry{User: "guest7", Source: identity.SourceAPI, Since: now, Until: now.Add(time.Hour)})
	tb.Close()

	cases := []struct {
		ip, wantUser, wantProfile, wantSource string
	}{
		{"10.10.0.5", "alice", "staff", "radius"},
		{"10.10.0.6", "guest7", "student", "api"}, // not in the users file: the network's profile
		{"10.10.0.7", "", "student", ""},
	}
	for _, c := range cases {
		t.Run(c.ip, func(t *testing.T) {
			code, out, errOut := runCheckT(t, "", "-config", cfg, "-ip", c.ip, "-json")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var v struct{ IP, User, Profile, Source string }
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatalf("%q: %v", out, err)
			}
			if v.IP != c.ip || v.User != c.wantUser || v.Profile != c.wantProfile || v.Source != c.wantSource {
				t.Errorf("got %+v, want %s %s %s", v, c.wantUser, c.wantProfile, c.wantSource)
			}
			_, human, _ := runCheckT(t, "", "-config", cfg, "-ip", c.ip)
			if !strings.Contains(human, "profile "+c.wantProfile) || c.wantUser != "" && !strings.Contains(human, "user "+c.wantUser) {
				t.Errorf("human output %q", human)
			}
		})
	}

	// A target is decided as the signed-in user, with their profile.
	code, out, errOut := runCheckT(t, "", "-config", cfg, "-ip", "10.10.0.5", "-json", "test-casino.example")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var l checkLine
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	if l.User != "alice" || l.Profile != "staff" {
		t.Errorf("decided as %q/%q, want alice/staff", l.User, l.Profile)
	}
	_, out, _ = runCheckT(t, "", "-config", cfg, "-ip", "10.10.0.5", "test-casino.example")
	if !strings.Contains(out, "signed in as alice (radius)") {
		t.Errorf("header does not name the signed-in user: %q", out)
	}
}
