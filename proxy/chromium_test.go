package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/internal/testenv"
)

// chromiumPath is the installed Chromium, or the test skips.
func chromiumPath(t *testing.T) string {
	t.Helper()
	return testenv.Chromium(t)
}

// A real browser through the proxy: headless Chromium with the school CA
// trusted (by its SPKI hash, as a managed device trusts the installed CA)
// gets the block page for a blocked HTTPS site, where it used to show
// ERR_TUNNEL_CONNECTION_FAILED; and its ws:// (tunnelled as CONNECT
// host:80, with the default connect_ports) reaches an allowed host's
// WebSocket, but not a blocked one's.
func TestChromiumThroughProxy(t *testing.T) {
	chromium := chromiumPath(t)
	e := newEnv(t, envConfig{})
	events := make(chan string, 16)
	seen := &seenHosts{}
	mux := http.NewServeMux()
	mux.Handle("/ws", seen.handler())
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		// The page opens a WebSocket to the host the query names and
		// reports what happened by loading /done.
		target := r.URL.Query().Get("ws")
		fmt.Fprintf(w, `<!DOCTYPE html><title>ws</title><script>
var ws = new WebSocket("ws://%s/ws"), done = false;
function report(what) { if (!done) { done = true; location.href = "/done?what=" + encodeURIComponent(what); } }
ws.onopen = function () { ws.send("hello from chromium"); };
ws.onmessage = function (e) { report("echo:" + e.data); };
ws.onerror = function () { report("error"); };
ws.onclose = function () { report("closed"); };
</script>`, target)
	})
	mux.HandleFunc("/done", func(w http.ResponseWriter, r *http.Request) {
		events <- r.URL.Query().Get("what")
		w.Write([]byte("ok")) //nolint:errcheck
	})
	ip := port80(t, mux)
	ca, _ := testCA(t, e.dir)
	addr := interceptProxyWith(t, e, ca, "domains: [intercepted.test]", func(o *Options) { o.Resolver = testDNSTo(t, ip) })
	spki := sha256.Sum256(ca.RawSubjectPublicKeyInfo)
	flags := func(extra ...string) []string {
		return append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + t.TempDir(), "--proxy-server=http://" + addr,
			"--ignore-certificate-errors-spki-list=" + base64.StdEncoding.EncodeToString(spki[:])}, extra...)
	}

	t.Run("blocked HTTPS shows the block page", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, chromium, flags("--dump-dom", "https://www.casino.test/games")...).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "<html") {
			t.Skipf("chromium could not run here: %v\n%s", err, out)
		}
		dom := string(out)
		if !strings.Contains(dom, "This page is blocked") || !strings.Contains(dom, "gambling") ||
			!strings.Contains(dom, "https://www.casino.test/games") {
			t.Fatalf("Chromium did not show the block page:\n%s", dom)
		}
		// Chromium may open a spare tunnel that never carries a request:
		// the one that showed the page says so.
		e.findLog(t, "the blocked CONNECT that showed the page", func(l logLine) bool {
			return l.Method == "CONNECT" && l.Host == "www.casino.test" && l.Verdict == "block" && l.Rule == "student#2" &&
				statusNum(l.Status) == 403 && l.URL == "https://www.casino.test/games"
		})
	})
	for _, tc := range []struct{ name, host, want string }{
		{"ws:// to an allowed host", "www.allowed.test", "echo:hello from chromium"},
		{"ws:// to a blocked host", "www.casino.test", "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, chromium, flags("http://www.allowed.test/page?ws="+tc.host)...)
			if err := cmd.Start(); err != nil {
				t.Skipf("chromium could not start: %v", err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			var got string
			select {
			case got = <-events:
			case err := <-exited:
				t.Skipf("chromium exited before the page reported: %v", err)
			case <-ctx.Done():
				t.Fatal("the page never reported")
			}
			// The browser goes: its tunnels end, and their lines are written.
			cancel()
			<-exited
			if got != tc.want {
				t.Fatalf("the page reported %q, want %q", got, tc.want)
			}
			e.findLog(t, "the WebSocket's GET", func(l logLine) bool {
				return l.Method == "GET" && l.URL == "http://"+tc.host+"/ws" &&
					(tc.want == "error") == (l.Verdict == "block" && statusNum(l.Status) == 403)
			})
		})
	}
	if got := seen.get("/ws"); len(got) != 1 || got[0].host != "www.allowed.test" {
		t.Errorf("the WebSocket upstream saw %+v", got)
	}
}

// findLog waits for an access-log line that match accepts.
func (e *env) findLog(t *testing.T, what string, match func(logLine) bool) {
	t.Helper()
	var ls []logLine
	for range 40 {
		ls = e.logLines(t)
		for _, l := range ls {
			if match(l) {
				return
			}
		}
	}
	t.Errorf("no access-log line for %s among %+v", what, ls)
}
