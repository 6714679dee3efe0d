package policy

import (
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Answers remembers the addresses the DNS filter recently gave for names,
// until their answers expire, so that transparent gateway mode can accept
// a connection to an address the client was told for the name it names (a
// CDN answers each resolver differently: asking again may not match), and
// decide a connection without a server name on the names that led to its
// address. It is bounded: past max names, expired answers go first, then
// arbitrary ones, down to three quarters of max.
type Answers struct {
	max    int
	mu     sync.RWMutex
	byName map[string]answer
	byAddr map[netip.Addr][]string // names answered with the address, oldest first
}

type answer struct {
	addrs []netip.Addr
	until time.Time
}

// maxNamesPerAddr bounds the names remembered for one address (a shared
// CDN address can serve thousands).
const maxNamesPerAddr = 16

// NewAnswers returns an empty memory of at most max names.
func NewAnswers(max int) *Answers {
	return &Answers{max: max, byName: make(map[string]answer), byAddr: make(map[netip.Addr][]string)}
}

// Saw records that name (normalised: lower case, no trailing dot) was
// answered at now with addrs, valid until until.
func (a *Answers) Saw(name string, addrs []netip.Addr, now, until time.Time) {
	if a == nil || len(addrs) == 0 || !until.After(now) {
		return
	}
	a.mu.RLock()
	old, ok := a.byName[name]
	a.mu.RUnlock()
	if ok && !until.After(old.until) && slices.Equal(old.addrs, addrs) {
		return // already known
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.byName[name]; !ok && len(a.byName) >= a.max {
		a.evict(now)
	}
	a.byName[name] = answer{addrs: slices.Clone(addrs), until: until}
	for _, ip := range addrs {
		ip = ip.Unmap()
		ns := slices.DeleteFunc(a.byAddr[ip], func(n string) bool { return n == name })
		if len(ns) >= maxNamesPerAddr {
			ns = ns[1:]
		}
		a.byAddr[ip] = append(ns, name)
	}
}

// evict drops expired answers, then arbitrary ones down to 3/4 of max,
// and the address index's names that went with them.
func (a *Answers) evict(now time.Time) {
	for n, ans := range a.byName {
		if !now.Before(ans.until) {
			delete(a.byName, n)
		}
	}
	for n := range a.byName {
		if len(a.byName) <= a.max*3/4 {
			break
		}
		delete(a.byName, n)
	}
	for ip, ns := range a.byAddr {
		ns = slices.DeleteFunc(ns, func(n string) bool { return !a.has(n, ip, now) })
		if len(ns) == 0 {
			delete(a.byAddr, ip)
		} else {
			a.byAddr[ip] = ns
		}
	}
}

// Has reports whether name was answered with addr in an answer still
// valid at now.
func (a *Answers) Has(name string, addr netip.Addr, now time.Time) bool {
	if a == nil {
		return false
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.has(name, addr.Unmap(), now)
}

func (a *Answers) has(name string, addr netip.Addr, now time.Time) bool {
	ans, ok := a.byName[name]
	return ok && now.Before(ans.until) && slices.Contains(ans.addrs, addr)
}

// Names returns the names answered with addr in answers still valid at
// now, the most recent first.
func (a *Answers) Names(addr netip.Addr, now time.Time) []string {
	if a == nil {
		return nil
	}
	addr = addr.Unmap()
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out []string
	ns := a.byAddr[addr]
	for i := len(ns) - 1; i >= 0; i-- {
		if a.has(ns[i], addr, now) {
			out = append(out, ns[i])
		}
	}
	return out
}
