package categories

import (
	"math/bits"
	"strings"
)

// Category is one of the contract's stable category names, as a small
// integer so that a host's categories fit in one machine word (Set).
type Category uint8

// The stable categories of docs/contract.md §3, in the contract's order.
// Unclassified and the pseudo-categories after it are never stored in the
// database (Pseudo): the policy gives Unclassified to a request whose host
// matched nothing, and IPLiteral and ECH to a TLS connection whose real
// destination the proxy cannot see (policy.Hidden).
const (
	Adult Category = iota
	Gambling
	Chat
	Webmail
	Streaming
	Social
	Games
	Dating
	Shopping
	Drugs
	Violence
	Hate
	Extremism
	SelfHarm
	Malware
	Phishing
	Hacking
	Piracy
	ProxyAvoidance
	DoH
	Downloads
	Forums
	SearchEngines
	Education
	Unclassified
	// IPLiteral is a TLS connection to an IP address whose ClientHello
	// names no server that resolves to it.
	IPLiteral
	// ECH is a TLS connection whose ClientHello can hide the server's name
	// in an encrypted_client_hello extension.
	ECH

	numCategories
)

var names = [numCategories]string{
	"adult", "gambling", "chat", "webmail", "streaming", "social", "games",
	"dating", "shopping", "drugs", "violence", "hate", "extremism", "self-harm",
	"malware", "phishing", "hacking", "piracy", "proxy-avoidance", "doh",
	"downloads", "forums", "search-engines", "education", "unclassified",
	"ip-literal", "ech",
}

// sortedIdx lists the categories in the byte order of their names, so that
// Set.Names returns a sorted slice without sorting.
var sortedIdx []Category

func init() {
	for c := Category(0); c < numCategories; c++ {
		sortedIdx = append(sortedIdx, c)
	}
	// insertion sort: 27 items, once.
	for i := 1; i < len(sortedIdx); i++ {
		for j := i; j > 0 && names[sortedIdx[j]] < names[sortedIdx[j-1]]; j-- {
			sortedIdx[j], sortedIdx[j-1] = sortedIdx[j-1], sortedIdx[j]
		}
	}
}

// String returns the category's stable name.
func (c Category) String() string {
	if c >= numCategories {
		return "invalid"
	}
	return names[c]
}

// Pseudo reports whether c is given to requests by the policy rather than
// to hosts by lists: unclassified, ip-literal and ech. Rules may name them;
// lists and phrase files may not.
func (c Category) Pseudo() bool { return c >= Unclassified && c < numCategories }

// All returns every category, Unclassified included, in contract order.
func All() []Category {
	out := make([]Category, numCategories)
	for i := range out {
		out[i] = Category(i)
	}
	return out
}

// Parse returns the category with the given stable name (case-insensitive).
func Parse(name string) (Category, bool) {
	name = strings.ToLower(strings.TrimSpace(name))
	for i, n := range names {
		if n == name {
			return Category(i), true
		}
	}
	return 0, false
}

// Set is a set of categories as a bit mask. The zero Set is empty.
type Set uint32

// SetOf returns the set holding the given categories.
func SetOf(cs ...Category) Set {
	var s Set
	for _, c := range cs {
		s = s.Add(c)
	}
	return s
}

// Add returns s with c added.
func (s Set) Add(c Category) Set { return s | 1<<c }

// Has reports whether c is in s.
func (s Set) Has(c Category) bool { return s&(1<<c) != 0 }

// Intersects reports whether s and o share a category.
func (s Set) Intersects(o Set) bool { return s&o != 0 }

// Empty reports whether s holds no category.
func (s Set) Empty() bool { return s == 0 }

// Len returns the number of categories in s.
func (s Set) Len() int { return bits.OnesCount32(uint32(s)) }

// Names returns the names of the categories in s, sorted; an empty
// (non-nil) slice for the empty set, so it encodes as JSON [].
func (s Set) Names() []string {
	out := make([]string, 0, s.Len())
	for _, c := range sortedIdx {
		if s.Has(c) {
			out = append(out, names[c])
		}
	}
	return out
}

// String joins the sorted names with ", "; "unclassified" for the empty set.
func (s Set) String() string {
	if s.Empty() {
		return "unclassified"
	}
	return strings.Join(s.Names(), ", ")
}
