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
// arena, an entry is 12 pointer-free bytes, and the table is a power-of-two
// array of slots probed linearly. A slot holds the entry number and 32 bits
// of its hash, so a probe that misses (most probes: Lookup tries every label
// suffix) reads the slot's cache line only. The GC sees three slices.
type domainIndex struct {
	arena []byte   // every entry's name, back to back
	ents  []dentry // entry i is ents[i]
	slots []uint64 // hash high bits << 32 | entry number + 1; 0 is empty
	seed  maphash.Seed
}

type dentry struct {
	off uint32 // name is arena[off : off+n]
	set Set
	n   uint8
}

func slotOf(tag uint32, e int) uint64 { return uint64(tag)<<32 | uint64(e+1) }

// maxLoad is the fill ratio (in 1/16) above which the table doubles.
const maxLoad = 11

func newDomainIndex() *domainIndex {
	return &domainIndex{seed: maphash.MakeSeed(), slots: make([]uint64, 1024)}
}

func (x *domainIndex) hashOf(s string) uint64 { return maphash.String(x.seed, s) }

// find returns the entry number of name, or -1.
func (x *domainIndex) find(name string) int {
	h := x.hashOf(name)
	tag := uint32(h >> 32)
	mask := uint64(len(x.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		sl := x.slots[i]
		if sl == 0 {
			return -1
		}
		if uint32(sl>>32) != tag {
			continue
		}
		e := int(uint32(sl)) - 1
		d := &x.ents[e]
		if int(d.n) == len(name) && string(x.arena[d.off:d.off+uint32(d.n)]) == name {
			return e
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
		sl := x.slots[i]
		if sl == 0 {
			break
		}
		if uint32(sl>>32) != tag {
			continue
		}
		d := &x.ents[uint32(sl)-1]
		if int(d.n) == len(name) && string(x.arena[d.off:d.off+uint32(d.n)]) == name {
			d.set |= set
			return true
		}
	}
	if uint64(len(x.arena))+uint64(len(name)) > math.MaxUint32 || len(x.ents) >= math.MaxUint32-1 {
		return false
	}
	x.ents = append(x.ents, dentry{off: uint32(len(x.arena)), set: set, n: uint8(len(name))})
	x.arena = append(x.arena, name...)
	x.slots[i] = slotOf(tag, len(x.ents)-1)
	if len(x.ents)*16 > len(x.slots)*maxLoad {
		x.grow()
	}
	return true
}

func (x *domainIndex) grow() {
	slots := make([]uint64, 2*len(x.slots))
	mask := uint64(len(slots) - 1)
	for n := range x.ents {
		d := &x.ents[n]
		h := maphash.Bytes(x.seed, x.arena[d.off:d.off+uint32(d.n)])
		i := h & mask
		for slots[i] != 0 {
			i = (i + 1) & mask
		}
		slots[i] = slotOf(uint32(h>>32), n)
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
