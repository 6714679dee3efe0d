package alerts

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/schoolgate/schoolgate/logging"
)

// Failed sign-ins against one account (issue 19): ten in a minute send a
// safeguarding alert of kind KindSignInFailures naming the account (User),
// the addresses they came from and their count, at once (the access log
// hands each line to Observe within a second), then at most one every
// signInQuiet per account.
const (
	KindSignInFailures = "sign_in_failures"
	signInThreshold    = 10
	signInWindow       = time.Minute
	signInQuiet        = 10 * time.Minute
	signInMaxAccounts  = 10000 // accounts tracked at once
)

// signInWatch counts recent failed sign-ins per account tried.
type signInWatch struct {
	mu      sync.Mutex
	fails   map[string]*accountFails
	alerted map[string]time.Time
}

type accountFails struct {
	times []time.Time // within signInWindow, oldest first
	ips   map[string]int
}

// isFailedSignIn reports whether e is the proxy's 407 for credentials
// that were given and refused, or a refused sign-in at the portal: its
// user is the name tried.
func isFailedSignIn(e *logging.Entry) bool {
	return e.User != "" && (e.Rule == "proxy_auth" && e.HTTPStatus == 407 || e.Rule == "portal_signin" && e.AuthFailed)
}

// signIn counts a failed sign-in and, at the threshold, queues the alert.
func (a *Alerter) signIn(e *logging.Entry) {
	w := &a.signins
	t := e.Time
	if t.IsZero() {
		t = a.now()
	}
	w.mu.Lock()
	if w.fails == nil {
		w.fails, w.alerted = map[string]*accountFails{}, map[string]time.Time{}
	}
	f := w.fails[e.User]
	if f == nil {
		if len(w.fails) >= signInMaxAccounts {
			w.prune(t)
			if len(w.fails) >= signInMaxAccounts {
				w.mu.Unlock()
				a.m.dropped.Inc()
				return
			}
		}
		f = &accountFails{ips: map[string]int{}}
		w.fails[e.User] = f
	}
	i := 0
	for i < len(f.times) && t.Sub(f.times[i]) > signInWindow {
		i++
	}
	f.times = append(f.times[i:], t)
	f.ips[e.IP]++
	var al *Alert
	if len(f.times) >= signInThreshold && t.Sub(w.alerted[e.User]) > signInQuiet {
		w.alerted[e.User] = t
		ips := make([]string, 0, len(f.ips))
		for ip := range f.ips {
			ips = append(ips, ip)
		}
		sort.Slice(ips, func(i, j int) bool {
			return f.ips[ips[i]] > f.ips[ips[j]] || f.ips[ips[i]] == f.ips[ips[j]] && ips[i] < ips[j]
		})
		first := f.times[0].In(a.loc)
		al = &Alert{Kind: KindSignInFailures, User: e.User, IP: ips[0], Count: len(f.times), Hosts: ips,
			First: first, Last: t.In(a.loc),
			Text: fmt.Sprintf("schoolgate: %d failed sign-ins for the account %s in the last minute, from %s (someone may be guessing its password)",
				len(f.times), e.User, strings.Join(ips, ", "))}
	}
	w.mu.Unlock()
	if al != nil {
		select {
		case a.notices <- *al:
		default:
			a.m.dropped.Inc()
		}
	}
}

// prune forgets accounts with no failure in the window. w.mu is held.
func (w *signInWatch) prune(now time.Time) {
	for u, f := range w.fails {
		if len(f.times) == 0 || now.Sub(f.times[len(f.times)-1]) > signInWindow {
			delete(w.fails, u)
		}
	}
	for u, t := range w.alerted {
		if now.Sub(t) > signInQuiet {
			delete(w.alerted, u)
		}
	}
}
