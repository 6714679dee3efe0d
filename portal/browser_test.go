package portal

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/schoolgate/schoolgate/identity"
	"github.com/schoolgate/schoolgate/internal/testenv"
	"github.com/schoolgate/schoolgate/logging"
)

// TestBrowserSignsIn: headless Chromium, configured to use the proxy
// from an address in portal.networks, opens an http:// page, is sent to
// the portal, is refused with a wrong password (an error on the page,
// nobody signed in), signs in, lands back on the page, whose access-log
// line names the user and profile; after signing out it is sent to the
// portal again.
func TestBrowserSignsIn(t *testing.T) {
	chromium := testenv.Chromium(t)
	e := newEnv(t, throughProxy)
	page := e.origin.URL + "/page?lesson=3"

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.ProxyServer("http://" + e.proxyAddr),
		// Loopback through the proxy too (Chromium bypasses it by default),
		// and no automatic upgrade of http:// to https://.
		chromedp.Flag("proxy-bypass-list", "<-loopback>"),
		chromedp.Flag("disable-features", "HttpsUpgrades,HttpsFirstBalancedModeAutoEnable"),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Skipf("chromium could not start here: %v", err)
	}
	portalURL := strings.TrimSuffix(e.portal.SignInURL(""), "/")

	// do runs steps, then returns where the browser is.
	do := func(steps ...chromedp.Action[chromedp.Void]) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			html, _ := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("html")))
			t.Fatalf("%v; the page:\n%s", err, html)
		}
		at, err := chromedp.Run(bctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	text := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(s)
	}

	at := do(chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("signin")))
	if !strings.HasPrefix(at, portalURL+"/?url=") {
		t.Fatalf("the browser is at %q, want the portal (%s)", at, portalURL)
	}

	// A wrong password: the error, and nobody signed in.
	do(chromedp.SendKeys(chromedp.ID("user"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "not her password"),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("error")))
	if got := text("error"); !strings.Contains(got, "not right") {
		t.Fatalf("the error shown: %q", got)
	}
	if en, ok := e.ids.Lookup(loop, time.Now()); ok {
		t.Fatalf("a wrong password signed in %+v", en)
	}

	// The right one: back on the page first wanted.
	// The page came back with the name kept and the password empty.
	at = do(chromedp.SendKeys(chromedp.ID("password"), alicePass),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("page")))
	if got := text("page"); at != page || got != "the page itself" {
		t.Fatalf("after the sign-in the browser is at %q showing %q, want %q", at, got, page)
	}
	if en, ok := e.ids.Lookup(loop, time.Now()); !ok || en.User != "alice" || en.Source != identity.SourcePortal {
		t.Fatalf("identity after the sign-in: %+v %v", en, ok)
	}
	e.findLine(t, "the page as alice", func(l logging.Entry) bool {
		return l.URL == page && l.HTTPStatus == 200 && l.User == "alice" && l.Profile == "staff" && l.Verdict == "allow"
	})
	e.findLine(t, "the failed sign-in", func(l logging.Entry) bool {
		return l.Rule == RuleSignIn && l.User == "alice" && l.AuthFailed
	})

	// Sign out; the page sends the browser to the portal again.
	do(chromedp.Navigate(portalURL+"/"),
		chromedp.WaitVisible(chromedp.ID("signout")),
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("notice")))
	if got := text("notice"); got != "You are signed out." {
		t.Fatalf("after sign-out: %q", got)
	}
	at = do(chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("signin")))
	if !strings.HasPrefix(at, portalURL+"/?url=") {
		t.Fatalf("after sign-out the page led to %q, want the portal", at)
	}
	if en, ok := e.ids.Lookup(loop, time.Now()); ok {
		t.Fatalf("still signed in after sign-out: %+v", en)
	}
}
