package identity

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func newTable(t *testing.T, o Options) *Table {
	t.Helper()
	tb, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tb.Close)
	return tb
}

// TestSurvivesRestart: a table closed (as serve does at stop) and opened
// again from the same file holds the same live entries; expired ones are
// gone, and check's LookupFile reads the same.
func TestSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", FileName)
	now := time.Now()
	a, err := New(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	alice := Entry{User: "alice", Source: SourceRADIUS, Since: now.Add(-time.Minute), Until: now.Add(time.Hour)}
	a.Set(netip.MustParseAddr("10.0.0.5"), alice)
	a.Set(netip.MustParseAddr("::ffff:10.0.0.6"), Entry{User: "bob", Profile: "staff", Source: SourceAPI, Since: now, Until: now.Add(time.Hour)})
	a.Set(netip.MustParseAddr("10.0.0.7"), Entry{User: "gone", Source: SourceAPI, Since: now, Until: now.Add(-time.Second)})
	a.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 (the file names pupils)", st.Mode().Perm())
	}

	b := newTable(t, Options{Path: path})
	got, ok := b.Lookup(netip.MustParseAddr("10.0.0.5"), now)
	if !ok || got.User != "alice" || got.Source != SourceRADIUS || !got.Until.Equal(alice.Until) || !got.Since.Equal(alice.Since) {
		t.Errorf("after restart 10.0.0.5 = %+v %v, want %+v", got, ok, alice)
	}
	// Mapped and plain IPv4 are one address.
	if got, ok := b.Lookup(netip.MustParseAddr("10.0.0.6"), now); !ok || got.User != "bob" || got.Profile != "staff" {
		t.Errorf("after restart 10.0.0.6 = %+v %v, want bob/staff", got, ok)
	}
	if _, ok := b.Lookup(netip.MustParseAddr("10.0.0.7"), now); ok {
		t.Error("an expired entry came back")
	}
	if e, ok, err := LookupFile(path, netip.MustParseAddr("10.0.0.5"), now); err != nil || !ok || e.User != "alice" {
		t.Errorf("LookupFile = %+v %v %v", e, ok, err)
	}
	if _, ok, err := LookupFile(filepath.Join(t.TempDir(), FileName), netip.MustParseAddr("10.0.0.5"), now); ok || err != nil {
		t.Errorf("missing file: %v %v, want nobody and no error", ok, err)
	}
}

// TestWrittenAsItChanges: the file follows changes without a Close (a
// crash keeps who was signed in a moment before).
func TestWrittenAsItChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	tb := newTable(t, Options{Path: path, SaveDelay: 10 * time.Millisecond})
	now := time.Now()
	ip := netip.MustParseAddr("10.0.0.9")
	tb.Set(ip, Entry{User: "carol", Source: SourceAPI, Since: now, Until: now.Add(time.Hour)})
	waitFor(t, func() bool { _, ok, _ := LookupFile(path, ip, now); return ok })
	tb.Remove(ip, "carol")
	waitFor(t, func() bool { _, ok, _ := LookupFile(path, ip, now); return !ok })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met in 5s")
}

func TestBadFileSetAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	tb := newTable(t, Options{Path: path})
	if n := tb.Len(time.Now()); len(n) != 0 {
		t.Errorf("entries %v, want none", n)
	}
	if _, err := os.Stat(path + ".bad"); err != nil {
		t.Errorf("bad file not set aside: %v", err)
	}
	if _, _, err := LookupFile(path+".bad", netip.MustParseAddr("10.0.0.1"), time.Now()); err == nil {
		t.Error("LookupFile of a bad file: no error")
	}
}

// TestRemoveOnlyItsUser: a logoff or Stop for someone who is no longer
// signed in at the address leaves the one who is.
func TestRemoveOnlyItsUser(t *testing.T) {
	tb := newTable(t, Options{})
	ip, now := netip.MustParseAddr("10.0.0.5"), time.Now()
	tb.Set(ip, Entry{User: "dave", Source: SourceRADIUS, Since: now, Until: now.Add(time.Hour)})
	if tb.Remove(ip, "erin") {
		t.Error("removed dave for erin's logoff")
	}
	if !tb.Remove(ip, "dave") {
		t.Error("dave's logoff removed nothing")
	}
	if _, ok := tb.Lookup(ip, now); ok {
		t.Error("dave still signed in")
	}
}

func TestBounded(t *testing.T) {
	tb := newTable(t, Options{Max: 3})
	now := time.Now()
	for i := 1; i <= 5; i++ {
		tb.Set(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}),
			Entry{User: "u", Source: SourceAPI, Since: now, Until: now.Add(time.Duration(i) * time.Minute)})
	}
	if n := tb.Len(now)[SourceAPI]; n != 3 {
		t.Fatalf("entries %d, want 3", n)
	}
	// The ones that would have expired first went.
	for i, want := range []bool{false, false, true, true, true} {
		if _, ok := tb.Lookup(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), now); ok != want {
			t.Errorf("10.0.0.%d present = %v, want %v", i+1, ok, want)
		}
	}
}

func TestSawRenews(t *testing.T) {
	tb := newTable(t, Options{})
	ip, now := netip.MustParseAddr("10.0.0.5"), time.Now()
	tb.Saw(ip, "alice", "", SourceProxyAuth, 15*time.Minute, now)
	later := now.Add(10 * time.Minute)
	tb.Saw(ip, "alice", "", SourceProxyAuth, 15*time.Minute, later)
	e, ok := tb.Lookup(ip, now.Add(20*time.Minute))
	if !ok || !e.Since.Equal(now) || !e.Until.Equal(later.Add(15*time.Minute)) {
		t.Errorf("entry %+v %v, want since the first sign-in, until 15m after the last", e, ok)
	}
	if _, ok := tb.Lookup(ip, later.Add(15*time.Minute)); ok {
		t.Error("entry outlived its ttl")
	}
}

func TestEntriesMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	tb := newTable(t, Options{Registerer: reg})
	now := time.Now()
	tb.Set(netip.MustParseAddr("10.0.0.1"), Entry{User: "a", Source: SourceRADIUS, Since: now, Until: now.Add(time.Hour)})
	tb.Set(netip.MustParseAddr("10.0.0.2"), Entry{User: "b", Source: SourceRADIUS, Since: now, Until: now.Add(time.Hour)})
	tb.Set(netip.MustParseAddr("10.0.0.3"), Entry{User: "c", Source: SourceAPI, Since: now, Until: now.Add(-time.Second)})
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "schoolgate_identity_entries" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{"api": 0, "portal": 0, "proxy-auth": 0, "radius": 2}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("schoolgate_identity_entries = %v, want %v", got, want)
	}
}

// TestTouchRenewsIdle: traffic renews an entry of a source with an idle
// time, never past its End; entries of other sources and ones without
// traffic run out; the renewed entry survives a restart.
func TestTouchRenewsIdle(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	now := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	clock := now
	tb, err := New(Options{Path: path, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	const idle = 30 * time.Minute
	tb.SetIdle(SourcePortal, idle)
	end := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	pupil, quiet, radius := netip.MustParseAddr("10.20.0.5"), netip.MustParseAddr("10.20.0.6"), netip.MustParseAddr("10.20.0.7")
	tb.Set(pupil, Entry{User: "pupil", Source: SourcePortal, Since: now, Until: now.Add(idle), End: end})
	tb.Set(quiet, Entry{User: "quiet", Source: SourcePortal, Since: now, Until: now.Add(idle), End: end})
	tb.Set(radius, Entry{User: "wifi", Source: SourceRADIUS, Since: now, Until: now.Add(idle)})

	// Traffic every 20 minutes keeps pupil signed in for hours, up to the end of the day.
	for at := now.Add(20 * time.Minute); at.Before(end.Add(time.Hour)); at = at.Add(20 * time.Minute) {
		e, ok := tb.Touch(pupil, at)
		if want := at.Before(end); ok != want {
			t.Fatalf("at %v: signed in %v, want %v", at, ok, want)
		}
		if ok && e.Until.After(end) {
			t.Fatalf("renewed past the end of the day: %v", e.Until)
		}
		if e, ok := tb.Touch(radius, at); ok && !e.Until.Equal(now.Add(idle)) || ok != at.Before(now.Add(idle)) {
			t.Fatalf("at %v: a radius entry was renewed by traffic: %+v %v", at, e, ok)
		}
	}
	if _, ok := tb.Lookup(quiet, now.Add(idle)); ok {
		t.Error("an entry without traffic outlived its idle time")
	}
	if e, ok := tb.Lookup(quiet, now.Add(idle-time.Second)); !ok || e.User != "quiet" {
		t.Error("an entry without traffic ended early")
	}

	// Renewed, the file holds the new until: a restart keeps it.
	clock = now.Add(time.Hour)
	tb.Set(pupil, Entry{User: "pupil", Source: SourcePortal, Since: clock, Until: clock.Add(time.Minute), End: end})
	renewed, ok := tb.Touch(pupil, clock)
	if !ok || !renewed.Until.Equal(clock.Add(idle)) {
		t.Fatalf("Touch = %+v %v, want until %v", renewed, ok, clock.Add(idle))
	}
	tb.Close()
	again := newTable(t, Options{Path: path, Now: func() time.Time { return clock }})
	if e, ok := again.Lookup(pupil, clock.Add(idle-time.Second)); !ok || !e.End.Equal(end) || !e.Until.Equal(clock.Add(idle)) {
		t.Errorf("after restart %+v %v", e, ok)
	}

	// A shorter idle time (a reload) applies at the next renewal.
	again.SetIdle(SourcePortal, 5*time.Minute)
	if e, _ := again.Touch(pupil, clock); !e.Until.Equal(clock.Add(5 * time.Minute)) {
		t.Errorf("after a shorter idle: until %v, want %v", e.Until, clock.Add(5*time.Minute))
	}
	again.SetIdle(SourcePortal, 0)
	if e, _ := again.Touch(pupil, clock.Add(time.Minute)); !e.Until.Equal(clock.Add(5 * time.Minute)) {
		t.Errorf("idle 0 still renews: until %v", e.Until)
	}
}
