package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Sources of a name: the label values of schoolgate_identity_entries.
const (
	SourceProxyAuth = "proxy-auth"
	SourcePortal    = "portal"
	SourceRADIUS    = "radius"
	SourceAPI       = "api"
)

// Sources lists every source, in the order they are reported.
var Sources = []string{SourceProxyAuth, SourcePortal, SourceRADIUS, SourceAPI}

// FileName is the table's file in state_dir.
const FileName = "identity.json"

// DefaultMax bounds the table: far more addresses than a school has.
const DefaultMax = 1 << 16

// Entry is who is signed in at an address.
type Entry struct {
	User string `json:"user"`
	// Profile is the profile the source named for the user (a directory
	// group's), "" when the source names none: the policy then gives the
	// users file's profile, else the address's network's, else
	// default_profile (policy.Args.Profile).
	Profile string    `json:"profile,omitempty"`
	Source  string    `json:"source"`
	Since   time.Time `json:"since"`
	Until   time.Time `json:"until"`
	// End is when the sign-in ends whatever the traffic (a portal
	// sign-in's end of the day): Touch never renews Until past it. Zero:
	// no such end.
	End time.Time `json:"end,omitzero"`
}

// Options configure a Table.
type Options struct {
	// Path is the file the table is kept in ("" keeps it in memory only).
	Path string
	// Max bounds the number of addresses (DefaultMax when 0).
	Max        int
	Registerer prometheus.Registerer
	Logger     *zap.Logger
	// SaveDelay is how long after a change the file is written, so that
	// a burst of changes is one write (1s when 0).
	SaveDelay time.Duration
	// Now is the clock (time.Now when nil); tests set it.
	Now func() time.Time
}

// Table maps client addresses to who is signed in there. It is safe for
// concurrent use.
type Table struct {
	o       Options
	mu      sync.RWMutex
	m       map[netip.Addr]Entry
	changed chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	// idle is, by source (sourceIndex), how long an entry lasts after
	// the last traffic from its address (SetIdle, Touch); 0: not renewed
	// by traffic.
	idle [len(sourceNames)]atomic.Int64
}

// sourceNames are the sources by index (sourceIndex).
var sourceNames = [...]string{SourceProxyAuth, SourcePortal, SourceRADIUS, SourceAPI}

// sourceIndex is source's index in sourceNames, or -1.
func sourceIndex(source string) int {
	switch source {
	case SourceProxyAuth:
		return 0
	case SourcePortal:
		return 1
	case SourceRADIUS:
		return 2
	case SourceAPI:
		return 3
	}
	return -1
}

// New returns a table, loaded from o.Path when the file exists. A file
// that cannot be read as a table is set aside (renamed .bad) and the
// table starts empty: who is signed in is not worth refusing to start for.
func New(o Options) (*Table, error) {
	if o.Max <= 0 {
		o.Max = DefaultMax
	}
	if o.SaveDelay <= 0 {
		o.SaveDelay = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	t := &Table{o: o, m: make(map[netip.Addr]Entry), changed: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	if o.Path != "" {
		entries, err := ReadFile(o.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			o.Logger.Warn("identity table unreadable; starting empty", zap.Error(err))
			_ = os.Rename(o.Path, o.Path+".bad")
		default:
			now := o.Now()
			for ip, e := range entries {
				if e.Until.After(now) && len(t.m) < o.Max {
					t.m[ip] = e
				}
			}
		}
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(&collector{t: t}); err != nil {
			return nil, fmt.Errorf("registering identity metrics: %w", err)
		}
	}
	go t.saver()
	return t, nil
}

// canon is the form addresses are keyed by: IPv4-mapped as IPv4, no zone.
func canon(ip netip.Addr) netip.Addr {
	return ip.WithZone("").Unmap()
}

// Lookup returns who is signed in at ip at now.
func (t *Table) Lookup(ip netip.Addr, now time.Time) (Entry, bool) {
	if t == nil {
		return Entry{}, false
	}
	ip = canon(ip)
	t.mu.RLock()
	e, ok := t.m[ip]
	t.mu.RUnlock()
	if !ok || !now.Before(e.Until) {
		return Entry{}, false
	}
	return e, true
}

// SetIdle makes the entries of source last idle after the last traffic
// from their address (Touch), never past their End; 0 stops renewing
// them. A portal sign-in is renewed so (portal.idle_minutes), the
// setting in force applying to every entry of the source at its next
// renewal.
func (t *Table) SetIdle(source string, idle time.Duration) {
	if i := sourceIndex(source); i >= 0 {
		t.idle[i].Store(int64(max(idle, 0)))
	}
}

// Touch is Lookup for traffic from ip (a proxied request, a DNS query):
// an entry of a source with an idle time (SetIdle) lasts that long from
// now, up to its End. The write is skipped while the entry is nearly as
// fresh as it would become, as it runs per request.
func (t *Table) Touch(ip netip.Addr, now time.Time) (Entry, bool) {
	e, ok := t.Lookup(ip, now)
	if !ok {
		return e, false
	}
	i := sourceIndex(e.Source)
	if i < 0 {
		return e, true
	}
	idle := time.Duration(t.idle[i].Load())
	if idle <= 0 {
		return e, true
	}
	until := now.Add(idle)
	if !e.End.IsZero() && until.After(e.End) {
		until = e.End
	}
	if d := until.Sub(e.Until); d < idle/16 && d > -idle/16 {
		return e, true
	}
	ip = canon(ip)
	t.mu.Lock()
	cur, ok := t.m[ip]
	// Renewed only if it is still the sign-in looked up: one made since
	// is its own.
	renewed := ok && cur.User == e.User && cur.Source == e.Source && cur.Since.Equal(e.Since)
	if renewed {
		cur.Until = until
		t.m[ip] = cur
		e = cur
	}
	t.mu.Unlock()
	if renewed {
		t.dirty()
	}
	return e, true
}

// Set records e at ip, replacing whoever was there.
func (t *Table) Set(ip netip.Addr, e Entry) {
	ip = canon(ip)
	t.mu.Lock()
	if _, ok := t.m[ip]; !ok && len(t.m) >= t.o.Max {
		t.evictLocked(e.Since)
	}
	t.m[ip] = e
	t.mu.Unlock()
	t.dirty()
}

// Saw records a sign-in that is renewed by every request (the proxy's):
// user from source at ip, for ttl from now. It skips the write when the
// entry is already the same and fresh, as it runs per request.
func (t *Table) Saw(ip netip.Addr, user, profile, source string, ttl time.Duration, now time.Time) {
	if e, ok := t.Lookup(ip, now); ok && e.User == user && e.Source == source && e.Profile == profile &&
		e.Until.Sub(now) > ttl-ttl/16 {
		return
	}
	since := now
	if e, ok := t.Lookup(ip, now); ok && e.User == user {
		since = e.Since
	}
	t.Set(ip, Entry{User: user, Profile: profile, Source: source, Since: since, Until: now.Add(ttl)})
}

// Remove ends the sign-in at ip if it is user's ("" ends anyone's). It
// reports whether an entry was removed: a logoff that arrives after
// someone else signed in at the address leaves them signed in.
func (t *Table) Remove(ip netip.Addr, user string) bool {
	ip = canon(ip)
	t.mu.Lock()
	e, ok := t.m[ip]
	ok = ok && (user == "" || e.User == user)
	if ok {
		delete(t.m, ip)
	}
	t.mu.Unlock()
	if ok {
		t.dirty()
	}
	return ok
}

// evictLocked makes room: expired entries go, and when none had expired,
// the one that expires first.
func (t *Table) evictLocked(now time.Time) {
	var first netip.Addr
	var firstUntil time.Time
	n := len(t.m)
	for ip, e := range t.m {
		if !now.Before(e.Until) {
			delete(t.m, ip)
			continue
		}
		if !first.IsValid() || e.Until.Before(firstUntil) {
			first, firstUntil = ip, e.Until
		}
	}
	if len(t.m) == n && first.IsValid() {
		delete(t.m, first)
	}
}

// Len returns the number of live entries by source.
func (t *Table) Len(now time.Time) map[string]int {
	out := make(map[string]int, len(Sources))
	t.mu.RLock()
	for _, e := range t.m {
		if now.Before(e.Until) {
			out[e.Source]++
		}
	}
	t.mu.RUnlock()
	return out
}

func (t *Table) dirty() {
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// saver writes the file a moment after changes, and once more on Close.
func (t *Table) saver() {
	defer close(t.done)
	for {
		select {
		case <-t.stop:
			t.save()
			return
		case <-t.changed:
		}
		select {
		case <-t.stop:
			t.save()
			return
		case <-time.After(t.o.SaveDelay):
		}
		t.save()
	}
}

func (t *Table) save() {
	if t.o.Path == "" {
		return
	}
	if err := t.WriteFile(t.o.Path); err != nil {
		t.o.Logger.Error("saving the identity table", zap.Error(err))
	}
}

// Close writes the table a last time and stops its saver.
func (t *Table) Close() {
	t.once.Do(func() { close(t.stop) })
	<-t.done
}

// Run closes the table when ctx ends.
func (t *Table) Run(ctx context.Context) {
	<-ctx.Done()
	t.Close()
}

// fileEntry is one address in identity.json.
type fileEntry struct {
	IP string `json:"ip"`
	Entry
}

type file struct {
	Version int         `json:"version"`
	Entries []fileEntry `json:"entries"`
}

// WriteFile writes the table's live entries to path atomically (a
// temporary file beside it, synced, then renamed), readable by the owner
// only: it names pupils.
func (t *Table) WriteFile(path string) error {
	now := t.o.Now()
	f := file{Version: 1, Entries: []fileEntry{}}
	t.mu.RLock()
	for ip, e := range t.m {
		if now.Before(e.Until) {
			f.Entries = append(f.Entries, fileEntry{IP: ip.String(), Entry: e})
		}
	}
	t.mu.RUnlock()
	sort.Slice(f.Entries, func(i, j int) bool { return f.Entries[i].IP < f.Entries[j].IP })
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".identity-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ReadFile reads a table written by WriteFile, expired entries included.
func ReadFile(path string) (map[netip.Addr]Entry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("reading %s: version %d, want 1", path, f.Version)
	}
	out := make(map[netip.Addr]Entry, len(f.Entries))
	for _, fe := range f.Entries {
		ip, err := netip.ParseAddr(fe.IP)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		out[canon(ip)] = fe.Entry
	}
	return out, nil
}

// collector reports schoolgate_identity_entries{source} from the table
// at scrape time, so that expired entries are never counted.
type collector struct{ t *Table }

var entriesDesc = prometheus.NewDesc("schoolgate_identity_entries",
	"Addresses with a signed-in user in the identity table, by where the name came from.", []string{"source"}, nil)

func (c *collector) Describe(ch chan<- *prometheus.Desc) { ch <- entriesDesc }

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	n := c.t.Len(c.t.o.Now())
	for _, s := range Sources {
		ch <- prometheus.MustNewConstMetric(entriesDesc, prometheus.GaugeValue, float64(n[s]), s)
	}
}

// LookupFile returns who the table written at path holds for ip at now,
// for `schoolgate check -ip` (which does not run the gateway). A missing
// file holds nobody.
func LookupFile(path string, ip netip.Addr, now time.Time) (Entry, bool, error) {
	entries, err := ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	e, ok := entries[canon(ip)]
	if !ok || !now.Before(e.Until) {
		return Entry{}, false, nil
	}
	return e, true, nil
}
