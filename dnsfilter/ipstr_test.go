package dnsfilter

import (
	"net/netip"
	"testing"
)

func TestIPStrings(t *testing.T) {
	var c ipStrings
	for _, s := range []string{"10.10.1.7", "10.10.2.7", "::1", "fe80::1", "10.10.1.7", "192.168.0.7"} {
		ip := netip.MustParseAddr(s)
		if got := c.get(ip); got != s {
			t.Errorf("get(%s) = %q", s, got)
		}
	}
	ip := netip.MustParseAddr("10.20.3.4")
	c.get(ip)
	if n := testing.AllocsPerRun(100, func() { c.get(ip) }); n != 0 {
		t.Errorf("a known address allocates %v times", n)
	}
}
