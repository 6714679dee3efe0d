package dnsfilter

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/miekg/dns"

	"github.com/schoolgate/schoolgate/config"
)

// The DNS filter blocks a statutory list's domain entries for everyone,
// staff who may see everything too; a URL entry's host still resolves (its
// other pages are not on the list).
func TestStatutoryDNS(t *testing.T) {
	up := newFakeUpstream(t, "192.0.2.1")
	cfg := testConfig(up.addr)
	path := filepath.Join(t.TempDir(), "iwf.txt")
	if err := os.WriteFile(path, []byte("whole-site.example\nimages.example/albums/1234/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Statutory = []config.Statutory{{Name: "iwf", File: path, MaxAge: config.DefaultStatutoryMaxAge}}
	staff := cfg.Profiles["staff"]
	staff.Rules = append([]config.Rule{{Action: "allow"}}, staff.Rules...)
	cfg.Profiles["staff"] = staff
	e := newEnv(t, cfg)
	for _, from := range []string{staffIP, studentIP} {
		for _, name := range []string{"whole-site.example", "www.whole-site.example"} {
			if r := e.ask(from, name, dns.TypeA, false, false); r.Rcode != dns.RcodeNameError {
				t.Errorf("%s from %s: %s, want NXDOMAIN", name, from, rcodeOf(r))
			}
		}
		if r := e.ask(from, "images.example", dns.TypeA, false, false); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Errorf("images.example from %s: %s, want the upstream's answer", from, rcodeOf(r))
		}
	}
	n := 0
	for _, l := range e.logLines() {
		if l["host"] == "whole-site.example" || l["host"] == "www.whole-site.example" {
			n++
			if l["rule"] != "statutory:iwf" || l["verdict"] != "block" {
				t.Errorf("log line %v, want a block by statutory:iwf", l)
			}
		}
	}
	if n != 4 {
		t.Errorf("%d log lines for the statutory domain, want 4", n)
	}
}
