package identity

import (
	"net/netip"
	"testing"
	"time"
)

// BenchmarkLookup is the identity stage of every DNS query and every
// proxy request without credentials: a read-locked map lookup, no
// allocation.
func BenchmarkLookup(b *testing.B) {
	tb, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer tb.Close()
	now := time.Now()
	for i := 0; i < 4096; i++ {
		tb.Set(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), Entry{User: "u", Source: SourceRADIUS, Since: now, Until: now.Add(time.Hour)})
	}
	ip := netip.MustParseAddr("10.0.7.7")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := tb.Lookup(ip, now); !ok {
				b.Fatal("not found")
			}
		}
	})
}

// BenchmarkTouch is the identity stage as the proxy and the DNS filter
// run it: Lookup, plus the renewal of a portal sign-in by traffic, whose
// write is skipped while the entry is nearly as fresh as it would become
// (here: traffic within the same sixteenth of the idle time). No
// allocation.
func BenchmarkTouch(b *testing.B) {
	tb, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer tb.Close()
	tb.SetIdle(SourcePortal, 30*time.Minute)
	now := time.Now()
	for i := 0; i < 4096; i++ {
		tb.Set(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}),
			Entry{User: "u", Source: SourcePortal, Since: now, Until: now.Add(30 * time.Minute), End: now.Add(8 * time.Hour)})
	}
	ip := netip.MustParseAddr("10.0.7.7")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := tb.Touch(ip, now); !ok {
				b.Fatal("not found")
			}
		}
	})
}

// BenchmarkSaw is a signed-in proxy request renewing its entry: the
// write is skipped while the entry is fresh.
func BenchmarkSaw(b *testing.B) {
	tb, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer tb.Close()
	ip, now := netip.MustParseAddr("10.0.0.1"), time.Now()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tb.Saw(ip, "alice", "", SourceProxyAuth, 15*time.Minute, now)
	}
}
