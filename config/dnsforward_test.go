package config

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestDNSForward(t *testing.T) {
	const base = "default_profile: p\nprofiles:\n  p: {}\n"
	doc := base + `dns:
  forward:
    School.Local.: ["10.0.0.10", "10.0.0.11:5353"]
    10.in-addr.arpa: [10.0.0.10]
    172.16.0.0/12: [10.0.0.10]
    192.168.4.0/24: [10.0.0.10]
    2001:db8:ab::/48: ["[2001:db8::53]:53"]
    _msdcs.school.local: [10.0.0.12]
  trusted_forwarders: [10.0.0.10, 10.0.1.0/24]
`
	cfg, err := Parse([]byte(doc), "t.yaml", "")
	if err != nil && !strings.Contains(err.Error(), "172.16.0.0/12") {
		t.Fatal(err)
	}
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Line != 8 || !strings.Contains(ps[0].Msg, "does not end on an octet") {
		t.Fatalf("want one problem at line 8 for 172.16.0.0/12, got %v", err)
	}
	doc = strings.Replace(doc, "    172.16.0.0/12: [10.0.0.10]\n", "", 1)
	if cfg, err = Parse([]byte(doc), "t.yaml", ""); err != nil {
		t.Fatal(err)
	}
	want := []Forward{
		{"school.local", []string{"10.0.0.10:53", "10.0.0.11:5353"}, 6},
		{"10.in-addr.arpa", []string{"10.0.0.10:53"}, 7},
		{"4.168.192.in-addr.arpa", []string{"10.0.0.10:53"}, 8},
		{"b.a.0.0.8.b.d.0.1.0.0.2.ip6.arpa", []string{"[2001:db8::53]:53"}, 9},
		{"_msdcs.school.local", []string{"10.0.0.12:53"}, 10},
	}
	if !reflect.DeepEqual(cfg.DNS.Forward, want) {
		t.Errorf("Forward = %+v\nwant      %+v", cfg.DNS.Forward, want)
	}
	if got, want := cfg.DNS.TrustedForwarders, []netip.Prefix{netip.MustParsePrefix("10.0.0.10/32"), netip.MustParsePrefix("10.0.1.0/24")}; !reflect.DeepEqual(got, want) {
		t.Errorf("TrustedForwarders = %v, want %v", got, want)
	}
}

func TestDNSForwardProblems(t *testing.T) {
	const base = "default_profile: p\nprofiles:\n  p: {}\n"
	tests := []struct {
		name, yaml string
		line       int
		msg        string
	}{
		{"name server", "dns:\n  forward:\n    school.local: [dc1.school.local]\n", 3, `dns.forward.school.local: bad upstream "dc1.school.local"`},
		{"no servers", "dns:\n  forward:\n    school.local: []\n", 3, "dns.forward.school.local has no server"},
		{"root", "dns:\n  forward:\n    \".\": [10.0.0.1]\n", 3, "the root zone is dns.upstreams' job"},
		{"bad zone", "dns:\n  forward:\n    \"school local\": [10.0.0.1]\n", 3, "is not a zone name"},
		{"twice", "dns:\n  forward:\n    school.local: [10.0.0.1]\n    SCHOOL.local.: [10.0.0.2]\n", 4, "listed twice (first at line 3)"},
		{"not a mapping", "dns:\n  forward: [school.local]\n", 2, "dns.forward: expected a mapping"},
		{"trusted not cidr", "dns:\n  trusted_forwarders: [dc1]\n", 2, `bad CIDR "dc1" in dns.trusted_forwarders`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml+base), "t.yaml", "")
			var ps Problems
			if !errors.As(err, &ps) || len(ps) != 1 {
				t.Fatalf("want exactly 1 problem, got %v", err)
			}
			if p := ps[0]; p.Line != tt.line || !strings.Contains(p.Msg, tt.msg) {
				t.Errorf("got  %s\nwant t.yaml:%d: ...%s...", p, tt.line, tt.msg)
			}
		})
	}
}
