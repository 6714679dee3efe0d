// Package policy decides: who (user → profile, else source network, else
// default_profile), what (host and URL → categories) and when (schedules in
// the config's timezone) → allow or block, with the rule and a reason.
//
// Snapshot.Decide is the one decision function of schoolgate, used by the
// proxy, the DNS filter and `schoolgate check`. It is pure: no I/O, no
// logging, no clock. Engine adds the sharded verdict cache and the atomic
// snapshot swap used on reload.
package policy

import (
	"errors"
	"net/netip"
	"time"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/config"
)

// Verdict is allow or block.
type Verdict uint8

const (
	Allow Verdict = iota
	Block
)

func (v Verdict) String() string {
	if v == Block {
		return "block"
	}
	return "allow"
}

// System rule names, used where no profile rule decided.
const (
	RuleNotAClient       = "not_a_client"
	RuleDenyDestinations = "deny_destinations"
)

// Args is what a decision is made on. Add fields rather than parameters.
type Args struct {
	User string     // authenticated user (or "" )
	IP   netip.Addr // client address (zero when unknown, as in `check` without -ip)
	Host string     // normalised host (categories.NormalizeHost)
	Path string     // URL path and query for a full-URL decision, "" for host-only
	Time time.Time  // when; converted to the config's timezone
}

// Decision is the outcome of Decide.
type Decision struct {
	Profile    string
	Categories categories.Set // the host's categories; empty = unclassified
	Verdict    Verdict
	Rule       string // "PROFILE#N", "PROFILE#default" or a system rule
	Reason     string // for a person: "category gambling is blocked for staff"
}

// Snapshot is one compiled, immutable configuration: config, category
// database, users, compiled profiles and schedules. Gen is unique per
// snapshot so that caches can key on it.
type Snapshot struct {
	Config *config.Config
	DB     *categories.DB
	Gen    uint64
	// compiled state: policy helper
}

// Build loads everything the config names (embedded database, lists,
// users file) and compiles it into a snapshot. It does not touch any
// running snapshot, so a failed reload leaves the old one serving.
func Build(cfg *config.Config) (*Snapshot, error) {
	return nil, errors.New("policy.Build: not implemented yet")
}

// Decide is the decision function. Pure.
func (s *Snapshot) Decide(a Args) Decision { return Decision{} }

// Profile returns the profile for a user (if known) else the source
// address's network, else default_profile.
func (s *Snapshot) Profile(user string, ip netip.Addr) string { return "" }

// User returns a user of the users file.
func (s *Snapshot) User(name string) (config.User, bool) { return config.User{}, false }

// IsClient reports whether ip may use the proxy and DNS (`clients`).
func (s *Snapshot) IsClient(ip netip.Addr) bool { return false }

// DeniedDestination reports whether the proxy must never connect to ip
// (`proxy.deny_destinations`).
func (s *Snapshot) DeniedDestination(ip netip.Addr) bool { return false }
