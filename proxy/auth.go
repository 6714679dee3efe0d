package proxy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/policy"
)

// authCache remembers credentials bcrypt has verified, so that an
// authenticated request costs a hash and a map look-up, not a bcrypt.
//
// The key is SHA-256 over a random per-process secret, the user and the
// password: the cache never holds a password, and its keys are useless
// outside this process. The value is the bcrypt hash the credentials were
// verified against; a hit counts only while the user's hash in the current
// snapshot is that same string, so a changed password (or users file)
// takes effect on the next request after the reload.
//
// Wrong passwords are remembered too (failed, keyed the same way, for
// failTTL), so a client retrying the same wrong password costs no bcrypt.
// A bcrypt that must run waits for one of bcryptSlots (about one per core)
// and for its client address's single turn (perIP): one address flooding
// wrong passwords holds at most one slot, so another address's first login
// waits for at most about one bcrypt. A request that cannot have its
// address's turn within ipWait gets 407.
type authCache struct {
	secret [32]byte
	lru    *lru.Cache[[32]byte, string]
	// raw maps a keyed hash of a whole Proxy-Authorization value to what
	// it verified as, so that a repeated header skips even the base64
	// decoding. Valid under the same rule as lru.
	raw    *lru.Cache[[32]byte, rawCred]
	failed *lru.Cache[[32]byte, failure]
	// bcryptSlots bounds concurrent bcrypt verifications: each takes tens
	// of milliseconds of CPU, and a flood of wrong passwords must not take
	// every core from the requests that pass.
	bcryptSlots chan struct{}
	bcrypts     atomic.Int64 // bcrypt verifications run, for tests

	ipMu   sync.Mutex
	perIP  map[netip.Addr]*ipTurn
	ipWait time.Duration

	limit *signInLimit // failed sign-ins per account and address (signin.go)

	dirs dirHolder // users.ldap's directory, tried for names the users file lacks
}

// failure is a remembered wrong password: the hash it failed against, and when.
type failure struct {
	hash string
	at   time.Time
}

// ipTurn is one client address's bcrypt turn (a one-slot semaphore) and
// how many requests hold or wait for it.
type ipTurn struct {
	ch   chan struct{}
	refs int
}

const (
	failTTL       = time.Minute
	defaultIPWait = 3 * time.Second
)

func newAuthCache(size, slots int) *authCache {
	c := &authCache{
		bcryptSlots: make(chan struct{}, max(slots, 1)),
		perIP:       make(map[netip.Addr]*ipTurn),
		limit:       newSignInLimit(),
		ipWait:      defaultIPWait,
	}
	if _, err := rand.Read(c.secret[:]); err != nil {
		panic("proxy: no randomness for the credential cache: " + err.Error()) // crypto/rand never fails on Linux
	}
	c.lru, _ = lru.New[[32]byte, string](max(size, 16))
	c.raw, _ = lru.New[[32]byte, rawCred](max(size, 16))
	c.failed, _ = lru.New[[32]byte, failure](max(size, 16))
	return c
}

func (c *authCache) key(user, pass string) [32]byte {
	var stack [256]byte
	b := stack[:0]
	if n := len(c.secret) + len(user) + len(pass) + 1; n > len(stack) {
		b = make([]byte, 0, n)
	}
	b = append(b, c.secret[:]...)
	b = append(b, user...)
	b = append(b, 0)
	b = append(b, pass...)
	return sha256.Sum256(b)
}

// rawCred is what a Proxy-Authorization value verified as: a user of
// the users file with its hash, or (dir set) a directory sign-in.
type rawCred struct {
	user, hash string
	dir        *directoryCred
}

// verifyHeader checks a Proxy-Authorization value from the client at ip
// and returns the user.
func (c *authCache) verifyHeader(ctx context.Context, snap *policy.Snapshot, ip netip.Addr, v string) (string, error) {
	user, _, err := c.verifyCred(ctx, snap, ip, v, time.Now())
	return user, err
}

// verifyCred is verifyHeader that also returns, for a directory user, the
// profile the directory's groups give ("" for a user of the users file:
// the policy knows theirs). The users file is tried first; a name it
// does not hold goes to users.ldap. now is the request's time: a cached
// directory sign-in stands until its until (the caller has the time
// already; reading the clock again would make a directory user's cached
// request dearer than a users-file user's).
func (c *authCache) verifyCred(ctx context.Context, snap *policy.Snapshot, ip netip.Addr, v string, now time.Time) (user, profile string, err error) {
	k := c.key("\x00raw", v)
	if rc, ok := c.raw.Get(k); ok {
		if rc.dir == nil {
			if u, ok := snap.User(rc.user); ok && u.PasswordHash == rc.hash && rc.hash != "" {
				return rc.user, "", nil
			}
		} else if d, _ := c.dirs.directory(snap); d == rc.dir.d && now.Before(rc.dir.until) {
			if _, local := snap.User(rc.user); !local {
				return rc.user, rc.dir.profile, nil
			}
		}
	}
	user, pass, ok := parseBasic(v)
	if !ok {
		return "", "", &AuthError{Reason: "malformed credentials"}
	}
	if profile, err = c.verifyUser(ctx, snap, ip, k, user, pass); err != nil {
		return "", "", err
	}
	return user, profile, nil
}

// verifyUser checks user and pass from the client at ip — the users file
// first, a name it does not hold against users.ldap — and returns the
// profile the directory's groups give ("" for a user of the users file).
// A success is remembered under k, the key of the credentials as sent.
func (c *authCache) verifyUser(ctx context.Context, snap *policy.Snapshot, ip netip.Addr, k [32]byte, user, pass string) (string, error) {
	if _, local := snap.User(user); !local {
		if d, err := c.dirs.directory(snap); d != nil || err != nil {
			if err != nil {
				return "", &AuthError{Reason: reasonDirectoryDown}
			}
			return c.verifyDirectory(ctx, d, snap, ip, k, user, pass)
		}
	}
	if err := c.verify(ctx, snap, ip, user, pass); err != nil {
		return "", err
	}
	if u, ok := snap.User(user); ok {
		c.raw.Add(k, rawCred{user: user, hash: u.PasswordHash})
	}
	return "", nil
}

// verify checks user and pass, from the client at ip, against snap's
// users file, returning nil or an *AuthError.
func (c *authCache) verify(ctx context.Context, snap *policy.Snapshot, ip netip.Addr, user, pass string) error {
	u, known := snap.User(user)
	hash := u.PasswordHash
	if !known || hash == "" {
		// An unknown name is checked against a dummy hash of the users'
		// cost, through the same turns: it costs what a known one does.
		cost := int(lastCost.Load())
		if cost == 0 {
			cost = bcrypt.DefaultCost
		}
		hash, known = string(dummyHash(cost)), false
	}
	k := c.key(user, pass)
	if hit, err := c.cached(k, hash); hit {
		if !known {
			return &AuthError{Reason: "unknown user"}
		}
		return err
	}
	// config refuses such a users file; a hash that got here anyway must
	// not cost a core for hours.
	if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost > config.MaxBcryptCost {
		return &AuthError{Reason: "unusable password hash"}
	} else if known {
		lastCost.Store(int64(cost))
	}
	wait, ok := c.limit.reserve(user, ip, time.Now())
	if !ok || !waitSlot(ctx, wait) {
		return &AuthError{Reason: "too many failed sign-ins for this account or from this address: wait a second and try again"}
	}
	release, ok := c.ipTurn(ctx, ip)
	if !ok {
		return &AuthError{Reason: "another sign-in from this address is being checked"}
	}
	defer release()
	// The request that had the turn before may have checked the same
	// credentials (a browser opens several connections at once).
	if hit, err := c.cached(k, hash); hit {
		if !known {
			return &AuthError{Reason: "unknown user"}
		}
		return err
	}
	select {
	case c.bcryptSlots <- struct{}{}:
	case <-ctx.Done():
		return &AuthError{Reason: "client left"}
	}
	c.bcrypts.Add(1)
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass))
	<-c.bcryptSlots
	if err != nil || !known {
		c.failed.Add(k, failure{hash: hash, at: time.Now()})
		c.limit.record(user, ip, false, time.Now())
		if !known {
			return &AuthError{Reason: "unknown user"}
		}
		return &AuthError{Reason: "wrong password"}
	}
	c.limit.record(user, ip, true, time.Now())
	c.lru.Add(k, u.PasswordHash)
	c.failed.Remove(k)
	return nil
}

// cached reports whether the credentials with key k are known against
// hash: verified (nil) or recently wrong (an *AuthError).
func (c *authCache) cached(k [32]byte, hash string) (bool, error) {
	if h, ok := c.lru.Get(k); ok && h == hash {
		return true, nil
	}
	if f, ok := c.failed.Get(k); ok && f.hash == hash && time.Since(f.at) < failTTL {
		return true, &AuthError{Reason: "wrong password"}
	}
	return false, nil
}

// ipTurn waits (up to ipWait, or until ctx ends) for ip's one bcrypt turn
// and returns the function that gives it back.
func (c *authCache) ipTurn(ctx context.Context, ip netip.Addr) (release func(), ok bool) {
	c.ipMu.Lock()
	t := c.perIP[ip]
	if t == nil {
		t = &ipTurn{ch: make(chan struct{}, 1)}
		c.perIP[ip] = t
	}
	t.refs++
	c.ipMu.Unlock()
	put := func() {
		c.ipMu.Lock()
		if t.refs--; t.refs == 0 {
			delete(c.perIP, ip)
		}
		c.ipMu.Unlock()
	}
	select {
	case t.ch <- struct{}{}:
		return func() { <-t.ch; put() }, true
	default:
	}
	timer := time.NewTimer(c.ipWait)
	defer timer.Stop()
	select {
	case t.ch <- struct{}{}:
		return func() { <-t.ch; put() }, true
	case <-timer.C:
	case <-ctx.Done():
	}
	put()
	return nil, false
}

// parseBasic parses a Proxy-Authorization value of the Basic scheme
// (RFC 7617) without allocating more than the decoded credentials.
func parseBasic(v string) (user, pass string, ok bool) {
	const prefix = "basic "
	if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return "", "", false
	}
	enc := strings.TrimSpace(v[len(prefix):])
	if len(enc) > 1024 {
		return "", "", false
	}
	dec, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", "", false
	}
	s := string(dec)
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

// Authenticate checks a user name and password typed by the client at ip
// into the sign-in page (the portal) exactly as a proxy sign-in is
// checked: the users file first, then users.ldap, with the same caches
// and the same limits on failed sign-ins per account and address. It
// returns the profile a directory user's groups give ("" for a user of
// the users file, whose profile the policy knows), or an *AuthError.
func (p *Proxy) Authenticate(ctx context.Context, ip netip.Addr, user, pass string) (string, error) {
	if user == "" || pass == "" || len(user) > 256 || len(pass) > 1024 || strings.ContainsRune(user, ':') {
		return "", &AuthError{Reason: "malformed credentials"}
	}
	return p.auth.verifyUser(ctx, p.engine.Snapshot(), ip.Unmap(), p.auth.key("\x00form:"+user, pass), user, pass)
}
