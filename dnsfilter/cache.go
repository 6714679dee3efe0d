package dnsfilter

import (
	"encoding/binary"
	"errors"
	"hash/maphash"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/schoolgate/schoolgate/internal/shardlru"
	"github.com/schoolgate/schoolgate/policy"
)

// How long answers are kept. Clients always get the TTL the upstream gave
// (capped at maxTTL), counting down; the cache may keep an answer longer
// than that, up to minTTL, so that a zero-TTL name does not send every
// query upstream (the client then gets TTL 0). The cap keeps a bad
// record from sticking.
const (
	minTTL = 10
	maxTTL = 3600
)

// The answer cache's shards: as many as keep 64 entries each, at most 64.
const (
	cacheMaxShards   = 64
	cacheMinPerShard = 64
)

// cacheKey identifies a cached answer. The name is lower case with its
// trailing dot. DO and CD change what an upstream returns, so they are
// part of the key.
type cacheKey struct {
	name   string
	qtype  uint16
	qclass uint16
	do, cd bool
}

// entry is a cached answer in wire form: a packed response without OPT
// record, with TTLs clamped, plus the offsets of every TTL so that a hit
// can decrement them in place on a copy without unpacking.
type entry struct {
	wire    []byte
	ttlOffs []uint16
	stored  int64 // unix seconds
	expires int64 // unix seconds
	rcode   int
	cnames  []string // normalised CNAME targets in the answer, for the policy
	// name and addrs: an A or AAAA answer's, for Options.Answers (only
	// when it is set).
	name  string
	addrs []netip.Addr
	// verdict is the policy's last verdict on the question's name, for
	// the next client with the same profile at the same time of day
	// (policy.Memo: it is used only when it is exactly what the verdict
	// cache would give).
	verdict policy.Memo
}

// cache is the sharded LRU of entries (internal/shardlru, as the verdict
// cache), so that concurrent hits on different names do not queue on one
// lock. A nil *cache holds nothing.
type cache struct {
	seed maphash.Seed
	lru  *shardlru.Cache[cacheKey, *entry, struct{}]
}

// newCache returns a cache of about size entries; size <= 0 gives nil,
// a cache that holds nothing.
func newCache(size int) *cache {
	if size <= 0 {
		return nil
	}
	return &cache{seed: maphash.MakeSeed(), lru: shardlru.New[cacheKey, *entry, struct{}](size, cacheMaxShards, cacheMinPerShard)}
}

func (c *cache) hash(k *cacheKey) uint64 {
	return maphash.String(c.seed, k.name) ^ uint64(k.qtype)
}

// get returns a live entry for k; now is unix seconds.
func (c *cache) get(k cacheKey, now int64) *entry {
	if c == nil {
		return nil
	}
	s := c.lru.Shard(c.hash(&k))
	s.Lock()
	e, ok := s.LRU.Get(k)
	if ok && now >= e.expires {
		s.LRU.Remove(k)
		e, ok = nil, false
	}
	s.Unlock()
	if !ok {
		return nil
	}
	return e
}

func (c *cache) put(k cacheKey, e *entry) {
	if c == nil {
		return
	}
	s := c.lru.Shard(c.hash(&k))
	s.Lock()
	s.LRU.Add(k, e)
	s.Unlock()
}

func (c *cache) len() int {
	if c == nil {
		return 0
	}
	return c.lru.Len()
}

func (c *cache) purge() {
	if c != nil {
		c.lru.Purge()
	}
}

// resize changes the capacity; it reports false when c is nil (the
// caller must then build a new cache).
func (c *cache) resize(size int) bool {
	return c != nil && c.lru.Resize(size)
}

// newEntry packs an upstream answer m (a message this package owns) for
// the cache. ok is false for answers that cannot be kept even for the
// moment (SERVFAIL, REFUSED, truncated ones). floor is the least time the
// cache keeps the answer (minTTL, or 0 for the school's own zones, kept
// exactly as long as they say); an entry that expires at once is still
// answered from, but not stored (see fetch).
func newEntry(m *dns.Msg, now int64, floor uint32) (e *entry, ok bool) {
	if m.Truncated || (m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError) {
		return nil, false
	}
	// The OPT record belongs to one client's exchange: drop it.
	extra := m.Extra[:0]
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	m.Extra = extra
	// We are not the authority for anything; we do recurse.
	m.Authoritative, m.RecursionAvailable = false, true

	negative := m.Rcode == dns.RcodeNameError || len(m.Answer) == 0
	ttl := uint32(maxTTL)
	if negative {
		// RFC 2308 §5: the negative TTL is the lesser of the SOA's TTL and
		// its MINIMUM field. Without an SOA the answer is kept only for
		// the floor (RFC 2308 says such answers should not be cached long).
		ttl = 0
		for _, rr := range m.Ns {
			if soa, isSOA := rr.(*dns.SOA); isSOA {
				ttl = min(soa.Hdr.Ttl, soa.Minttl, maxTTL)
				soa.Hdr.Ttl = ttl
				break
			}
		}
	}
	for _, sec := range [...][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			h.Ttl = min(h.Ttl, maxTTL)
			if !negative {
				ttl = min(ttl, h.Ttl)
			}
		}
	}
	m.Id = 0
	m.Compress = true
	wire, err := m.Pack()
	if err != nil {
		return nil, false
	}
	offs, err := ttlOffsets(wire)
	if err != nil {
		return nil, false
	}
	var cnames []string
	for _, rr := range m.Answer {
		if c, isCNAME := rr.(*dns.CNAME); isCNAME {
			cnames = append(cnames, hostOf(c.Target))
		}
	}
	keep := max(ttl, floor)
	return &entry{wire: wire, ttlOffs: offs, stored: now, expires: now + int64(keep), rcode: m.Rcode, cnames: cnames}, true
}

var errBadWire = errors.New("malformed message")

// ttlOffsets walks a packed message and returns the offset of the TTL of
// every resource record.
func ttlOffsets(b []byte) ([]uint16, error) {
	if len(b) < 12 || len(b) > 65535 {
		return nil, errBadWire
	}
	qd := int(binary.BigEndian.Uint16(b[4:]))
	rrs := int(binary.BigEndian.Uint16(b[6:])) + int(binary.BigEndian.Uint16(b[8:])) + int(binary.BigEndian.Uint16(b[10:]))
	off := 12
	var err error
	for range qd {
		if off, err = skipName(b, off); err != nil {
			return nil, err
		}
		off += 4
	}
	offs := make([]uint16, 0, rrs)
	for range rrs {
		if off, err = skipName(b, off); err != nil {
			return nil, err
		}
		if off+10 > len(b) {
			return nil, errBadWire
		}
		offs = append(offs, uint16(off+4))
		off += 10 + int(binary.BigEndian.Uint16(b[off+8:]))
	}
	if off != len(b) {
		return nil, errBadWire
	}
	return offs, nil
}

// skipName returns the offset just past the (possibly compressed) name at off.
func skipName(b []byte, off int) (int, error) {
	for {
		if off >= len(b) {
			return 0, errBadWire
		}
		l := int(b[off])
		switch {
		case l == 0:
			return off + 1, nil
		case l&0xC0 == 0xC0:
			if off+2 > len(b) {
				return 0, errBadWire
			}
			return off + 2, nil
		case l&0xC0 != 0:
			return 0, errBadWire
		default:
			off += 1 + l
		}
	}
}
