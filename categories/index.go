package categories

import (
	"hash/maphash"
	"math"
)

// domainIndex is a compact hash set of domain entries with their Sets.
//
// A map[string]Set costs a string header, a value slot and a separate heap
// object per entry; with a million entries that is tens of MiB of pointers
// for the garbage collector to scan. Here every name lives in one byte
// arena, an entry is 16 pointer-free bytes, and the table is a power-of-two
// array of entry numbers probed linearly. The GC sees four slices.
type domainIndex struct {
	arena []byte   // every entry's name, back to back
	ents  []dentry // entry i is ents[i]
	slots []uint32 // entry number + 1; 0 is empty
	seed  maphash.Seed
}

type dentry struct {
	off  uint32 // name is arena[off : off+n]
	hash uint32 // high bits of the hash, compared before the name
	set  Set
	n    uint8
}

// maxLoad is the fill ratio (in 1/16) above which the table doubles.
const maxLoad = 11

func newDomainIndex() *domainIndex {
	return &domainIndex{seed: maphash.MakeSeed(), slots: make([]uint32, 1024)}
}

func (x *domainIndex) hashOf(s string) uint64 { return maphash.String(x.seed, s) }

// find returns the entry number of name, or -1.
func (x *domainIndex) find(name string) int {
	h := x.hashOf(name)
	tag := uint32(h >> 32)
	mask := uint64(len(x.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		e := x.slots[i]
		if e == 0 {
			return -1
		}
		d := &x.ents[e-1]
		if d.hash == tag && int(d.n) == len(name) &&
			string(x.arena[d.off:d.off+uint32(d.n)]) == name {
			return int(e - 1)
		}
	}
}

// add ORs set into name's entry, creating it. It reports false when the
// index is full (4 GiB of names), which no real list reaches.
func (x *domainIndex) add(name string, set Set) bool {
	if len(name) == 0 || len(name) > math.MaxUint8 {
		return false
	}
	h := x.hashOf(name)
	tag := uint32(h >> 32)
	mask := uint64(len(x.slots) - 1)
	i := h & mask
	for ; ; i = (i + 1) & mask {
		e := x.slots[i]
		if e == 0 {
			break
		}
		d := &x.ents[e-1]
		if d.hash == tag && int(d.n) == len(name) &&
			string(x.arena[d.off:d.off+uint32(d.n)]) == name {
			d.set |= set
			return true
		}
	}
	if uint64(len(x.arena))+uint64(len(name)) > math.MaxUint32 || len(x.ents) >= math.MaxUint32-1 {
		return false
	}
	x.ents = append(x.ents, dentry{off: uint32(len(x.arena)), hash: tag, set: set, n: uint8(len(name))})
	x.arena = append(x.arena, name...)
	x.slots[i] = uint32(len(x.ents))
	if len(x.ents)*16 > len(x.slots)*maxLoad {
		x.grow()
	}
	return true
}

func (x *domainIndex) grow() {
	slots := make([]uint32, 2*len(x.slots))
	mask := uint64(len(slots) - 1)
	for n := range x.ents {
		d := &x.ents[n]
		h := maphash.Bytes(x.seed, x.arena[d.off:d.off+uint32(d.n)])
		i := h & mask
		for slots[i] != 0 {
			i = (i + 1) & mask
		}
		slots[i] = uint32(n + 1)
	}
	x.slots = slots
}

// compact trims the slices' spare capacity once building is over.
func (x *domainIndex) compact() {
	if cap(x.arena)-len(x.arena) > len(x.arena)/8 {
		x.arena = append([]byte(nil), x.arena...)
	}
	if cap(x.ents)-len(x.ents) > len(x.ents)/8 {
		x.ents = append([]dentry(nil), x.ents...)
	}
}

// get returns the Set of name, and whether name is an entry.
func (x *domainIndex) get(name string) (Set, bool) {
	if i := x.find(name); i >= 0 {
		return x.ents[i].set, true
	}
	return 0, false
}

func (x *domainIndex) len() int { return len(x.ents) }
