package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/schoolgate/schoolgate/config"
)

// randomArgs draws requests over known and unknown hosts, URL and host-only
// targets, users, addresses (clients, non-clients, none) and times spread
// over a week, so that schedules open and close.
func randomArgs(t testing.TB, r *rand.Rand, loc *time.Location) Args {
	hosts := []string{"bet365.com", "www.bet365.com", "gmail.com", "mail.gmail.com", "outlook.com",
		"facebook.com", "khanacademy.org", "youtube.com", "music.youtube.com", "www.roblox.com",
		"www.bbc.co.uk", "bbc.co.uk", "pornhub.com", "unknown.example", "other.example",
		"127.0.0.1", "169.254.169.254", "93.184.215.14", "::1"}
	paths := []string{"", "", "/", "/iplayer", "/iplayer/episode/7", "/news", "/a?b=c"}
	users := []string{"", "", "alice", "bob", "mallory"}
	ips := []string{"", "10.20.1.1", "10.10.1.1", "10.99.9.9", "127.0.0.1", "192.168.1.1", "::ffff:10.20.3.3"}
	a := Args{
		User: users[r.IntN(len(users))],
		Host: hosts[r.IntN(len(hosts))],
		Path: paths[r.IntN(len(paths))],
		// Quarter-hour steps over a week: every boundary of the example
		// schedules falls on one.
		Time: time.Date(2026, 11, 23, 0, 0, 0, 0, loc).Add(time.Duration(r.IntN(7*24*4)) * 15 * time.Minute),
	}
	if ip := ips[r.IntN(len(ips))]; ip != "" {
		a.IP = netip.MustParseAddr(ip)
	}
	return a
}

func TestEngineMatchesSnapshot(t *testing.T) {
	loc := london(t)
	s := mustCompile(t, exampleConfig(t), testDB(t), testUsers())
	for _, size := range []int{0, 50, 100000} { // no cache, one evicting all the time, a roomy one
		t.Run(fmt.Sprint("size=", size), func(t *testing.T) {
			e := NewEngine(s, size, nil)
			r := rand.New(rand.NewPCG(1, uint64(size)))
			for i := 0; i < 20000; i++ {
				a := randomArgs(t, r, loc)
				got, want := e.Decide(a), s.Decide(a)
				if got != want {
					t.Fatalf("Engine.Decide(%+v)\n = %+v\nwant %+v", a, got, want)
				}
			}
			hits, misses, entries := e.CacheStats()
			if size == 100000 && (hits == 0 || misses == 0 || entries == 0) {
				t.Errorf("cache stats hits=%d misses=%d entries=%d: the cache was not used", hits, misses, entries)
			}
			if size > 0 && entries > size {
				t.Errorf("cache holds %d entries, more than its size %d", entries, size)
			}
		})
	}
}

func TestEngineSwap(t *testing.T) {
	cfg := exampleConfig(t)
	s1 := mustCompile(t, cfg, testDB(t), testUsers())
	e := NewEngine(s1, 1000, nil)
	a := Args{User: "bob", Host: "www.bet365.com", Time: at(t, london(t), "2026-11-24 10:00")}
	for i := 0; i < 2; i++ {
		if d := e.Decide(a); d.Verdict != Block || d.Rule != "student#2" {
			t.Fatalf("before swap: %+v", d)
		}
	}
	// The school allows gambling for students (do not try this at home).
	cfg2 := exampleConfig(t)
	p := cfg2.Profiles["student"]
	p.Rules = append([]config.Rule{{Action: "allow", Categories: []string{"gambling"}}}, p.Rules...)
	cfg2.Profiles["student"] = p
	s2 := mustCompile(t, cfg2, testDB(t), testUsers())
	e.Swap(s2)
	if e.Snapshot() != s2 {
		t.Fatalf("Snapshot() is not the swapped-in snapshot")
	}
	if d := e.Decide(a); d.Verdict != Allow || d.Rule != "student#1" {
		t.Errorf("after swap: %+v, want allow by student#1", d)
	}
	// Swapping back must not serve the second snapshot's verdict either,
	// and a rebuilt copy of the first config gets a new generation.
	s3 := mustCompile(t, cfg, testDB(t), testUsers())
	e.Swap(s3)
	if d := e.Decide(a); d.Verdict != Block || d.Rule != "student#2" {
		t.Errorf("after second swap: %+v, want block by student#2", d)
	}
	e.Swap(nil) // ignored
	if e.Snapshot() != s3 {
		t.Errorf("Swap(nil) replaced the snapshot")
	}
}

func TestEngineScheduleBoundary(t *testing.T) {
	loc := london(t)
	e := NewEngine(mustCompile(t, exampleConfig(t), testDB(t), testUsers()), 1000, nil)
	tests := []struct {
		when string
		rule string
	}{
		{"2026-11-24 12:14", "staff#4"},
		{"2026-11-24 12:14", "staff#4"}, // a hit
		{"2026-11-24 12:15", "staff#2"},
		{"2026-11-24 13:14", "staff#2"}, // a hit: same schedules open
		{"2026-11-24 13:15", "staff#4"}, // a hit on the 12:14 entry, which is right
		{"2026-11-24 15:30", "staff#3"},
		{"2026-11-28 09:00", "staff#3"}, // a hit: Saturday, no schedule open
	}
	for _, tc := range tests {
		a := Args{User: "alice", Host: "gmail.com", Time: at(t, loc, tc.when)}
		if d := e.Decide(a); d.Rule != tc.rule {
			t.Errorf("at %s: rule %s (%s), want %s", tc.when, d.Rule, d.Reason, tc.rule)
		}
	}
	if hits, misses, _ := e.CacheStats(); hits != 4 || misses != 3 {
		t.Errorf("hits=%d misses=%d, want 4 and 3", hits, misses)
	}
}

func TestEngineKeys(t *testing.T) {
	loc := london(t)
	e := NewEngine(mustCompile(t, exampleConfig(t), testDB(t), testUsers()), 1000, nil)
	tue := at(t, loc, "2026-11-24 10:00")
	decide := func(user, ip, host, path string) Decision {
		a := Args{User: user, Host: host, Path: path, Time: tue}
		if ip != "" {
			a.IP = netip.MustParseAddr(ip)
		}
		return e.Decide(a)
	}
	// A host with URL entries keys on the path too.
	if d := decide("bob", "", "www.bbc.co.uk", "/iplayer/x"); d.Verdict != Block {
		t.Errorf("iplayer: %+v", d)
	}
	if d := decide("bob", "", "www.bbc.co.uk", "/news"); d.Verdict != Allow {
		t.Errorf("news: %+v", d)
	}
	if d := decide("bob", "", "www.bbc.co.uk", "/iplayer/y"); d.Verdict != Block {
		t.Errorf("iplayer again: %+v", d)
	}
	// A host without URL entries keys on the host alone: many URLs, one entry.
	_, _, before := e.CacheStats()
	for i := 0; i < 100; i++ {
		if d := decide("bob", "", "mail.gmail.com", fmt.Sprintf("/mail/u/%d", i)); d.Rule != "student#2" {
			t.Fatalf("gmail: %+v", d)
		}
	}
	if _, _, after := e.CacheStats(); after != before+1 {
		t.Errorf("100 paths on one host made %d entries, want 1", after-before)
	}
	// Profiles do not share entries.
	if d := decide("alice", "", "mail.gmail.com", ""); d.Rule != "staff#4" {
		t.Errorf("alice gmail: %+v", d)
	}
	// The system checks run before the cache: an allowed, cached verdict is
	// not served to an address outside clients.
	if d := decide("", "10.10.1.1", "khanacademy.org", ""); d.Verdict != Allow {
		t.Errorf("client: %+v", d)
	}
	if d := decide("", "192.168.7.7", "khanacademy.org", ""); d.Rule != RuleNotAClient {
		t.Errorf("non-client: %+v", d)
	}
	if d := decide("", "10.10.1.1", "169.254.169.254", ""); d.Rule != RuleDenyDestinations {
		t.Errorf("metadata: %+v", d)
	}
}

func TestEngineNoAllocOnHit(t *testing.T) {
	e := NewEngine(mustCompile(t, exampleConfig(t), testDB(t), testUsers()), 1000, nil)
	args := []Args{
		{User: "alice", IP: netip.MustParseAddr("10.20.1.1"), Host: "mail.gmail.com", Path: "/mail/u/0", Time: at(t, london(t), "2026-11-24 12:30")},
		{IP: netip.MustParseAddr("10.10.1.1"), Host: "www.bbc.co.uk", Path: "/iplayer/live", Time: at(t, london(t), "2026-11-24 10:00")},
		{Host: "unknown.example", Time: at(t, london(t), "2026-11-24 10:00")},
	}
	for _, a := range args {
		e.Decide(a)
		if n := testing.AllocsPerRun(200, func() { e.Decide(a) }); n != 0 {
			t.Errorf("cached Decide(%s%s) allocates %.1f times", a.Host, a.Path, n)
		}
	}
}

func TestEngineMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := NewEngine(mustCompile(t, exampleConfig(t), testDB(t), testUsers()), 1000, reg)
	tue := at(t, london(t), "2026-11-24 10:00")
	e.Decide(Args{User: "bob", Host: "bet365.com", Time: tue})
	e.Decide(Args{User: "bob", Host: "bet365.com", Time: tue})
	e.Decide(Args{User: "bob", Host: "khanacademy.org", Time: tue})
	e.Decide(Args{IP: netip.MustParseAddr("192.168.0.1"), Host: "khanacademy.org", Time: tue})
	// A second engine on the same registry must not panic.
	NewEngine(e.Snapshot(), 10, reg)

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			name := mf.GetName()
			if len(ls) > 0 {
				name += "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				got[name] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				got[name] = m.GetGauge().GetValue()
			}
		}
	}
	want := map[string]float64{
		"schoolgate_policy_verdict_cache_hits_total":         1,
		"schoolgate_policy_verdict_cache_misses_total":       2,
		"schoolgate_policy_verdict_cache_entries":            2,
		`schoolgate_policy_decisions_total{verdict="allow"}`: 1,
		`schoolgate_policy_decisions_total{verdict="block"}`: 3,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

// Deciding while reloading: run with -race.
func TestEngineConcurrentSwap(t *testing.T) {
	loc := london(t)
	cfg := exampleConfig(t)
	db := testDB(t)
	e := NewEngine(mustCompile(t, cfg, db, testUsers()), 500, prometheus.NewRegistry())
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				a := randomArgs(t, r, loc)
				// All snapshots compile the same config: any of them must
				// give the same decision.
				if got, want := e.Decide(a), e.Snapshot().Decide(a); got != want {
					t.Errorf("Decide(%+v) = %+v, want %+v", a, got, want)
					return
				}
			}
		}(g)
	}
	for i := 0; i < 20; i++ {
		e.Swap(mustCompile(t, cfg, db, testUsers()))
		time.Sleep(2 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
}

// Two keys with one hash: the stored key is compared, so the other key's
// verdict is never served.
func TestEngineHashCollision(t *testing.T) {
	s := mustCompile(t, exampleConfig(t), testDB(t), testUsers())
	e := NewEngine(s, 1000, nil)
	a := Args{User: "bob", Host: "bet365.com", Time: at(t, london(t), "2026-11-24 10:00")}
	pi := s.profileIndex(a.User, "", a.IP)
	key := cacheKey{gen: s.Gen, mask: s.openMask(a.Time) & s.profiles[pi].schedMask, profile: pi, host: a.Host}
	h := e.hash(&key)
	other := key
	other.host = "khanacademy.org"
	bogus := Decision{Profile: "student", Verdict: Allow, Rule: "student#1", Reason: "planted"}
	sh := e.cache.Shard(h)
	sh.Lock()
	sh.LRU.Add(h, cacheEntry{key: other, d: bogus})
	sh.Unlock()
	if d := e.Decide(a); d != s.Decide(a) {
		t.Errorf("Decide = %+v, want %+v (the colliding entry was served)", d, s.Decide(a))
	}
	if d := e.Decide(a); d.Rule != "student#2" {
		t.Errorf("second Decide = %+v", d)
	}
	if hits, _, _ := e.CacheStats(); hits != 1 {
		t.Errorf("hits = %d, want 1 (the second call, on the replaced entry)", hits)
	}
}

// FuzzDecide: whatever the host and path (normalised or not), Decide does
// not panic, and the engine agrees with the snapshot, twice (miss, hit).
func FuzzDecide(f *testing.F) {
	for _, s := range [][2]string{{"www.bet365.com", ""}, {"www.bbc.co.uk", "/iplayer/x"}, {"", ""},
		{"127.0.0.1", "/"}, {"::1", ""}, {"..", "//"}, {"a.b.c.d.e.f", "?q"}, {"1.2.3.4.5", ""}, {"\xff.example", "\x00"}} {
		f.Add(s[0], s[1], "bob", 3)
	}
	s := mustCompile(f, exampleConfig(f), testDB(f), testUsers())
	e := NewEngine(s, 64, nil)
	loc := london(f)
	ips := []string{"", "10.20.1.1", "192.168.1.1", "fe80::1%eth0"}
	f.Fuzz(func(t *testing.T, host, path, user string, n int) {
		a := Args{User: user, Host: host, Path: path,
			Time: time.Date(2026, 11, 23, 0, 0, 0, 0, loc).Add(time.Duration(n%(7*24*60)) * time.Minute)}
		if ip := ips[(n%len(ips)+len(ips))%len(ips)]; ip != "" {
			a.IP = netip.MustParseAddr(ip)
		}
		want := s.Decide(a)
		for i := 0; i < 2; i++ {
			if got := e.Decide(a); got != want {
				t.Fatalf("Engine.Decide(%+v) = %+v, want %+v", a, got, want)
			}
		}
	})
}

// TestEngineMemoMatchesSnapshot: a memo per host, shared by every user,
// address and time of day and kept across reloads (to the same config
// rebuilt, and to one that allows gambling), gives what the snapshot in
// force decides, every time.
func TestEngineMemoMatchesSnapshot(t *testing.T) {
	loc := london(t)
	cfg2 := exampleConfig(t)
	p := cfg2.Profiles["student"]
	p.Rules = append([]config.Rule{{Action: "allow", Categories: []string{"gambling"}}}, p.Rules...)
	cfg2.Profiles["student"] = p
	snaps := []*Snapshot{
		mustCompile(t, exampleConfig(t), testDB(t), testUsers()),
		mustCompile(t, cfg2, testDB(t), testUsers()),
		mustCompile(t, exampleConfig(t), testDB(t), testUsers()),
	}
	for _, size := range []int{0, 50, 100000} {
		t.Run(fmt.Sprint("size=", size), func(t *testing.T) {
			e := NewEngine(snaps[0], size, nil)
			memos := map[string]*Memo{}
			r := rand.New(rand.NewPCG(2, uint64(size)))
			for i := 0; i < 30000; i++ {
				if i%1000 == 999 {
					e.Swap(snaps[r.IntN(len(snaps))])
				}
				a := randomArgs(t, r, loc)
				m := memos[a.Host]
				if m == nil {
					m = new(Memo)
					memos[a.Host] = m
				}
				got, want := e.DecideMemo(a, m), e.Snapshot().Decide(a)
				if got != want {
					t.Fatalf("Engine.DecideMemo(%+v)\n = %+v\nwant %+v", a, got, want)
				}
			}
		})
	}
}

// TestEngineMemoStale: a memo filled by one verdict is not used after a
// reload, across a schedule boundary or for another profile, and is used
// (a hit, without the cache) for the same question.
func TestEngineMemoStale(t *testing.T) {
	loc := london(t)
	cfg := exampleConfig(t)
	e := NewEngine(mustCompile(t, cfg, testDB(t), testUsers()), 1000, nil)
	var m Memo
	check := func(a Args, rule string) {
		t.Helper()
		if d := e.DecideMemo(a, &m); d.Rule != rule || d != e.Snapshot().Decide(a) {
			t.Errorf("%+v: rule %s (%s), want %s, as the snapshot decides", a, d.Rule, d.Reason, rule)
		}
	}
	// A schedule boundary (as TestEngineScheduleBoundary).
	alice := Args{User: "alice", Host: "gmail.com", Time: at(t, loc, "2026-11-24 12:14")}
	check(alice, "staff#4")
	e.cache.Purge() // from here a hit can only come from the memo
	check(alice, "staff#4")
	if hits, misses, _ := e.CacheStats(); hits != 1 || misses != 1 {
		t.Errorf("hits=%d misses=%d, want 1 and 1: the memo was not used", hits, misses)
	}
	alice.Time = at(t, loc, "2026-11-24 12:15")
	check(alice, "staff#2")
	// Another profile, the same name and time.
	check(Args{User: "bob", Host: "gmail.com", Time: alice.Time}, "student#2")
	// A reload that changes the verdict.
	bob := Args{User: "bob", Host: "www.bet365.com", Time: at(t, loc, "2026-11-24 10:00")}
	check(bob, "student#2")
	cfg2 := exampleConfig(t)
	p := cfg2.Profiles["student"]
	p.Rules = append([]config.Rule{{Action: "allow", Categories: []string{"gambling"}}}, p.Rules...)
	cfg2.Profiles["student"] = p
	e.Swap(mustCompile(t, cfg2, testDB(t), testUsers()))
	check(bob, "student#1")
	// And a reload to a snapshot that decides the same is a miss too.
	e.Swap(mustCompile(t, cfg, testDB(t), testUsers()))
	hits, misses, _ := e.CacheStats()
	check(bob, "student#2")
	if h, m, _ := e.CacheStats(); h != hits || m != misses+1 {
		t.Errorf("after a reload: hits %d->%d, misses %d->%d; want a miss", hits, h, misses, m)
	}
}
