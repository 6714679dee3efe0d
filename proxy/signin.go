package proxy

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Sign-in guessing (issue 19). After failLimit failed sign-ins, checks of
// a password are limited to one a second per address, and per account for
// the addresses that failed against it: an address that never failed for
// an account (the teacher's own machine) is not slowed by guessing at it
// elsewhere, so the limit cannot be used to lock anyone out. A check over
// the limit waits for its slot, up to a second ahead; past that it is
// answered 407 at once. Counts are forgotten failForget after the last
// failure, and an account's by a right password.
const (
	failLimit  = 10
	failForget = 10 * time.Minute
	checkEvery = time.Second
	maxAhead   = time.Second
	maxTracked = 100000 // accounts and addresses tracked at once
)

type slotState struct {
	fails int
	last  time.Time // the last failure
	next  time.Time // the next free check, once limited
}

func (s *slotState) limited(now time.Time) bool {
	if s == nil {
		return false
	}
	if now.Sub(s.last) > failForget {
		*s = slotState{}
	}
	return s.fails >= failLimit
}

type accountState struct {
	slotState
	from map[netip.Addr]bool // addresses that failed against the account
}

type signInLimit struct {
	mu    sync.Mutex
	users map[string]*accountState
	addrs map[netip.Addr]*slotState
}

func newSignInLimit() *signInLimit {
	return &signInLimit{users: map[string]*accountState{}, addrs: map[netip.Addr]*slotState{}}
}

// reserve returns how long a check of user's password from ip must wait,
// or ok false when its slot is more than maxAhead away.
func (l *signInLimit) reserve(user string, ip netip.Addr, now time.Time) (wait time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.addrs[ip]
	u := l.users[user]
	aLim := a.limited(now)
	uLim := u != nil && u.from[ip] && u.slotState.limited(now)
	slot := now
	if aLim && a.next.After(slot) {
		slot = a.next
	}
	if uLim && u.next.After(slot) {
		slot = u.next
	}
	if slot.Sub(now) > maxAhead {
		return 0, false
	}
	if aLim {
		a.next = slot.Add(checkEvery)
	}
	if uLim {
		u.next = slot.Add(checkEvery)
	}
	return slot.Sub(now), true
}

// record notes the outcome of a check.
func (l *signInLimit) record(user string, ip netip.Addr, ok bool, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ok {
		delete(l.users, user)
		return
	}
	if len(l.addrs) >= maxTracked || len(l.users) >= maxTracked {
		l.prune(now)
	}
	a := l.addrs[ip]
	if a == nil {
		if len(l.addrs) >= maxTracked {
			return
		}
		a = &slotState{}
		l.addrs[ip] = a
	}
	a.limited(now) // forget old failures
	a.fails++
	a.last = now
	u := l.users[user]
	if u == nil {
		if len(l.users) >= maxTracked {
			return
		}
		u = &accountState{from: map[netip.Addr]bool{}}
		l.users[user] = u
	}
	u.slotState.limited(now)
	u.fails++
	u.last = now
	if len(u.from) < 4096 {
		u.from[ip] = true
	}
}

func (l *signInLimit) prune(now time.Time) {
	for k, a := range l.addrs {
		if now.Sub(a.last) > failForget {
			delete(l.addrs, k)
		}
	}
	for k, u := range l.users {
		if now.Sub(u.last) > failForget {
			delete(l.users, k)
		}
	}
}

// waitSlot sleeps for d unless ctx ends first.
func waitSlot(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// dummyHashes holds, per bcrypt cost, a hash that no password matches in
// practice: an unknown user's password is checked against it, so that an
// unknown name costs what a known one does (no user-name oracle).
var dummyHashes sync.Map // int → []byte

func dummyHash(cost int) []byte {
	if h, ok := dummyHashes.Load(cost); ok {
		return h.([]byte)
	}
	h, err := bcrypt.GenerateFromPassword([]byte("schoolgate: no such user"), cost)
	if err != nil {
		h, _ = bcrypt.GenerateFromPassword([]byte("schoolgate: no such user"), bcrypt.DefaultCost)
	}
	dummyHashes.Store(cost, h)
	return h
}

// lastCost is the bcrypt cost of the last known user's hash checked: the
// users file's cost, which the dummy check copies.
var lastCost atomic.Int64
