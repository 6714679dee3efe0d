package main

import "testing"

// The shares docs/config.md gives.
func TestFDBudget(t *testing.T) {
	for _, c := range []struct{ nofile, admin, dns, proxy int }{
		{65536, 256, 1024, 32064},
		{1024, 64, 128, 352},
		{64, 4, 8, 16},
	} {
		b := newFDBudget(c.nofile)
		if b.admin != c.admin || b.dnsTCP != c.dns || b.proxy != c.proxy {
			t.Errorf("nofile %d: admin %d, dns %d, proxy %d; want %d, %d, %d", c.nofile, b.admin, b.dnsTCP, b.proxy, c.admin, c.dns, c.proxy)
		}
	}
}
