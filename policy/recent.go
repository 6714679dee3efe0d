package policy

import (
	"net/netip"
	"sync"
	"time"
)

// RecentUsers remembers which user the proxy last authenticated from each
// client address, so that the DNS filter can name the user in its log
// lines. Entries older than the TTL are not returned.
type RecentUsers struct {
	ttl time.Duration
	mu  sync.RWMutex
	m   map[netip.Addr]recentUser
}

type recentUser struct {
	name string
	seen time.Time
}

// NewRecentUsers returns an empty table whose entries last ttl.
func NewRecentUsers(ttl time.Duration) *RecentUsers {
	return &RecentUsers{ttl: ttl, m: make(map[netip.Addr]recentUser)}
}

// Saw records that user authenticated from ip at now.
func (r *RecentUsers) Saw(ip netip.Addr, user string, now time.Time) {
	r.mu.RLock()
	old, ok := r.m[ip]
	r.mu.RUnlock()
	// Skip the write lock when the entry is fresh enough: this runs per request.
	if ok && old.name == user && now.Sub(old.seen) < r.ttl/16 {
		return
	}
	r.mu.Lock()
	r.m[ip] = recentUser{name: user, seen: now}
	if len(r.m) > 1<<16 {
		for k, v := range r.m {
			if now.Sub(v.seen) >= r.ttl {
				delete(r.m, k)
			}
		}
	}
	r.mu.Unlock()
}

// Lookup returns the user last seen from ip, if within the TTL.
func (r *RecentUsers) Lookup(ip netip.Addr, now time.Time) string {
	r.mu.RLock()
	u, ok := r.m[ip]
	r.mu.RUnlock()
	if !ok || now.Sub(u.seen) >= r.ttl {
		return ""
	}
	return u.name
}
