package proxy

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/directory"
	"github.com/schoolgate/schoolgate/policy"
)

// reasonDirectoryDown is the AuthError of a name the users file does not
// hold, asked while the directory cannot be reached.
const reasonDirectoryDown = "the directory cannot be reached"

// dirState is the directory built for one users.ldap.
type dirState struct {
	cfg *config.LDAP // the snapshot's, compared by pointer on the hot path
	d   *directory.Directory
	err error // the directory could not be set up (password file, CA)
}

// dirHolder keeps the directory of the snapshot in force. A reload with
// the same users.ldap keeps the directory (and its cache of sign-ins).
type dirHolder struct {
	cur    atomic.Pointer[dirState]
	mu     sync.Mutex
	logger *zap.Logger  // says when users.ldap cannot be used (nil: quiet)
	warned atomic.Int64 // unix seconds of the last "cannot be reached" line
}

// unreachable notes in the program log, at most once a minute, that the
// directory could not be reached.
func (h *dirHolder) unreachable(err error) {
	now := time.Now().Unix()
	if last := h.warned.Load(); h.logger == nil || now-last < 60 || !h.warned.CompareAndSwap(last, now) {
		return
	}
	h.logger.Warn("users.ldap: the directory cannot be reached; users it accepted lately still sign in, others get 407", zap.Error(err))
}

// directory returns the directory for snap's users.ldap (nil when none),
// or why it cannot be used.
func (h *dirHolder) directory(snap *policy.Snapshot) (*directory.Directory, error) {
	want := snap.Config.Users.LDAP
	if s := h.cur.Load(); s != nil && s.cfg == want {
		return s.d, s.err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.cur.Load()
	if s != nil && s.cfg == want {
		return s.d, s.err
	}
	next := &dirState{cfg: want}
	switch {
	case want == nil:
	case s != nil && s.cfg != nil && s.err == nil && reflect.DeepEqual(*s.cfg, *want):
		next.d = s.d
	default:
		next.d, next.err = directory.New(*want)
		if next.err != nil && h.logger != nil {
			h.logger.Error("users.ldap cannot be used: directory users cannot sign in until it is fixed", zap.Error(next.err))
		}
	}
	h.cur.Store(next)
	return next.d, next.err
}

// directoryCred is what a directory sign-in is remembered as in the
// per-header cache: it stands until until, while d is still in force.
type directoryCred struct {
	d       *directory.Directory
	profile string
	until   time.Time
}

// failedDirectory marks a wrong password the directory refused in the
// failed cache (no users-file hash is ever this).
const failedDirectory = "\x00directory"

// verifyDirectory checks a name the users file does not hold against the
// directory d. k is the key of the whole Proxy-Authorization value, under
// which a success is remembered. It returns the profile.
func (c *authCache) verifyDirectory(ctx context.Context, d *directory.Directory, snap *policy.Snapshot, ip netip.Addr, k [32]byte, user, pass string) (string, error) {
	fk := c.key("\x00dir:"+user, pass)
	if f, ok := c.failed.Get(fk); ok && f.hash == failedDirectory && time.Since(f.at) < failTTL {
		return "", &AuthError{Reason: "wrong password"}
	}
	// The same limits as a users-file sign-in (signin.go), and one
	// directory question at a time per address: a client flooding
	// guesses must not flood the directory.
	wait, ok := c.limit.reserve(user, ip, time.Now())
	if !ok || !waitSlot(ctx, wait) {
		return "", &AuthError{Reason: "too many failed sign-ins for this account or from this address: wait a second and try again"}
	}
	release, ok := c.ipTurn(ctx, ip)
	if !ok {
		return "", &AuthError{Reason: "another sign-in from this address is being checked"}
	}
	defer release()
	r, err := d.Authenticate(ctx, user, pass)
	var (
		re *directory.RejectedError
		ue *directory.UnavailableError
	)
	switch {
	case errors.As(err, &re):
		c.failed.Add(fk, failure{hash: failedDirectory, at: time.Now()})
		c.limit.record(user, ip, false, time.Now())
		if re.Reason == "wrong password" || re.Reason == "empty password" {
			return "", &AuthError{Reason: "wrong password"}
		}
		return "", &AuthError{Reason: "unknown user"}
	case errors.As(err, &ue):
		c.dirs.unreachable(err)
		return "", &AuthError{Reason: reasonDirectoryDown}
	case err != nil:
		return "", &AuthError{Reason: err.Error()}
	}
	c.limit.record(user, ip, true, time.Now())
	profile := r.Profile
	if profile == "" || !snap.HasProfile(profile) {
		profile = snap.Config.DefaultProfile
	}
	c.raw.Add(k, rawCred{user: user, dir: &directoryCred{d: d, profile: profile, until: r.Until}})
	return profile, nil
}
