package firewall

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/schoolgate/schoolgate/config"
)

const base = `timezone: UTC
clients: [10.200.1.0/24, "fd00:200::/64"]
default_profile: student
profiles:
  student:
    default: allow
`

func load(t *testing.T, listen string) *config.Config {
	t.Helper()
	f := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(f, []byte(base+"listen: "+listen+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestRuleset(t *testing.T) {
	cfg := load(t, `{proxy: "", admin: "", dns: ":5353", transparent_http: ":8080", transparent_https: "10.200.1.1:8443"}`)
	rules, err := Ruleset(cfg, "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"table inet schoolgate\ndelete table inet schoolgate\ntable inet schoolgate {",
		"iif lo return",
		"ip saddr { 10.200.1.0/24 } meta l4proto { tcp, udp } th dport 53 redirect to :5353",
		"ip6 saddr { fd00:200::/64 } meta l4proto { tcp, udp } th dport 53 redirect to :5353",
		"fib daddr type local return",
		"ip saddr { 10.200.1.0/24 } tcp dport 80 redirect to :8080",
		"ip saddr { 10.200.1.0/24 } tcp dport 443 dnat ip to 10.200.1.1:8443",
		"ip saddr { 10.200.1.0/24 } udp dport { 80, 443, 853 } reject with icmpx type port-unreachable",
		"ip6 saddr { fd00:200::/64 } tcp dport 853 reject with tcp reset",
	} {
		if !strings.Contains(rules, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, rules)
		}
	}
	// DNS is redirected before the gateway's own addresses are let
	// through; web traffic after.
	if strings.Index(rules, "th dport 53") > strings.Index(rules, "fib daddr type local return") ||
		strings.Index(rules, "tcp dport 80 ") < strings.Index(rules, "fib daddr type local return") {
		t.Errorf("rules out of order:\n%s", rules)
	}
	if strings.Contains(rules, "ip6 saddr { fd00:200::/64 } tcp dport 443") {
		t.Errorf("an IPv4-only listener got IPv6 traffic:\n%s", rules)
	}
	nftCheck(t, rules)
}

func TestRulesetRefuses(t *testing.T) {
	for _, tc := range []struct{ name, listen, want string }{
		{"no transparent listener", `{dns: ":5353"}`, "neither listen.transparent_http nor listen.transparent_https"},
		{"loopback", `{transparent_http: "127.0.0.1:8080"}`, "listen.transparent_http 127.0.0.1:8080 listens on loopback only"},
		{"name", `{transparent_https: "gw.school.example:8443"}`, "needs an IP address"},
		{"port 0", `{transparent_https: ":0"}`, "needs a fixed port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Ruleset(load(t, tc.listen), "c.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// nftCheck has nft parse and check rules without loading them.
func nftCheck(t *testing.T, rules string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Log("not root: nft -c not run")
		return
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Log("nft not installed: nft -c not run")
		return
	}
	cmd := exec.Command("nft", "-c", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -c refuses the ruleset: %v\n%s\n%s", err, out, rules)
	}
}
