package proxy

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/schoolgate/schoolgate/categories/classify"
	"github.com/schoolgate/schoolgate/internal/testenv"
	"github.com/schoolgate/schoolgate/logging"
	"github.com/schoolgate/schoolgate/policy"
)

func evalPage(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "categories", "classify", "testdata", "pages", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pageUpstream serves pages by path on upstreamIP, for any Host: the test
// resolver sends every *.test name there. It counts requests per host and
// remembers the Accept-Encoding it was sent.
type pageUpstream struct {
	srv   *httptest.Server
	port  string
	mu    sync.Mutex
	hits  map[string]int
	accEn map[string]string
}

func newPageUpstream(t testing.TB, pages map[string][]byte, ctype map[string]string) *pageUpstream {
	t.Helper()
	u := &pageUpstream{hits: map[string]int{}, accEn: map[string]string{}}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.Host)
		u.mu.Lock()
		u.hits[host]++
		u.accEn[host] = r.Header.Get("Accept-Encoding")
		u.mu.Unlock()
		body, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		ct := ctype[r.URL.Path]
		if ct == "" {
			ct = "text/html; charset=utf-8"
		}
		w.Header().Set("Content-Type", ct)
		if strings.HasSuffix(r.URL.Path, ".gz") {
			w.Header().Set("Content-Encoding", "gzip")
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body) //nolint:errcheck
	}))
	u.srv.Listener = listenUpstream(t)
	u.srv.Start()
	t.Cleanup(u.srv.Close)
	_, u.port, _ = net.SplitHostPort(u.srv.Listener.Addr().String())
	return u
}

func (u *pageUpstream) url(host, path string) string { return "http://" + host + ":" + u.port + path }

func (u *pageUpstream) count(host string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[host]
}

func gzipBytes(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b) //nolint:errcheck
	w.Close()
	return out.Bytes()
}

func cget(t *testing.T, c *http.Client, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// rawLogLines returns today's access-log lines as maps, to see optional fields.
func rawLogLines(t *testing.T, e *env, host string) []map[string]any {
	t.Helper()
	time.Sleep(50 * time.Millisecond)
	if err := e.alog.Flush(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(logging.PathFor(filepath.Join(e.dir, "logs"), time.Now().UTC()))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["host"] == host {
			out = append(out, m)
		}
	}
	return out
}

func TestContentClassifier(t *testing.T) {
	casino := evalPage(t, "en-casino.html")
	help := evalPage(t, "allow-en-gambling-help.html")
	video := bytes.Repeat([]byte("online casino free spins "), 40000) // 1 MB that is not HTML
	up := newPageUpstream(t, map[string][]byte{
		"/":          casino,
		"/more":      casino,
		"/help":      help,
		"/casino.gz": gzipBytes(casino),
		"/video":     video,
	}, map[string]string{"/video": "video/mp4"})
	e := newEnv(t, envConfig{requireAuth: true})
	alice := e.client("alice", "alicepw") // student: blocks gambling
	bob := e.client("bob", "bobpw")       // staff: allows gambling

	t.Run("gambling help page passes untouched", func(t *testing.T) {
		resp, body := cget(t, alice, up.url("gamblinghelp.test", "/help"))
		if resp.StatusCode != 200 || !bytes.Equal(body, help) {
			t.Fatalf("status %d, %d bytes; want 200 and the page's %d bytes", resp.StatusCode, len(body), len(help))
		}
		if d := e.engine.Decide(policy.Args{Host: "gamblinghelp.test", Time: time.Now()}); d.Verdict != policy.Allow || !d.Categories.Empty() {
			t.Fatalf("help host remembered: %+v", d)
		}
	})

	t.Run("casino page blocked for a pupil", func(t *testing.T) {
		resp, body := cget(t, alice, up.url("luckyspins.test", "/"))
		if resp.StatusCode != 403 || !strings.Contains(string(body), "classifier:gambling=") {
			t.Fatalf("status %d, body %.300s", resp.StatusCode, body)
		}
		lines := rawLogLines(t, e, "luckyspins.test")
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last["rule"].(string), "classifier:gambling=") || !strings.HasPrefix(last["classified"].(string), "gambling=") ||
			last["verdict"] != "block" || statusNum(last["status"]) != 403 {
			t.Fatalf("log line %v", last)
		}
		if cats, _ := last["categories"].([]any); len(cats) == 0 || cats[0] != "gambling" {
			t.Fatalf("log categories %v", last["categories"])
		}
	})

	t.Run("remembered: the page, not the host", func(t *testing.T) {
		// the same page again: decided from memory, upstream not asked
		before := up.count("luckyspins.test")
		resp, _ := cget(t, alice, up.url("luckyspins.test", "/"))
		if resp.StatusCode != 403 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if up.count("luckyspins.test") != before {
			t.Fatal("the upstream was asked again")
		}
		lines := rawLogLines(t, e, "luckyspins.test")
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last["rule"].(string), "classifier:gambling=") || !strings.HasPrefix(last["classified"].(string), "gambling=") {
			t.Fatalf("log line %v", last)
		}
		// another page of the host is scored as served (and blocked: it is a casino too)
		if resp, _ := cget(t, alice, up.url("luckyspins.test", "/more")); resp.StatusCode != 403 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if up.count("luckyspins.test") != before+1 {
			t.Fatal("another page was decided without asking upstream")
		}
		// one visitor's pages never condemn the host: DNS is not blocked
		if d := e.engine.Decide(policy.Args{Host: "luckyspins.test", Time: time.Now()}); d.Verdict != policy.Allow || d.Classified != "" {
			t.Fatalf("DNS decision %+v", d)
		}
		// kept on disk for a restart and for `schoolgate check`
		mem, err := classify.LoadMemory(classify.JournalPath(filepath.Join(e.dir, "logs")), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := mem.Classified("luckyspins.test", "/", 0, time.Now()); !ok || r.Host || !strings.HasPrefix(r.Note, "gambling=") {
			t.Fatalf("journal: %+v %v", r, ok)
		}
		if r, ok := mem.Classified("luckyspins.test", "", 0, time.Now()); ok {
			t.Fatalf("journal remembers the host: %+v", r)
		}
	})

	t.Run("staff may see it", func(t *testing.T) {
		resp, body := cget(t, bob, up.url("luckyspins.test", "/"))
		if resp.StatusCode != 200 || !bytes.Equal(body, casino) {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})

	t.Run("gzip page, br not asked for", func(t *testing.T) {
		resp, _ := cget(t, alice, up.url("gzipcasino.test", "/casino.gz"), "Accept-Encoding", "gzip, deflate, br, zstd")
		if resp.StatusCode != 403 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		up.mu.Lock()
		ae := up.accEn["gzipcasino.test"]
		up.mu.Unlock()
		if ae != "gzip, deflate" {
			t.Fatalf("upstream asked for %q", ae)
		}
	})

	t.Run("not HTML is not sniffed", func(t *testing.T) {
		resp, body := cget(t, alice, up.url("videos.test", "/video"))
		if resp.StatusCode != 200 || !bytes.Equal(body, video) {
			t.Fatalf("status %d, %d bytes", resp.StatusCode, len(body))
		}
	})

	t.Run("host names are not read by default", func(t *testing.T) {
		// Without content.host_names, a host nothing lists is unclassified
		// until its pages say otherwise: this help page passes.
		if resp, _ := cget(t, alice, up.url("bestcasinobonus.test", "/help")); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})

	t.Run("a listed host is never classified", func(t *testing.T) {
		// school.test is listed as education: its casino-like page passes.
		resp, _ := cget(t, alice, up.url("school.test", "/"))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}

func TestContentClassifierOff(t *testing.T) {
	casino := evalPage(t, "en-casino.html")
	up := newPageUpstream(t, map[string][]byte{"/": casino}, nil)
	e := newEnv(t, envConfig{requireAuth: true, opts: func(o *Options) { o.Content.Off = true }})
	resp, body := cget(t, e.client("alice", "alicepw"), up.url("luckyspins.test", "/"))
	if resp.StatusCode != 200 || !bytes.Equal(body, casino) {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func benchContent(b *testing.B, content ContentOptions) {
	page := testenv.CleanPage()
	up := newPageUpstream(b, map[string][]byte{"/page": page}, nil)
	e := newEnv(b, envConfig{requireAuth: true, opts: func(o *Options) { o.Content = content }})
	b.SetBytes(int64(len(page)))
	classify.Default().Score(page) // build the embedded lists outside the measurement
	classify.DefaultHost().Classify("warm.example")
	// Process CPU per request (client, proxy and upstream are all here):
	// on a shared machine wall time mostly measures the neighbours.
	cpu0 := testenv.ProcessCPU()
	benchClient(b, e.addr, up.url("news.test", "/page"), "alice:alicepw")
	b.ReportMetric(float64(testenv.ProcessCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkProxyHTMLClassifyOff, …On and …OnEveryPage compare the proxy's
// throughput on an unclassified host's 40 KiB HTML page without content
// classification, with it (a host's first pages scored, then one in
// contentSampleEvery), and scoring every page.
func BenchmarkProxyHTMLClassifyOff(b *testing.B) { benchContent(b, ContentOptions{Off: true}) }
func BenchmarkProxyHTMLClassifyOn(b *testing.B)  { benchContent(b, ContentOptions{}) }
func BenchmarkProxyHTMLClassifyOnEveryPage(b *testing.B) {
	benchContent(b, ContentOptions{ScoreEveryPage: true})
}

func TestContentSampling(t *testing.T) {
	c := &content{}
	c.watch, _ = simplelru.NewLRU[string, *watched](16, nil)
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	scored := 0
	for i := 0; i < contentFirstPages+4*contentSampleEvery; i++ {
		if c.shouldScore("news.test", t0) {
			scored++
			c.scoredClean("news.test")
		}
	}
	// the first pages, then one in contentSampleEvery
	if want := contentFirstPages + 4; scored < want-1 || scored > want+1 {
		t.Fatalf("scored %d pages, want about %d", scored, want)
	}
	// a host not seen for contentWatch starts again
	if !c.shouldScore("news.test", t0.Add(contentWatch)) {
		t.Fatal("not rescored after the watch period")
	}
	c.every = true
	for i := 0; i < 10; i++ {
		if !c.shouldScore("news.test", t0) {
			t.Fatal("ScoreEveryPage skipped a page")
		}
	}
}

// TestContentConfig: content.enabled turns the classifier off, and
// content.phrase_files add the school's own phrases.
func TestContentConfig(t *testing.T) {
	up := newPageUpstream(t, map[string][]byte{
		"/":      evalPage(t, "en-casino.html"),
		"/local": []byte("<html><title>Zorblax Arena</title><p>zorblax arena tournament, zorblax arena skins</p></html>"),
	}, nil)
	e := newEnv(t, envConfig{requireAuth: true})
	alice := e.client("alice", "alicepw")
	// a config with a phrase file of the school's, and games blocked
	cfg := readFile(t, e.cfgPath)
	cfg = strings.Replace(cfg, "categories: [adult, gambling]", "categories: [adult, gambling, games]", 1)
	writeFile(t, filepath.Join(e.dir, "local-games.txt"), "category: games\n4 zorblax arena\n4 arena skins\n") // two phrases: one alone never decides
	writeFile(t, e.cfgPath, cfg+"content:\n  phrase_files: [local-games.txt]\n")
	e.engine.Swap(e.build())
	if resp, body := cget(t, alice, up.url("zorblax.test", "/local")); resp.StatusCode != 403 || !strings.Contains(string(body), "classifier:games=") {
		t.Fatalf("school phrase: status %d", resp.StatusCode)
	}
	// content.enabled: false
	writeFile(t, e.cfgPath, cfg+"content:\n  enabled: false\n")
	e.engine.Swap(e.build())
	if resp, _ := cget(t, alice, up.url("luckyspins2.test", "/")); resp.StatusCode != 200 {
		t.Fatalf("disabled: status %d", resp.StatusCode)
	}
}

// TestContentHostNames: with content.host_names, the policy reads the words
// of an unlisted host's name; the proxy blocks it before asking upstream,
// and innocent place names stay open.
func TestContentHostNames(t *testing.T) {
	up := newPageUpstream(t, map[string][]byte{"/help": evalPage(t, "allow-en-gambling-help.html")}, nil)
	e := newEnv(t, envConfig{requireAuth: true})
	alice := e.client("alice", "alicepw")
	writeFile(t, e.cfgPath, readFile(t, e.cfgPath)+"content:\n  host_names: true\n")
	e.engine.Swap(e.build())

	resp, body := cget(t, alice, up.url("bestcasinobonus.test", "/help"))
	if resp.StatusCode != 403 || !strings.Contains(string(body), "host name reads as gambling") {
		t.Fatalf("status %d body %.300s", resp.StatusCode, body)
	}
	if up.count("bestcasinobonus.test") != 0 {
		t.Fatal("upstream contacted for a host blocked by its name")
	}
	lines := rawLogLines(t, e, "bestcasinobonus.test")
	if last := lines[len(lines)-1]; last["rule"] != "student#2" || !strings.HasPrefix(last["classified"].(string), "host:gambling=") {
		t.Fatalf("log line %v", last)
	}
	for _, h := range []string{"penistone.test", "scunthorpe.test", "expertsexchange.test"} {
		if resp, _ := cget(t, alice, up.url(h, "/help")); resp.StatusCode != 200 {
			t.Errorf("%s: status %d", h, resp.StatusCode)
		}
	}
}

// TestContentClassifierIntercepted: an intercepted HTTPS page is sniffed
// and scored like a plain HTTP one.
func TestContentClassifierIntercepted(t *testing.T) {
	e := newEnv(t, envConfig{requireAuth: true})
	ca, caKey := testCA(t, e.dir)
	pool := poolOf(ca)
	casino, help := evalPage(t, "en-casino.html"), evalPage(t, "allow-en-gambling-help.html")
	port := tlsUpstream(t, ca, caKey, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.URL.Path == "/help" {
			w.Write(help) //nolint:errcheck
			return
		}
		w.Write(casino) //nolint:errcheck
	}), "spins.test")
	addr := interceptProxyCA(t, e, ca, "domains: [spins.test]", port)
	proxyURL := &url2{host: addr, user: "alice", pass: "alicepw"}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy:           http.ProxyURL(proxyURL.url()),
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}
	defer c.CloseIdleConnections() // let the shutdown find no tunnel open
	base := "https://spins.test:" + strconv.Itoa(port)
	if resp, body := cget(t, c, base+"/help"); resp.StatusCode != 200 || !bytes.Equal(body, help) {
		t.Fatalf("help page: %d", resp.StatusCode)
	}
	resp, body := cget(t, c, base+"/")
	if resp.StatusCode != 403 || !strings.Contains(string(body), "classifier:gambling=") {
		t.Fatalf("casino page: %d %.200s", resp.StatusCode, body)
	}
	if resp.TLS == nil || resp.TLS.PeerCertificates[0].Issuer.CommonName != "Test School CA" {
		t.Fatal("not intercepted")
	}
}
