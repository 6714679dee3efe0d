package proxy

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/crypto/bcrypt"

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
type authCache struct {
	secret [32]byte
	lru    *lru.Cache[[32]byte, string]
	// raw maps a keyed hash of a whole Proxy-Authorization value to what
	// it verified as, so that a repeated header skips even the base64
	// decoding. Valid under the same rule as lru.
	raw *lru.Cache[[32]byte, rawCred]
	// bcryptSlots bounds concurrent bcrypt verifications: each takes tens
	// of milliseconds of CPU, and a flood of wrong passwords must not take
	// every core from the requests that pass.
	bcryptSlots chan struct{}
	bcrypts     atomic.Int64 // bcrypt verifications run, for tests
}

func newAuthCache(size, slots int) *authCache {
	c := &authCache{bcryptSlots: make(chan struct{}, max(slots, 1))}
	if _, err := rand.Read(c.secret[:]); err != nil {
		panic("proxy: no randomness for the credential cache: " + err.Error()) // crypto/rand never fails on Linux
	}
	c.lru, _ = lru.New[[32]byte, string](max(size, 16))
	c.raw, _ = lru.New[[32]byte, rawCred](max(size, 16))
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

type rawCred struct{ user, hash string }

// verifyHeader checks a Proxy-Authorization value and returns the user.
func (c *authCache) verifyHeader(snap *policy.Snapshot, v string) (string, error) {
	k := c.key("\x00raw", v)
	if rc, ok := c.raw.Get(k); ok {
		if u, ok := snap.User(rc.user); ok && u.PasswordHash == rc.hash && rc.hash != "" {
			return rc.user, nil
		}
	}
	user, pass, ok := parseBasic(v)
	if !ok {
		return "", &AuthError{Reason: "malformed credentials"}
	}
	if err := c.verify(snap, user, pass); err != nil {
		return "", err
	}
	if u, ok := snap.User(user); ok {
		c.raw.Add(k, rawCred{user: user, hash: u.PasswordHash})
	}
	return user, nil
}

// verify checks user and pass against snap's users file, returning the
// user name or an *AuthError.
func (c *authCache) verify(snap *policy.Snapshot, user, pass string) error {
	u, ok := snap.User(user)
	if !ok || u.PasswordHash == "" {
		return &AuthError{Reason: "unknown user"}
	}
	k := c.key(user, pass)
	if h, ok := c.lru.Get(k); ok && h == u.PasswordHash {
		return nil
	}
	c.bcryptSlots <- struct{}{}
	c.bcrypts.Add(1)
	err := bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(pass))
	<-c.bcryptSlots
	if err != nil {
		return &AuthError{Reason: "wrong password"}
	}
	c.lru.Add(k, u.PasswordHash)
	return nil
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
