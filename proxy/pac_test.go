package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"

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
