package policy

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Answers remembers, per client address, the addresses the DNS filter
// recently gave that client for names, until each answer expires, so that
// transparent gateway mode can accept a connection to an address the
// client was told for the name it names (a CDN answers each resolver
// differently: asking again may not match), and decide a connection
// without a server name on the names that led this client to its address.
// An answer given to another client counts for nothing: a device cannot
// borrow another's lookup to reach an address its own name does not have.
//
// It is bounded in total and per client. A client past its share loses
// its expired answers, then those that expire soonest, down to three
// quarters; a shard (clients hashed by address) past its share loses the
// expired answers of all its clients, then its least recently answered
// clients whole, down to three quarters. Saw of an answer already held
// (a DNS cache hit, the common case) takes a read lock and allocates
// nothing.
type Answers struct {
	shards    []answerShard
	shift     uint // 64 - log2(len(shards))
	perClient int
	perShard  int
}

type answerShard struct {
	mu      sync.RWMutex
	clients map[netip.Addr]*clientAnswers
	n       int // names held by the shard's clients
	_       [40]byte
}

// clientAnswers is one client's answers by name.
type clientAnswers struct {
	names map[string]answer
	last  atomic.Int64 // unix nanoseconds of the latest answer given
}

// answer is the latest answer a client got for a name and, while it is
// still valid, the one before (the device may still use it).
type answer struct {
	addrs     []netip.Addr // shared with Saw's caller, never modified
	until     int64        // unix nanoseconds
	prevAddrs []netip.Addr
	prevUntil int64
}

func (a *answer) has(addr netip.Addr, now int64) bool {
	return now < a.until && slices.Contains(a.addrs, addr) ||
		now < a.prevUntil && slices.Contains(a.prevAddrs, addr)
}

// maxNamesPerAddr bounds the names Names returns for one address (a
// shared CDN address can serve thousands).
const maxNamesPerAddr = 16

// answerShards is how many shards the clients are spread over.
const answerShards = 64

// NewAnswers returns an empty memory of at most total names in all, and
// at most perClient for one client.
func NewAnswers(total, perClient int) *Answers {
	n := answerShards
	for n > 1 && total/n < perClient {
		n /= 2 // a shard holds at least one full client
	}
	a := &Answers{shards: make([]answerShard, n), shift: uint(64 - bits.TrailingZeros(uint(n))),
		perClient: max(perClient, 1), perShard: max(total/n, 1)}
	for i := range a.shards {
		a.shards[i].clients = make(map[netip.Addr]*clientAnswers)
	}
	return a
}

func (a *Answers) shard(client netip.Addr) *answerShard {
	if len(a.shards) == 1 {
		return &a.shards[0]
	}
	b := client.As16()
	h := (binary.LittleEndian.Uint64(b[:8]) ^ binary.LittleEndian.Uint64(b[8:])) * 0x9e3779b97f4a7c15
	return &a.shards[h>>a.shift]
}

// Saw records that client was answered at now with addrs for name
// (normalised: lower case, no trailing dot), valid until until. Answers
// keeps addrs: the caller must not change it afterwards.
func (a *Answers) Saw(client netip.Addr, name string, addrs []netip.Addr, now, until time.Time) {
	if a == nil || len(addrs) == 0 || !until.After(now) || name == "" {
		return
	}
	client = client.Unmap()
	sh := a.shard(client)
	nowN, untilN := now.UnixNano(), until.UnixNano()
	sh.mu.RLock()
	if ca := sh.clients[client]; ca != nil {
		if old, ok := ca.names[name]; ok && old.until == untilN && slices.Equal(old.addrs, addrs) {
			ca.last.Store(nowN)
			sh.mu.RUnlock()
			return // already known: a DNS cache hit
		}
	}
	sh.mu.RUnlock()

	sh.mu.Lock()
	defer sh.mu.Unlock()
	ca := sh.clients[client]
	if ca == nil {
		ca = &clientAnswers{names: make(map[string]answer, 8)}
		sh.clients[client] = ca
	}
	ca.last.Store(nowN)
	old, known := ca.names[name]
	if !known {
		if len(ca.names) >= a.perClient {
			sh.n -= ca.evict(nowN, a.perClient*3/4)
		}
		if sh.n >= a.perShard {
			sh.evict(nowN, a.perShard*3/4, ca)
		}
		sh.n++
	}
	ans := answer{addrs: addrs, until: untilN}
	if known && !slices.Equal(old.addrs, addrs) && nowN < old.until {
		ans.prevAddrs, ans.prevUntil = old.addrs, old.until
	} else if known {
		ans.prevAddrs, ans.prevUntil = old.prevAddrs, old.prevUntil
	}
	ca.names[name] = ans
}

// evict drops ca's expired answers, then those that expire soonest, down
// to keep; it returns how many it dropped.
func (ca *clientAnswers) evict(now int64, keep int) int {
	n := len(ca.names)
	for name, ans := range ca.names {
		if now >= ans.until && now >= ans.prevUntil {
			delete(ca.names, name)
		}
	}
	if len(ca.names) > keep {
		untils := make([]int64, 0, len(ca.names))
		for _, ans := range ca.names {
			untils = append(untils, ans.until)
		}
		slices.Sort(untils)
		cut := untils[len(untils)-keep] // keep those expiring at cut or later
		for name, ans := range ca.names {
			if len(ca.names) <= keep {
				break
			}
			if ans.until < cut {
				delete(ca.names, name)
			}
		}
	}
	return n - len(ca.names)
}

// evict drops the shard's expired answers, then its least recently
// answered clients (never keepClient, who is being answered), until it
// holds at most keep names.
func (sh *answerShard) evict(now int64, keep int, keepClient *clientAnswers) {
	for addr, ca := range sh.clients {
		sh.n -= ca.evict(now, len(ca.names))
		if len(ca.names) == 0 && ca != keepClient {
			delete(sh.clients, addr)
		}
	}
	if sh.n <= keep {
		return
	}
	type idle struct {
		addr netip.Addr
		last int64
	}
	order := make([]idle, 0, len(sh.clients))
	for addr, ca := range sh.clients {
		if ca != keepClient {
			order = append(order, idle{addr, ca.last.Load()})
		}
	}
	slices.SortFunc(order, func(x, y idle) int { return int(min(max(x.last-y.last, -1), 1)) })
	for _, c := range order {
		if sh.n <= keep {
			break
		}
		sh.n -= len(sh.clients[c.addr].names)
		delete(sh.clients, c.addr)
	}
}

// Has reports whether client was answered with addr for name in an answer
// still valid at now.
func (a *Answers) Has(client netip.Addr, name string, addr netip.Addr, now time.Time) bool {
	if a == nil {
		return false
	}
	client, addr = client.Unmap(), addr.Unmap()
	sh := a.shard(client)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	ca := sh.clients[client]
	if ca == nil {
		return false
	}
	ans, ok := ca.names[name]
	return ok && ans.has(addr, now.UnixNano())
}

// Names returns the names client was answered with addr for, in answers
// still valid at now, the latest to expire first (at most
// maxNamesPerAddr).
func (a *Answers) Names(client, addr netip.Addr, now time.Time) []string {
	if a == nil {
		return nil
	}
	client, addr = client.Unmap(), addr.Unmap()
	nowN := now.UnixNano()
	type named struct {
		name  string
		until int64
	}
	var found []named
	sh := a.shard(client)
	sh.mu.RLock()
	if ca := sh.clients[client]; ca != nil {
		for name, ans := range ca.names {
			if ans.has(addr, nowN) {
				found = append(found, named{name, max(ans.until, ans.prevUntil)})
			}
		}
	}
	sh.mu.RUnlock()
	slices.SortFunc(found, func(x, y named) int {
		if x.until != y.until {
			return int(min(max(y.until-x.until, -1), 1))
		}
		if x.name < y.name {
			return -1
		}
		return 1
	})
	var out []string
	for _, f := range found[:min(len(found), maxNamesPerAddr)] {
		out = append(out, f.name)
	}
	return out
}
