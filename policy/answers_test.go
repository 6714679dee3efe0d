package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestAnswers(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	a1, a2, a3 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::3")
	m := NewAnswers(100)
	m.Saw("cdn.example", []netip.Addr{a1, a3}, t0, t0.Add(time.Minute))
	m.Saw("other.example", []netip.Addr{a1}, t0, t0.Add(time.Hour))
	for _, tc := range []struct {
		name string
		addr netip.Addr
		at   time.Time
		want bool
	}{
		{"cdn.example", a1, t0, true},
		{"cdn.example", a3, t0.Add(59 * time.Second), true},
		{"cdn.example", netip.AddrFrom16(a1.As16()), t0, true}, // v4-mapped
		{"cdn.example", a2, t0, false},
		{"cdn.example", a1, t0.Add(time.Minute), false}, // expired
		{"nobody.example", a1, t0, false},
	} {
		if got := m.Has(tc.name, tc.addr, tc.at); got != tc.want {
			t.Errorf("Has(%s, %s, +%v) = %v", tc.name, tc.addr, tc.at.Sub(t0), got)
		}
	}
	if got := m.Names(a1, t0); !slices.Equal(got, []string{"other.example", "cdn.example"}) {
		t.Errorf("Names = %v", got)
	}
	if got := m.Names(a1, t0.Add(2*time.Minute)); !slices.Equal(got, []string{"other.example"}) {
		t.Errorf("Names after cdn expired = %v", got)
	}
	// A new answer replaces the old one's addresses.
	m.Saw("cdn.example", []netip.Addr{a2}, t0, t0.Add(time.Minute))
	if m.Has("cdn.example", a1, t0) || !m.Has("cdn.example", a2, t0) {
		t.Error("a new answer did not replace the old")
	}
	var nilA *Answers
	if nilA.Has("x", a1, t0) || nilA.Names(a1, t0) != nil {
		t.Error("a nil memory remembers")
	}
}

func TestAnswersBounded(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	m := NewAnswers(64)
	addr := netip.MustParseAddr("192.0.2.9")
	for i := range 1000 {
		m.Saw(fmt.Sprintf("n%d.example", i), []netip.Addr{addr}, t0, t0.Add(time.Hour))
	}
	if len(m.byName) > 64 {
		t.Fatalf("%d names remembered, max 64", len(m.byName))
	}
	if n := len(m.Names(addr, t0)); n > maxNamesPerAddr || n == 0 {
		t.Fatalf("%d names for one address", n)
	}
	if !m.Has("n999.example", addr, t0) {
		t.Fatal("the latest answer was evicted")
	}
}
