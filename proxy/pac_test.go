package proxy

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/admin"
)

// The PAC file from the proxy listener itself, to a GET addressed to the
// proxy (origin-form), without a sign-in; any other origin-form request is
// still refused, and a non-client gets no PAC.
func TestPACOnProxyListener(t *testing.T) {
	withPAC := func(o *Options) { o.PAC = admin.PACHandler(o.Engine, "0.0.0.0:3128") }
	e := newEnv(t, envConfig{requireAuth: true, opts: withPAC})
	c := &http.Client{} // no proxy: the request is addressed to the proxy itself
	for _, path := range []string{"/proxy.pac", "/wpad.dat"} {
		t.Run(path, func(t *testing.T) {
			resp, err := c.Get("http://" + e.addr + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ns-proxy-autoconfig" {
				t.Fatalf("status %d, type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			// The listener is a wildcard here: the PAC names the host the
			// browser asked, with the proxy's port.
			if !strings.Contains(string(body), "function FindProxyForURL") || !strings.Contains(string(body), `"PROXY 127.0.0.1:3128"`) {
				t.Fatalf("PAC body:\n%s", body)
			}
		})
	}
	t.Run("HEAD", func(t *testing.T) {
		resp, err := c.Head("http://" + e.addr + "/wpad.dat")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("other paths are still not proxied", func(t *testing.T) {
		resp, err := c.Get("http://" + e.addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 407 && resp.StatusCode != 400 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("a proxied URL ending in /wpad.dat is proxied", func(t *testing.T) {
		pc := e.client("alice", "alicepw")
		resp, err := pc.Get(e.upURL + "/wpad.dat")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "FindProxyForURL") {
			t.Fatal("the proxy answered a proxied URL with its own PAC file")
		}
	})

	t.Run("not for non-clients", func(t *testing.T) {
		e := newEnv(t, envConfig{clients: "  - 10.0.0.0/8\n", opts: withPAC})
		resp, err := c.Get("http://" + e.addr + "/wpad.dat")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || strings.Contains(string(body), "FindProxyForURL") {
			t.Fatalf("a non-client got the PAC: %d", resp.StatusCode)
		}
	})
}

// A real browser finds the proxy through the PAC file the proxy listener
// serves: headless Chromium given only --proxy-pac-url gets the block page
// for a blocked site from the proxy.
func TestChromiumFindsTheProxyThroughPAC(t *testing.T) {
	chromium := chromiumPath(t)
	var addr atomic.Value // the proxy's address, known once it listens
	e := newEnv(t, envConfig{opts: func(o *Options) {
		engine := o.Engine
		o.PAC = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			admin.PACHandler(engine, addr.Load().(string)).ServeHTTP(w, r)
		})
	}})
	addr.Store(e.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--proxy-pac-url=http://"+e.addr+"/proxy.pac",
		"--dump-dom", "http://www.casino.test/games").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "<html") {
		t.Skipf("chromium could not run here: %v\n%s", err, out)
	}
	dom := string(out)
	if !strings.Contains(dom, "This page is blocked") || !strings.Contains(dom, "http://www.casino.test/games") {
		t.Fatalf("Chromium did not reach the proxy through the PAC file:\n%s", dom)
	}
	l := e.logFor(t, "www.casino.test", "GET") // the page, or the favicon after it
	if l.Verdict != "block" || !strings.HasPrefix(l.URL, "http://www.casino.test/") {
		t.Errorf("log line %+v", l)
	}
}
