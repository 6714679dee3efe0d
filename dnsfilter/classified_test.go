package dnsfilter

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/categories/classify"
)

// TestClassifiedHostBlocked: a host the proxy's content classifier put in
// a category (shared through the policy engine) is blocked here too,
// without rescoring, and the log line carries the classifier's note.
func TestClassifiedHostBlocked(t *testing.T) {
	up := standardUpstream(t)
	e := newEnv(t, testConfig(up.addr))
	if r := e.ask(studentIP, "luckyspins.example", dns.TypeA, false, false); rcodeOf(r) != "NOERROR" {
		t.Fatalf("before: %s", rcodeOf(r))
	}
	mem := classify.NewMemory(0, time.Hour)
	mem.Remember("luckyspins.example", []classify.CategoryScore{{Category: categories.Gambling, Score: 0.83}}, "", time.Now())
	e.engine.SetRemembered(mem)
	if r := e.ask(studentIP, "luckyspins.example", dns.TypeAAAA, false, false); rcodeOf(r) != "NXDOMAIN" {
		t.Fatalf("classified host: %s", rcodeOf(r))
	}
	l := e.findLog("luckyspins.example", "AAAA")
	if l["verdict"] != "block" || l["classified"] != "gambling=0.83" {
		t.Fatalf("log line %v", l)
	}
	if l := e.findLog("luckyspins.example", "A"); l["classified"] != nil {
		t.Fatalf("line before classification has a note: %v", l)
	}
}
