package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// Sign-in guessing (issue 19): after ten failures, one check a second per
// address and per account for the addresses that failed; the right
// password from an address that never failed is never held up; an unknown
// user costs a bcrypt like a known one.
func TestSignInLimits(t *testing.T) {
	e := newEnv(t, envConfig{requireAuth: true})
	snap := e.engine.Snapshot()
	c := newAuthCache(1024, 2)
	ctx := context.Background()
	pupil := netip.MustParseAddr("10.0.0.66")
	for i := 0; i < failLimit; i++ {
		if err := c.verify(ctx, snap, pupil, "bob", fmt.Sprintf("guess%d", i)); err == nil {
			t.Fatal("a wrong password was accepted")
		}
	}
	// Limited now: five more guesses take about four seconds or are refused.
	start := time.Now()
	var wg sync.WaitGroup
	before := c.bcrypts.Load()
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.verify(ctx, snap, pupil, "bob", fmt.Sprintf("more%d", i)) //nolint:errcheck
		}()
	}
	wg.Wait()
	checked := c.bcrypts.Load() - before
	if el := time.Since(start); checked > 1+int64(el/time.Second)+1 {
		t.Fatalf("%d checks in %v after ten failures, want at most one a second", checked, el)
	}
	// The teacher, from their own machine, is not held up.
	teacher := netip.MustParseAddr("10.0.0.5")
	start = time.Now()
	if err := c.verify(ctx, snap, teacher, "bob", "bobpw"); err != nil {
		t.Fatalf("the right password from another address: %v", err)
	}
	if el := time.Since(start); el > 900*time.Millisecond {
		t.Fatalf("the right password from another address waited %v", el)
	}
	// An unknown user costs a bcrypt, like a known one.
	before = c.bcrypts.Load()
	if err := c.verify(ctx, snap, teacher, "nosuchuser", "x"); err == nil {
		t.Fatal("unknown user accepted")
	}
	if c.bcrypts.Load() != before+1 {
		t.Fatal("an unknown user did not cost a bcrypt: a user-name oracle")
	}
}

func TestSignInLimitSlots(t *testing.T) {
	l := newSignInLimit()
	ip, other := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	for i := 0; i < failLimit; i++ {
		if w, ok := l.reserve("bob", ip, now); !ok || w != 0 {
			t.Fatalf("failure %d: wait %v ok %v before the limit", i, w, ok)
		}
		l.record("bob", ip, false, now)
	}
	if w, ok := l.reserve("bob", ip, now); !ok || w != 0 {
		t.Fatalf("first limited check: %v %v", w, ok)
	}
	if w, ok := l.reserve("bob", ip, now); !ok || w != time.Second {
		t.Fatalf("second limited check: %v %v, want a second's wait", w, ok)
	}
	if _, ok := l.reserve("bob", ip, now); ok {
		t.Fatal("a third check within the second was given a slot two seconds ahead")
	}
	if w, ok := l.reserve("alice", other, now); !ok || w != 0 {
		t.Fatalf("another account from another address: %v %v", w, ok)
	}
	if w, ok := l.reserve("bob", other, now); !ok || w != 0 {
		t.Fatalf("bob from an address that never failed for him: %v %v", w, ok)
	}
	// Forgotten after failForget.
	if w, ok := l.reserve("bob", ip, now.Add(failForget+time.Second)); !ok || w != 0 {
		t.Fatalf("after %v: %v %v", failForget, w, ok)
	}
}
