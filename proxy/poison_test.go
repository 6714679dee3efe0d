package proxy

import (
	"bytes"
	"context"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/schoolgate/schoolgate/dnsfilter"
	"github.com/schoolgate/schoolgate/policy"
	"github.com/schoolgate/schoolgate/report"
)

// poisonOrigin is an unlisted site whose search page and tag pages echo
// what the visitor typed, and a casino that is one (every page).
type poisonOrigin struct {
	srv  *httptest.Server
	port string
	mu   sync.Mutex
	hits map[string]int // host+path
}

func newPoisonOrigin(t *testing.T, casino []byte) *poisonOrigin {
	t.Helper()
	o := &poisonOrigin{hits: map[string]int{}}
	home := []byte(`<!DOCTYPE html><html><head><title>Hillside community noticeboard</title></head><body>
<h1>Hillside community noticeboard</h1><p>The library opens late on Thursdays. The bake sale raised money for the
school minibus. A grey cat was found near the park; ask at the post office.</p>
<form action="/search"><input name="q"></form></body></html>`)
	o.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.Host)
		o.mu.Lock()
		o.hits[host+r.URL.Path]++
		o.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if strings.HasPrefix(host, "spins") {
			w.Write(casino) //nolint:errcheck
			return
		}
		switch {
		case r.URL.Path == "/search":
			q := html.EscapeString(r.URL.Query().Get("q"))
			// the visitor's words, three times, as many search pages do
			w.Write([]byte(`<!DOCTYPE html><html><head><title>Search: ` + q + `</title></head><body><h1>Results for "` + q +
				`"</h1><p>Sorry, nothing matched ` + q + `.</p><p>Try again: ` + q + `</p></body></html>`)) //nolint:errcheck
		case strings.HasPrefix(r.URL.Path, "/tag/"):
			words := html.EscapeString(strings.ReplaceAll(strings.TrimPrefix(r.URL.Path, "/tag/"), "-", " "))
			w.Write([]byte(`<!DOCTYPE html><html><head><title>Posts tagged ` + words + `</title></head><body><h1>Posts tagged ` + words +
				`</h1><p>No posts are tagged ` + words + ` yet.</p></body></html>`)) //nolint:errcheck
		default:
			w.Write(home) //nolint:errcheck
		}
	}))
	o.srv.Listener = listenUpstream(t)
	o.srv.Start()
	t.Cleanup(o.srv.Close)
	_, o.port, _ = net.SplitHostPort(o.srv.Listener.Addr().String())
	return o
}

func (o *poisonOrigin) url(host, pathQuery string) string {
	return "http://" + host + ":" + o.port + pathQuery
}

func (o *poisonOrigin) count(host, path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits[host+path]
}

// startDNSFilter serves the DNS filter on engine (sharing it with a proxy,
// as `serve` does) and returns its address.
func startDNSFilter(t *testing.T, engine *policy.Engine, o dnsfilter.Options) string {
	t.Helper()
	o.Addr, o.Engine, o.UDPListeners = "127.0.0.1:0", engine, 1
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	srv, err := dnsfilter.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx) //nolint:errcheck
	})
	return srv.Addr()
}

// lookup asks the DNS filter at addr for name's A record, as a pupil's
// device would, and returns the rcode and whether an address came back.
func lookup(t *testing.T, addr, name string) (string, bool) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	c := &dns.Client{Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("asking for %s: %v", name, err)
	}
	return dns.RcodeToString[r.Rcode], len(r.Answer) > 0
}

// TestPoisoningEndToEnd is issue 11's attack through the real proxy, a
// real DNS filter on the same policy engine, the access log and the
// report: one pupil's searches on an unlisted site whose pages echo what
// was typed must not get the site blocked for anyone else, nor put anyone
// else in the report; a site that really is a casino, seen on several
// pages by several visitors, is remembered as a whole and still is after
// a restart. It uses only what the gateway shows from outside (statuses,
// DNS answers, the log, the journal's file, the report), so it also runs
// against the code before the fix, and fails there.
func TestPoisoningEndToEnd(t *testing.T) {
	casino := evalPage(t, "en-casino.html")
	origin := newPoisonOrigin(t, casino)
	e := newEnv(t, envConfig{requireAuth: true})
	users := testUsers
	for _, u := range []string{"alice", "carol", "dave", "erin"} {
		users += u + ",student," + hashPw(t, u+"pw") + "\n"
	}
	users += "bob,staff," + hashPw(t, "bobpw") + "\n"
	writeFile(t, filepath.Join(e.dir, "users.csv"), users)
	cfg := readFile(t, e.cfgPath)
	cfg = strings.Replace(cfg, "categories: [adult, gambling]", "categories: [adult, gambling, extremism]", 1)
	cfg += "dns: {upstreams: [\"" + serveTestDNS(t, nil, upstreamIP) + "\"]}\n"
	writeFile(t, e.cfgPath, cfg)
	e.engine.Swap(e.build())
	dnsAddr := startDNSFilter(t, e.engine, dnsfilter.Options{Log: e.alog})
	client := map[string]*http.Client{}
	for _, u := range []string{"alice", "carol", "dave", "erin", "bob"} {
		client[u] = e.client(u, u+"pw")
	}
	get := func(user, url string) (int, []byte) {
		t.Helper()
		resp, body := cget(t, client[user], url)
		return resp.StatusCode, body
	}

	const reflect, forum = "noticeboard.test", "forum.test"
	t.Run("one pupil's reflected pages", func(t *testing.T) {
		// alice searches for casino words, again and again, by query and
		// by path: each echoing page scores as gambling and is blocked
		// for her, as served
		for _, u := range []string{
			"/search?q=online+casino+free+spins+deposit+bonus",
			"/search?q=online+casino+free+spins+no+deposit+bonus+codes",
			"/search?q=live+casino+free+spins+jackpot+welcome+bonus",
			"/tag/online-casino-free-spins-deposit-bonus",
			"/tag/live-casino-free-spins-welcome-bonus",
		} {
			if status, body := get("alice", origin.url(reflect, u)); status != 403 || !strings.Contains(string(body), "classifier:gambling=") {
				t.Errorf("alice's own %s: status %d, want the block page of her page as served (rule classifier:gambling=…)", u, status)
			}
		}
		// and with extremism words on another such site
		if status, _ := get("alice", origin.url(forum, "/search?q=join+the+jihad+take+up+arms+martyrdom+operation")); status != 403 {
			t.Errorf("alice's extremism search: status %d", status)
		}
	})

	t.Run("nobody else is blocked", func(t *testing.T) {
		for _, c := range []struct{ user, host string }{
			{"carol", reflect}, {"bob", reflect}, {"dave", forum}, {"erin", forum},
		} {
			before := origin.count(c.host, "/")
			status, body := get(c.user, origin.url(c.host, "/"))
			if status != 200 || !bytes.Contains(body, []byte("Hillside community noticeboard")) {
				t.Errorf("%s opening %s: status %d, want the home page", c.user, c.host, status)
			}
			if origin.count(c.host, "/") != before+1 {
				t.Errorf("%s opening %s: the origin was not asked", c.user, c.host)
			}
		}
		// other pages of the sites are scored for themselves
		for _, c := range []struct{ user, host string }{{"carol", reflect}, {"dave", forum}} {
			if status, _ := get(c.user, origin.url(c.host, "/events")); status != 200 {
				t.Errorf("%s on %s/events: status %d", c.user, c.host, status)
			}
		}
		for _, host := range []string{reflect, forum} {
			if rcode, answered := lookup(t, dnsAddr, host); rcode != "NOERROR" || !answered {
				t.Errorf("DNS for %s: %s (answer %v), want the address", host, rcode, answered)
			}
		}
		// nothing about these sites was kept for a restart
		journal, err := os.ReadFile(filepath.Join(e.dir, "logs", "classified-hosts.jsonl"))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, host := range []string{reflect, forum} {
			if bytes.Contains(journal, []byte(`"`+host+`"`)) {
				t.Errorf("the journal remembers %s:\n%s", host, journal)
			}
		}
	})

	t.Run("the report blames nobody else", func(t *testing.T) {
		if err := e.alog.Flush(); err != nil {
			t.Fatal(err)
		}
		today := time.Now().UTC()
		r, err := report.Run(report.Options{Dir: filepath.Join(e.dir, "logs"), From: today, To: today, Location: time.UTC})
		if err != nil {
			t.Fatal(err)
		}
		var aliceForum int64
		for _, in := range r.Incidents {
			if in.Host != reflect && in.Host != forum {
				continue
			}
			if in.User != "alice" {
				t.Errorf("%s has an incident on %s (%d attempts, rule %s): only alice asked for those pages", in.User, in.Host, in.Count, in.Rule)
			}
			if in.Host == forum {
				aliceForum += in.Count
			}
		}
		if aliceForum != 1 {
			t.Errorf("alice's extremism search: %d incident attempts, want 1 (her own request)", aliceForum)
		}
		for _, u := range r.Users {
			if u.User == "dave" || u.User == "erin" || u.User == "carol" {
				if u.Incidents != 0 || u.Blocked != 0 {
					t.Errorf("%s: %d incidents, %d blocked", u.User, u.Incidents, u.Blocked)
				}
			}
		}
	})

	const spins = "spins.test"
	t.Run("a real casino is remembered once several visitors agree", func(t *testing.T) {
		// each page is blocked as served; one visitor's pages, and then two
		// visitors', do not make the site blocked as a whole
		for _, v := range []struct{ user, path string }{
			{"alice", "/"}, {"alice", "/promotions"}, {"carol", "/vip"},
		} {
			if status, _ := get(v.user, origin.url(spins, v.path)); status != 403 {
				t.Fatalf("%s on %s: status %d, want blocked as served", v.user, v.path, status)
			}
			if rcode, _ := lookup(t, dnsAddr, spins); rcode != "NOERROR" {
				t.Fatalf("DNS blocked after %s's %s: %s", v.user, v.path, rcode)
			}
		}
		// a third visitor's page: the site is remembered
		if status, _ := get("dave", origin.url(spins, "/about-us")); status != 403 {
			t.Fatalf("dave: status %d", status)
		}
		if rcode, _ := lookup(t, dnsAddr, spins); rcode != "NXDOMAIN" {
			t.Fatalf("DNS for a remembered casino: %s, want NXDOMAIN", rcode)
		}
		// a page nobody has seen is blocked from memory, the origin not asked
		if status, body := get("erin", origin.url(spins, "/new-page")); status != 403 || !strings.Contains(string(body), "classifier-memory:") {
			t.Fatalf("erin on a new page: status %d", status)
		}
		if origin.count(spins, "/new-page") != 0 {
			t.Fatal("a remembered host's new page went upstream")
		}
		if l := e.lastLog(t, spins); l.User != "erin" || !strings.HasPrefix(l.Rule, "classifier-memory:pages:gambling=") {
			t.Fatalf("erin's log line: %+v", l)
		}
		// staff may see it
		if status, _ := get("bob", origin.url(spins, "/new-page")); status != 200 {
			t.Fatalf("staff: status %d", status)
		}
	})

	t.Run("restart", func(t *testing.T) {
		// a second gateway on the same config and log folder: what was
		// remembered comes back from the journal
		engine := policy.NewEngine(e.build(), 1000, prometheus.NewRegistry())
		addr := startProxy(t, Options{
			Engine: engine, Identity: mustIdentity(t), Registerer: prometheus.NewRegistry(),
			RootCAs: e.roots, Resolver: testDNS(t), AdminAddr: "127.0.0.1:9",
			ResponseHeaderTimeout: 500 * time.Millisecond, DialTimeout: 2 * time.Second,
			HelloTimeout: 2 * time.Second, TunnelIdleTimeout: 5 * time.Second,
		})
		dns2 := startDNSFilter(t, engine, dnsfilter.Options{})
		if rcode, _ := lookup(t, dns2, spins); rcode != "NXDOMAIN" {
			t.Fatalf("DNS after a restart: %s", rcode)
		}
		for _, host := range []string{reflect, forum} {
			if rcode, answered := lookup(t, dns2, host); rcode != "NOERROR" || !answered {
				t.Errorf("DNS for %s after a restart: %s", host, rcode)
			}
		}
		c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
			Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: addr, User: url.UserPassword("carol", "carolpw")}),
		}}
		defer c.CloseIdleConnections()
		before := origin.count(spins, "/later")
		if resp, _ := cget(t, c, origin.url(spins, "/later")); resp.StatusCode != 403 {
			t.Fatalf("after a restart: status %d", resp.StatusCode)
		}
		if origin.count(spins, "/later") != before {
			t.Fatal("after a restart the remembered host's page went upstream")
		}
		if resp, _ := cget(t, c, origin.url(reflect, "/")); resp.StatusCode != 200 {
			t.Fatalf("the reflecting site after a restart: status %d", resp.StatusCode)
		}
	})
}
