package proxy

import (
	"context"
	"encoding/base64"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// A flood of wrong passwords from one address must not keep another
// address's first login waiting behind it: one address holds at most one
// bcrypt slot, so the other waits for at most about one bcrypt.
func TestAuthFloodFromOneAddress(t *testing.T) {
	e := newEnv(t, envConfig{requireAuth: true})
	const cost = 6
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	carolHash := hash("carolpw")
	writeFile(t, e.dir+"/users.csv", testUsers+"alice,student,"+hash("alicepw")+"\ncarol,student,"+carolHash+"\n")
	snap := e.build()

	// One bcrypt here, now, beside another one (as carol's will run beside
	// the flood's): the race detector and the machine's load change it.
	var one time.Duration
	for range 3 {
		done := make(chan struct{})
		go func() {
			bcrypt.CompareHashAndPassword([]byte(carolHash), []byte("y")) //nolint:errcheck
			close(done)
		}()
		start := time.Now()
		bcrypt.CompareHashAndPassword([]byte(carolHash), []byte("x")) //nolint:errcheck
		if d := time.Since(start); one == 0 || d > one {
			one = d
		}
		<-done
	}

	c := newAuthCache(1024, 2)
	c.ipWait = time.Minute // the flood waits rather than giving up, to keep it going
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	attacker, other := netip.MustParseAddr("127.0.0.5"), netip.MustParseAddr("127.0.0.6")
	const flood = 60
	var (
		wg      sync.WaitGroup
		flooded atomic.Int64
	)
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.verifyHeader(ctx, snap, attacker, basicAuth("alice", "guess"+strconv.Itoa(i))); err == nil {
				t.Error("a wrong password was accepted")
			}
			flooded.Add(1)
		}()
	}
	defer wg.Wait()
	defer cancel()
	for c.bcrypts.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if u, err := c.verifyHeader(context.Background(), snap, other, basicAuth("carol", "carolpw")); err != nil || u != "carol" {
		t.Fatalf("carol: %q %v", u, err)
	}
	took := time.Since(start)
	if n := flooded.Load(); n > flood/2 {
		t.Fatalf("the flood was over (%d of %d done) before carol finished: the test shows nothing", n, flood)
	}
	// Before the fix carol waited behind about flood/2 = 30 bcrypts; the
	// margin over one bcrypt absorbs scheduling on a loaded machine
	// (make test runs packages side by side under -race).
	if limit := 8*one + 250*time.Millisecond; took > limit {
		t.Errorf("carol's first login took %v behind the flood; one bcrypt takes %v (limit %v)", took, one, limit)
	}
	t.Logf("one bcrypt %v; carol's login during the flood %v", one, took)
}

func TestAuthRemembersFailures(t *testing.T) {
	e := newEnv(t, envConfig{requireAuth: true})
	snap := e.engine.Snapshot()
	c := newAuthCache(64, 2)
	ctx, ip := context.Background(), netip.MustParseAddr("127.0.0.1")
	for i := range 5 {
		if _, err := c.verifyHeader(ctx, snap, ip, basicAuth("alice", "wrong")); err == nil {
			t.Fatalf("try %d: wrong password accepted", i)
		}
	}
	if n := c.bcrypts.Load(); n != 1 {
		t.Errorf("the same wrong password 5 times ran bcrypt %d times, want 1", n)
	}
	// The right one still works (and is not shadowed by the failure).
	if u, err := c.verifyHeader(ctx, snap, ip, basicAuth("alice", "alicepw")); err != nil || u != "alice" {
		t.Fatalf("right password: %q %v", u, err)
	}
	// A failure expires.
	k := c.key("alice", "wrong")
	f, _ := c.failed.Get(k)
	c.failed.Add(k, failure{hash: f.hash, at: f.at.Add(-failTTL)})
	c.verifyHeader(ctx, snap, ip, basicAuth("alice", "wrong")) //nolint:errcheck
	if n := c.bcrypts.Load(); n != 3 {
		t.Errorf("after the failure expired: %d bcrypts, want 3", n)
	}
}

// Several connections of one browser signing in at once: they take the
// address's turn one after the other, and only the first runs bcrypt.
func TestAuthSameAddressWaitsItsTurn(t *testing.T) {
	e := newEnv(t, envConfig{requireAuth: true})
	snap := e.engine.Snapshot()
	c := newAuthCache(64, 2)
	ip := netip.MustParseAddr("127.0.0.1")
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if u, err := c.verifyHeader(context.Background(), snap, ip, basicAuth("bob", "bobpw")); err != nil || u != "bob" {
				t.Errorf("bob: %q %v", u, err)
			}
		}()
	}
	wg.Wait()
	if n := c.bcrypts.Load(); n != 1 {
		t.Errorf("6 parallel first logins ran bcrypt %d times, want 1", n)
	}
	// One whose turn does not come in time gets 407.
	c.ipWait = 20 * time.Millisecond
	release, ok := c.ipTurn(context.Background(), ip)
	if !ok {
		t.Fatal("no turn")
	}
	_, err := c.verifyHeader(context.Background(), snap, ip, basicAuth("alice", "alicepw"))
	release()
	if _, ok := err.(*AuthError); !ok {
		t.Fatalf("while the address's turn was taken: %v, want an AuthError", err)
	}
	if len(c.perIP) != 0 {
		t.Errorf("%d address turns left behind", len(c.perIP))
	}
}
