package proxy

import (
	"crypto/tls"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A statutory list blocks on every path the proxy sees — plain HTTP on the
// full URL, CONNECT on the host, intercepted HTTPS on the full URL — for a
// staff profile that allows everything, with the publisher's page (no
// category, no rule) and rule statutory:NAME in the log.
func TestStatutoryEveryPath(t *testing.T) {
	e := newEnv(t, envConfig{requireAuth: true})
	ca, caKey := testCA(t, e.dir)
	writeFile(t, filepath.Join(e.dir, "iwf.txt"), "images.test/albums/1234/\nwhole-site.test\n")
	cfg := readFile(t, e.cfgPath)
	cfg = strings.Replace(cfg, "  staff:\n    rules:\n", "  staff:\n    rules:\n      - action: allow\n", 1)
	cfg += "statutory:\n  - {name: iwf, file: iwf.txt}\n"
	writeFile(t, e.cfgPath, cfg)
	e.engine.Swap(e.build())

	const iwfText = "indecent images of children as identified by the Internet Watch Foundation"
	checkPage := func(t *testing.T, resp *http.Response) {
		t.Helper()
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !strings.Contains(string(body), iwfText) {
			t.Fatalf("got %d %q, want 403 and the IWF wording", resp.StatusCode, body)
		}
		for _, leak := range []string{"Rule", "Category", "statutory", "iwf.txt", "albums"} {
			if strings.Contains(string(body), leak) {
				t.Errorf("the page says %q: it must give no detail", leak)
			}
		}
	}
	checkLog := func(t *testing.T, host, method string) {
		t.Helper()
		l := e.logFor(t, host, method)
		if l.Rule != "statutory:iwf" || l.Verdict != "block" || statusNum(l.Status) != 403 || l.User != "bob" {
			t.Errorf("log line %+v, want bob blocked 403 by statutory:iwf", l)
		}
	}

	t.Run("plain HTTP, URL entry", func(t *testing.T) {
		c := e.client("bob", "bobpw")
		for _, u := range []string{"http://images.test/albums/1234/a.jpg", "http://images.test/albums%2F1234/a.jpg"} {
			resp, err := c.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			checkPage(t, resp)
		}
		checkLog(t, "images.test", "GET")
		resp, err := c.Get("http://images.test/albums/99/a.jpg")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 403 {
			t.Error("another path of the URL entry's host was blocked")
		}
	})
	t.Run("CONNECT, domain entry", func(t *testing.T) {
		c := e.client("bob", "bobpw")
		_, err := c.Get("https://www.whole-site.test/")
		if err == nil || !strings.Contains(err.Error(), "Forbidden") {
			t.Fatalf("CONNECT to a statutory domain: %v, want 403 Forbidden", err)
		}
		checkLog(t, "www.whole-site.test", "CONNECT")
	})
	t.Run("intercepted HTTPS, URL entry", func(t *testing.T) {
		port := tlsUpstream(t, ca, caKey, e.upstreamHandler(), "images.test")
		addr := interceptProxyCA(t, e, ca, "domains: [images.test]", port)
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			Proxy:           http.ProxyURL((&url2{host: addr, user: "bob", pass: "bobpw"}).url()),
			TLSClientConfig: &tls.Config{RootCAs: poolOf(ca)},
		}}
		resp, err := c.Get("https://images.test:" + strconv.Itoa(port) + "/albums/1234/b.jpg")
		if err != nil {
			t.Fatal(err)
		}
		checkPage(t, resp)
		checkLog(t, "images.test", "GET")
	})
}
