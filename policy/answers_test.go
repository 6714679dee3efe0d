package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestAnswers(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	a1, a2, a3 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::3")
	alice, bob := netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("10.0.0.6")
	m := NewAnswers(1000, 100)
	m.Saw(alice, "cdn.example", []netip.Addr{a1, a3}, t0, t0.Add(time.Minute))
	m.Saw(alice, "other.example", []netip.Addr{a1}, t0, t0.Add(time.Hour))
	m.Saw(bob, "bob.example", []netip.Addr{a2}, t0, t0.Add(time.Hour))
	for _, tc := range []struct {
		client netip.Addr
		name   string
		addr   netip.Addr
		at     time.Time
		want   bool
	}{
		{alice, "cdn.example", a1, t0, true},
		{alice, "cdn.example", a3, t0.Add(59 * time.Second), true},
		{alice, "cdn.example", netip.AddrFrom16(a1.As16()), t0, true},                           // v4-mapped address
		{netip.AddrFrom16(alice.As16()), "cdn.example", a1, t0, true},                           // v4-mapped client
		{alice, "cdn.example", a2, t0, false},                                                   // not in the answer
		{alice, "cdn.example", a1, t0.Add(time.Minute), false},                                  // expired
		{alice, "nobody.example", a1, t0, false},                                                // never asked
		{bob, "cdn.example", a1, t0, false},                                                     // alice's answer, not bob's
		{alice, "bob.example", a2, t0, false},                                                   // bob's answer, not alice's
		{netip.MustParseAddr("10.0.0.7"), "cdn.example", a1, t0, false},                         // a stranger
		{bob, "bob.example", a2, t0.Add(30 * time.Minute), true},                                //
		{bob, "bob.example", netip.MustParseAddr("192.0.2.200"), t0, false},                     //
		{netip.MustParseAddr("2001:db8:1::5"), "bob.example", a2, t0, false},                    //
		{netip.MustParseAddr("10.0.0.6"), "bob.example", netip.AddrFrom16(a2.As16()), t0, true}, //
	} {
		if got := m.Has(tc.client, tc.name, tc.addr, tc.at); got != tc.want {
			t.Errorf("Has(%s, %s, %s, +%v) = %v", tc.client, tc.name, tc.addr, tc.at.Sub(t0), got)
		}
	}
	if got := m.Names(alice, a1, t0); !slices.Equal(got, []string{"other.example", "cdn.example"}) {
		t.Errorf("Names(alice) = %v", got)
	}
	if got := m.Names(bob, a1, t0); got != nil {
		t.Errorf("Names(bob) of alice's address = %v", got)
	}
	if got := m.Names(alice, a1, t0.Add(2*time.Minute)); !slices.Equal(got, []string{"other.example"}) {
		t.Errorf("Names after cdn expired = %v", got)
	}
	// A new answer: the old one still holds until it expires (the
	// device may still use it), then only the new one.
	m.Saw(alice, "cdn.example", []netip.Addr{a2}, t0.Add(30*time.Second), t0.Add(2*time.Minute))
	if !m.Has(alice, "cdn.example", a1, t0.Add(40*time.Second)) || !m.Has(alice, "cdn.example", a2, t0.Add(40*time.Second)) {
		t.Error("a new answer dropped the old one before it expired")
	}
	if m.Has(alice, "cdn.example", a1, t0.Add(90*time.Second)) || !m.Has(alice, "cdn.example", a2, t0.Add(90*time.Second)) {
		t.Error("the old answer outlived its TTL")
	}
	var nilA *Answers
	nilA.Saw(alice, "x", []netip.Addr{a1}, t0, t0.Add(time.Hour))
	if nilA.Has(alice, "x", a1, t0) || nilA.Names(alice, a1, t0) != nil {
		t.Error("a nil memory remembers")
	}
	m.Saw(alice, "zero.example", []netip.Addr{a1}, t0, t0) // TTL 0: never held
	if m.Has(alice, "zero.example", a1, t0) {
		t.Error("an answer with no time to live was held")
	}
}

// TestAnswersBounded: one client cannot hold more than its share, and
// the whole memory holds at most its total however many clients ask;
// each evicts what expired first and keeps the latest answer.
func TestAnswersBounded(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	addr := netip.MustParseAddr("192.0.2.9")
	held := func(m *Answers) (names, clients int) {
		for i := range m.shards {
			sh := &m.shards[i]
			n := 0
			for _, ca := range sh.clients {
				n += len(ca.names)
			}
			if n != sh.n {
				t.Fatalf("shard %d counts %d names, holds %d", i, sh.n, n)
			}
			names += n
			clients += len(sh.clients)
		}
		return names, clients
	}

	t.Run("per client", func(t *testing.T) {
		m := NewAnswers(1<<14, 64)
		client := netip.MustParseAddr("10.0.0.5")
		m.Saw(client, "short.example", []netip.Addr{addr}, t0, t0.Add(time.Second))
		for i := range 1000 {
			m.Saw(client, fmt.Sprintf("n%d.example", i), []netip.Addr{addr}, t0.Add(2*time.Second), t0.Add(time.Hour+time.Duration(i)*time.Second))
		}
		if n, _ := held(m); n > 64 {
			t.Fatalf("%d names held for one client, max 64", n)
		}
		if !m.Has(client, "n999.example", addr, t0.Add(3*time.Second)) {
			t.Fatal("the latest answer was evicted")
		}
		if n := len(m.Names(client, addr, t0.Add(3*time.Second))); n != maxNamesPerAddr {
			t.Fatalf("%d names for one address, want %d", n, maxNamesPerAddr)
		}
	})

	t.Run("in total", func(t *testing.T) {
		m := NewAnswers(1024, 16)
		for c := range 2000 {
			client := netip.AddrFrom4([4]byte{10, 1, byte(c >> 8), byte(c)})
			for i := range 8 {
				now := t0.Add(time.Duration(c) * time.Millisecond)
				m.Saw(client, fmt.Sprintf("n%d.example", i), []netip.Addr{addr}, now, now.Add(time.Hour))
			}
		}
		names, clients := held(m)
		if names > 1024 {
			t.Fatalf("%d names held, max 1024", names)
		}
		if names < 1024/2 {
			t.Fatalf("only %d names held of 1024: evicting too much", names)
		}
		last := netip.AddrFrom4([4]byte{10, 1, byte(1999 >> 8), byte(1999 & 0xff)})
		if !m.Has(last, "n7.example", addr, t0.Add(2*time.Second)) {
			t.Fatal("the most recent client's answer was evicted")
		}
		t.Logf("%d names of %d clients held", names, clients)
	})
}

// TestAnswersConcurrent runs Saw, Has and Names at once (for -race).
func TestAnswersConcurrent(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	m := NewAnswers(256, 32)
	var done atomic.Int32
	for w := range 4 {
		go func() {
			defer done.Add(1)
			for i := range 2000 {
				client := netip.AddrFrom4([4]byte{10, 0, byte(w), byte(i % 50)})
				addr := netip.AddrFrom4([4]byte{192, 0, 2, byte(i % 7)})
				name := fmt.Sprintf("n%d.example", i%40)
				m.Saw(client, name, []netip.Addr{addr}, t0, t0.Add(time.Duration(i%5+1)*time.Minute))
				m.Has(client, name, addr, t0)
				m.Names(client, addr, t0)
			}
		}()
	}
	for done.Load() < 4 {
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkAnswersSawKnown is the DNS filter's cache hit in transparent
// mode: an answer the client already holds. It allocates nothing.
func BenchmarkAnswersSawKnown(b *testing.B) {
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	m := NewAnswers(1<<18, 1024)
	addrs := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")}
	var clients [256]netip.Addr
	for i := range clients {
		clients[i] = netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})
		m.Saw(clients[i], "www.example.com", addrs, t0, t0.Add(time.Hour))
	}
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Uint32
	b.RunParallel(func(pb *testing.PB) {
		i := next.Add(1)
		for pb.Next() {
			i++
			m.Saw(clients[i%256], "www.example.com", addrs, t0, t0.Add(time.Hour))
		}
	})
}

// BenchmarkAnswersHas is the transparent proxy's destination check.
func BenchmarkAnswersHas(b *testing.B) {
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	m := NewAnswers(1<<18, 1024)
	client := netip.MustParseAddr("10.0.0.5")
	addr := netip.MustParseAddr("192.0.2.1")
	for i := range 500 {
		m.Saw(client, fmt.Sprintf("n%d.example", i), []netip.Addr{addr}, t0, t0.Add(time.Hour))
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !m.Has(client, "n250.example", addr, t0) {
				b.Fatal("missing")
			}
		}
	})
}

// BenchmarkAnswersSawNew is a client's first answer for a name, past its
// share (evicting as it goes).
func BenchmarkAnswersSawNew(b *testing.B) {
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	m := NewAnswers(1<<18, 1024)
	addrs := []netip.Addr{netip.MustParseAddr("192.0.2.1")}
	names := make([]string, 4096)
	for i := range names {
		names[i] = fmt.Sprintf("n%d.example", i)
	}
	client := netip.MustParseAddr("10.0.0.5")
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		m.Saw(client, names[i%len(names)], addrs, t0, t0.Add(time.Hour+time.Duration(i)))
	}
}
