package proxy

import (
	"bufio"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/internal/testenv"
)

// The addresses the lock-in tests' resolver gives: an engine's ordinary
// host names resolve to normalIP, its SafeSearch names to safeIP, where
// test upstreams on one port say which they are.
const (
	normalIP = "127.0.0.3"
	safeIP   = "127.0.0.4"
)

// lockinNames maps the names the lock-in tests use to their addresses.
var lockinNames = map[string]string{
	"www.google.com": normalIP, "www.google.co.uk": normalIP, "www.youtube.com": normalIP,
	"www.bing.com": normalIP, "duckduckgo.com": normalIP, "cloudflare-ech.com": upstreamIP,
	"forcesafesearch.google.com": safeIP, "restrict.youtube.com": safeIP,
	"restrictmoderate.youtube.com": safeIP, "strict.bing.com": safeIP, "safe.duckduckgo.com": safeIP,
}

// samePortServers starts a server with handler h on normalIP and safeIP,
// on one port (so a URL's port is the same whichever address it is dialled
// on), plain, or TLS with tlsCfg when it is not nil (httptest's
// certificate when it names none), and returns the port.
func samePortServers(t *testing.T, h func(who string) http.Handler, tlsCfg *tls.Config) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		safeLn, err := net.Listen("tcp", safeIP+":0")
		if err != nil {
			t.Skipf("cannot listen on %s: %v", safeIP, err)
		}
		port := safeLn.Addr().(*net.TCPAddr).Port
		normalLn, err := net.Listen("tcp", net.JoinHostPort(normalIP, strconv.Itoa(port)))
		if err != nil {
			safeLn.Close()
			continue
		}
		for _, s := range []struct {
			ln  net.Listener
			who string
		}{{normalLn, "normal"}, {safeLn, "safe"}} {
			srv := httptest.NewUnstartedServer(h(s.who))
			srv.Listener = s.ln
			if tlsCfg != nil {
				srv.TLS = tlsCfg.Clone()
				srv.StartTLS()
			} else {
				srv.Start()
			}
			t.Cleanup(srv.Close)
		}
		return port
	}
	t.Skip("no port free on both test addresses")
	return 0
}

// whoHandler answers "WHO query=RAWQUERY restrict=HEADER,…".
func whoHandler(who string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s query=%s restrict=%s", who, r.URL.RawQuery, strings.Join(r.Header.Values("YouTube-Restrict"), ","))
	})
}

// lockinEnv is the test proxy with SafeSearch on for students (student#1
// blocks ip-literal and ech), bbc.test/iplayer listed as gambling (blocked
// for students by student#3, not for staff) and bbc.test/bitesize as education, the
// lock-in resolver, and the given extra CONNECT ports.
func lockinEnv(t *testing.T, ports ...int) *env {
	t.Helper()
	return newEnv(t, lockinConfig(t, ports...))
}

// lockinConfig is lockinEnv's configuration, for a test to change.
func lockinConfig(t *testing.T, ports ...int) envConfig {
	t.Helper()
	return envConfig{requireAuth: true, extraPorts: ports,
		opts: func(o *Options) { o.Resolver = testDNSWith(t, lockinNames, upstreamIP) },
		edit: func(cfg string) string {
			cfg = strings.Replace(cfg, "  student:\n    rules:\n", "  student:\n    safe_search: true\n    rules:\n"+
				"      - action: block\n        categories: [ip-literal, ech]\n", 1)
			return strings.Replace(cfg, "lists:\n", "lists:\n  - category: gambling\n    urls: [bbc.test/iplayer]\n"+
				"  - category: education\n    urls: [bbc.test/bitesize]\n", 1)
		}}
}

func getBody(t *testing.T, c *http.Client, u string, h http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// lockCase is a request through the proxy and what the SafeSearch test
// upstream that answers it says (whoHandler).
type lockCase struct {
	name   string
	c      *http.Client
	url    string
	header http.Header
	want   string
}

func runLockCases(t *testing.T, cases []lockCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			status, body := getBody(t, tt.c, tt.url, tt.header)
			if status != 200 || body != tt.want {
				t.Errorf("GET %s: %d %q, want 200 %q", tt.url, status, body, tt.want)
			}
		})
	}
}

// TestSafeSearchPlainHTTP: a student's plain HTTP request to an engine is
// dialled to the SafeSearch address and carries the engine's lock, which
// the client cannot remove; staff reach the ordinary address untouched.
func TestSafeSearchPlainHTTP(t *testing.T) {
	port := samePortServers(t, whoHandler, nil)
	e := lockinEnv(t)
	alice, bob := e.client("alice", "alicepw"), e.client("bob", "bobpw")
	hp := func(host string) string { return "http://" + net.JoinHostPort(host, strconv.Itoa(port)) }
	off := http.Header{"Youtube-Restrict": {"Off"}}
	runLockCases(t, []lockCase{
		{"google", alice, hp("www.google.com") + "/search?q=cats&safe=off", nil, "safe query=q=cats&safe=active restrict="},
		{"google country, safe twice", alice, hp("www.google.co.uk") + "/search?safe=off&q=cats&SAFE=images", nil, "safe query=q=cats&safe=active restrict="},
		{"bing", alice, hp("www.bing.com") + "/search?q=cats&adlt=off", nil, "safe query=q=cats&adlt=strict restrict="},
		{"duckduckgo", alice, hp("duckduckgo.com") + "/?q=cats&kp=-2", nil, "safe query=q=cats&kp=1 restrict="},
		{"youtube header replaced", alice, hp("www.youtube.com") + "/watch?v=x", off, "safe query=v=x restrict=Strict"},
		{"youtube header named hop-by-hop", alice, hp("www.youtube.com") + "/watch?v=x",
			http.Header{"Connection": {"YouTube-Restrict"}}, "safe query=v=x restrict=Strict"},
		{"staff google untouched", bob, hp("www.google.com") + "/search?q=cats&safe=off", nil, "normal query=q=cats&safe=off restrict="},
		{"staff youtube untouched", bob, hp("www.youtube.com") + "/watch?v=x", off, "normal query=v=x restrict=Off"},
	})
	// Each request is counted as it ends, just after its answer.
	for engine, want := range map[string]float64{"google": 2, "bing": 1, "duckduckgo": 1, "youtube": 2} {
		got := testenv.MetricValue(e.p.m.safeSearchBy[engine])
		for deadline := time.Now().Add(5 * time.Second); got != want && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			got = testenv.MetricValue(e.p.m.safeSearchBy[engine])
		}
		if got != want {
			t.Errorf("schoolgate_proxy_safesearch_total{engine=%q} = %v, want %v", engine, got, want)
		}
	}
	if l := e.lastLog(t, "www.google.co.uk"); !l.SafeSearch || !strings.Contains(l.URL, "safe=active") || strings.Contains(l.URL, "safe=off") {
		t.Errorf("log line %+v: want safe_search true and the locked URL", l)
	}
}

// TestSafeSearchConnect: a student's CONNECT to an engine is dialled to
// the SafeSearch address (the test resolver maps it to an upstream of its
// own), a staff member's to the ordinary one; a tunnel to another name
// whose ClientHello names the engine is cut.
func TestSafeSearchConnect(t *testing.T) {
	port := samePortServers(t, whoHandler, &tls.Config{})
	e := lockinEnv(t, port)
	for _, tt := range []struct {
		user, pass, host string
		want             string
	}{
		{"alice", "alicepw", "www.google.com", "safe"},
		{"alice", "alicepw", "www.youtube.com", "safe"},
		{"bob", "bobpw", "www.google.com", "normal"},
	} {
		t.Run(tt.user+" "+tt.host, func(t *testing.T) {
			conn := connectTunnel(t, e.addr, tt.user, tt.pass, net.JoinHostPort(tt.host, strconv.Itoa(port)))
			defer conn.Close()
			tc := tls.Client(conn, &tls.Config{ServerName: tt.host, InsecureSkipVerify: true}) //nolint:gosec // which upstream answers is the test
			body, err := tlsGet(tc, tt.host, "/search?q=x")
			if err != nil {
				t.Fatal(err)
			}
			if who, _, _ := strings.Cut(body, " "); who != tt.want {
				t.Errorf("CONNECT %s as %s reached the %s upstream (%q), want %s", tt.host, tt.user, who, body, tt.want)
			}
		})
	}
	waitLog(t, e, func(l logLine) bool { return l.Host == "www.youtube.com" && l.Method == "CONNECT" && l.SafeSearch })

	// SafeSearch walked round: a tunnel to the engine's ordinary address
	// whose ClientHello names www.google.com (which resolves there).
	conn := connectTunnel(t, e.addr, "alice", "alicepw", net.JoinHostPort(normalIP, strconv.Itoa(port)))
	defer conn.Close()
	tc := tls.Client(conn, &tls.Config{ServerName: "www.google.com", InsecureSkipVerify: true}) //nolint:gosec
	tc.SetDeadline(time.Now().Add(5 * time.Second))                                             //nolint:errcheck
	if err := tc.Handshake(); err == nil {
		t.Error("a tunnel to Google's ordinary address with SNI www.google.com completed its handshake")
	}
	waitLog(t, e, func(l logLine) bool {
		return l.Host == "www.google.com" && l.Verdict == "block" && l.Rule == ruleSafeSearch
	})
	// Staff may: nothing to lock.
	conn2 := connectTunnel(t, e.addr, "bob", "bobpw", net.JoinHostPort(normalIP, strconv.Itoa(port)))
	defer conn2.Close()
	tc2 := tls.Client(conn2, &tls.Config{ServerName: "www.google.com", InsecureSkipVerify: true}) //nolint:gosec
	if body, err := tlsGet(tc2, "www.google.com", "/"); err != nil || !strings.HasPrefix(body, "normal") {
		t.Errorf("staff tunnel to Google's address: %q, %v", body, err)
	}
}

// TestSafeSearchIntercepted: inside an intercepted tunnel each request is
// sent to the engine's SafeSearch address with its lock, as plain HTTP is.
func TestSafeSearchIntercepted(t *testing.T) {
	e := lockinEnv(t)
	ca, caKey := testCA(t, e.dir)
	port := samePortServers(t, whoHandler, &tls.Config{Certificates: []tls.Certificate{
		leafCert(t, ca, caKey, "www.google.com", "www.youtube.com")}})
	addr := interceptProxyCA(t, e, ca, "domains: [www.google.com, www.youtube.com]", port)
	client := func(user, pass string) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: addr, User: url.UserPassword(user, pass)}),
			TLSClientConfig: &tls.Config{RootCAs: poolOf(ca)},
		}}
	}
	hp := func(host string) string { return "https://" + net.JoinHostPort(host, strconv.Itoa(port)) }
	off := http.Header{"Youtube-Restrict": {"Off"}}
	runLockCases(t, []lockCase{
		{"google", client("alice", "alicepw"), hp("www.google.com") + "/search?q=cats&safe=off", nil, "safe query=q=cats&safe=active restrict="},
		{"youtube", client("alice", "alicepw"), hp("www.youtube.com") + "/watch?v=x", off, "safe query=v=x restrict=Strict"},
		{"staff", client("bob", "bobpw"), hp("www.google.com") + "/search?q=cats&safe=off", nil, "normal query=q=cats&safe=off restrict="},
	})
	waitLog(t, e, func(l logLine) bool { return l.Host == "www.youtube.com" && l.Method == "GET" && l.SafeSearch })
}

// connectTunnel opens a CONNECT tunnel to authority through the proxy.
func connectTunnel(t *testing.T, proxyAddr, user, pass, authority string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	req := &http.Request{Method: "CONNECT", URL: &url.URL{Opaque: authority}, Host: authority, Header: http.Header{}}
	req.SetBasicAuth(user, pass)
	req.Header["Proxy-Authorization"] = req.Header["Authorization"]
	delete(req.Header, "Authorization")
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT %s: %s", authority, resp.Status)
	}
	conn.SetDeadline(time.Time{}) //nolint:errcheck
	return conn
}

// tlsGet sends one GET over an established tunnel's TLS client.
func tlsGet(tc *tls.Conn, host, path string) (string, error) {
	tc.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	if _, err := fmt.Fprintf(tc, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// decodingOrigin serves as nginx does with merge_slashes: the path is
// percent-decoded (%2F included) and cleaned before it is mapped, so
// /bitesize%2F..%2Fiplayer is /iplayer.
func decodingOrigin(string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := url.PathUnescape(r.URL.EscapedPath())
		if err != nil {
			http.Error(w, "bad path", 400)
			return
		}
		switch p = path.Clean(p); {
		case strings.HasPrefix(p, "/iplayer"):
			io.WriteString(w, "IPLAYER") //nolint:errcheck
		case strings.HasPrefix(p, "/bitesize"):
			io.WriteString(w, "BITESIZE") //nolint:errcheck
		default:
			io.WriteString(w, "OTHER "+p) //nolint:errcheck
		}
	})
}

// TestEncodedPathsAgainstDecodingOrigin: a URL entry (bbc.test/iplayer,
// blocked for students) cannot be walked round with %2F: the
// origin serves iPlayer for those paths, the proxy blocks them, and the
// log names the path decided on.
func TestEncodedPathsAgainstDecodingOrigin(t *testing.T) {
	origin := httptest.NewUnstartedServer(decodingOrigin(""))
	origin.Listener = listenUpstream(t)
	origin.Start()
	t.Cleanup(origin.Close)
	port := origin.Listener.Addr().(*net.TCPAddr).Port
	e := lockinEnv(t)
	alice, bob := e.client("alice", "alicepw"), e.client("bob", "bobpw")
	base := "http://" + net.JoinHostPort("bbc.test", strconv.Itoa(port))
	direct := &http.Client{Timeout: 5 * time.Second}
	for _, tt := range []struct {
		path, origin string // what the origin serves for path
		student      int    // the status a student gets through the proxy
	}{
		{"/iplayer", "IPLAYER", 403},
		{"/%2Fiplayer", "IPLAYER", 403},
		{"/bitesize%2F..%2Fiplayer", "IPLAYER", 403},
		{"/bitesize%2f%2e%2e%2fiplayer", "IPLAYER", 403},
		{"/bitesize%2Fmaths", "BITESIZE", 200},
		{"/bitesize/maths", "BITESIZE", 200},
	} {
		t.Run(tt.path, func(t *testing.T) {
			// The origin really decodes: the path reaches iPlayer there.
			if _, body := getBody(t, direct, origin.URL+tt.path, nil); body != tt.origin {
				t.Fatalf("origin serves %q for %s, want %q: the test origin does not decode as nginx does", body, tt.path, tt.origin)
			}
			if status, body := getBody(t, alice, base+tt.path, nil); status != tt.student || status == 200 && body != tt.origin {
				t.Errorf("student GET %s: %d %q, want %d", tt.path, status, body, tt.student)
			}
			if status, body := getBody(t, bob, base+tt.path, nil); status != 200 || body != tt.origin {
				t.Errorf("staff GET %s: %d %q, want 200 %q", tt.path, status, body, tt.origin)
			}
		})
	}
	// Every blocked request's line shows the path decided on.
	blocked := 0
	for _, l := range e.logLines(t) {
		if l.User != "alice" || l.Verdict != "block" {
			continue
		}
		blocked++
		if l.URL != base+"/iplayer" || l.Rule != "student#3" {
			t.Errorf("blocked line %+v: want url %s/iplayer (the reading decided on), rule student#3", l, base)
		}
	}
	if blocked != 4 {
		t.Errorf("%d student lines blocked, want 4", blocked)
	}
}

// waitLog returns the last access-log line that ok accepts, waiting a
// while for it to be written.
func waitLog(t *testing.T, e *env, ok func(logLine) bool) logLine {
	t.Helper()
	for i := 0; i < 100; i++ {
		ls := e.logLines(t)
		for j := len(ls) - 1; j >= 0; j-- {
			if ok(ls[j]) {
				return ls[j]
			}
		}
	}
	t.Fatal("no such access-log line")
	return logLine{}
}

// echConfigList returns an ECHConfigList (RFC 9849 §4) with one X25519
// configuration whose public name is publicName.
func echConfigList(t testing.TB, publicName string) []byte {
	t.Helper()
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := k.PublicKey().Bytes()
	c := []byte{7}                               // config_id
	c = binary.BigEndian.AppendUint16(c, 0x0020) // DHKEM(X25519, HKDF-SHA256)
	c = binary.BigEndian.AppendUint16(c, uint16(len(pub)))
	c = append(c, pub...)
	c = binary.BigEndian.AppendUint16(c, 4)      // cipher suites
	c = binary.BigEndian.AppendUint16(c, 0x0001) // HKDF-SHA256
	c = binary.BigEndian.AppendUint16(c, 0x0001) // AES-128-GCM
	c = append(c, 0, byte(len(publicName)))      // maximum_name_length, public_name
	c = append(c, publicName...)
	c = binary.BigEndian.AppendUint16(c, 0) // extensions
	cfg := binary.BigEndian.AppendUint16(nil, 0xfe0d)
	cfg = binary.BigEndian.AppendUint16(cfg, uint16(len(c)))
	cfg = append(cfg, c...)
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(cfg))), cfg...)
}

func TestParseClientHelloECH(t *testing.T) {
	ech := clientHello(t, &tls.Config{ServerName: "hidden.example", MinVersion: tls.VersionTLS13,
		EncryptedClientHelloConfigList: echConfigList(t, "cloudflare-ech.com")})
	h, err := parseClientHello(ech)
	if err != nil || h.sni != "cloudflare-ech.com" || !h.ech {
		t.Errorf("ECH hello: %+v, %v; want the public name and ech", h, err)
	}
	plain := clientHello(t, &tls.Config{ServerName: "www.example.org"})
	if h, err := parseClientHello(plain); err != nil || h.sni != "www.example.org" || h.ech {
		t.Errorf("plain hello: %+v, %v", h, err)
	}
	grease := withExtension(t, plain, extECH, []byte{0, 0, 1, 0, 1, 0x8c, 0, 0})
	if h, err := parseClientHello(grease); err != nil || h.sni != "www.example.org" || !h.ech {
		t.Errorf("hello with a GREASE-style ECH extension: %+v, %v", h, err)
	}
	dup := withExtension(t, plain, 0, []byte{0, 8, 0, 0, 5, 'a', '.', 'b', 'c', 'd'})
	if _, err := parseClientHello(dup); !errors.Is(err, errMalformed) {
		t.Errorf("hello with two server_name extensions: %v, want malformed", err)
	}
}

// withExtension returns the one-record ClientHello hello with an extension
// appended, its lengths fixed up.
func withExtension(t testing.TB, hello []byte, typ uint16, body []byte) []byte {
	t.Helper()
	out := append([]byte(nil), hello...)
	ext := binary.BigEndian.AppendUint16(nil, typ)
	ext = binary.BigEndian.AppendUint16(ext, uint16(len(body)))
	ext = append(ext, body...)
	// record header 5, handshake header 4, then version 2, random 32,
	// session id, cipher suites, compression, extensions.
	i := 5 + 4 + 2 + 32
	i += 1 + int(out[i])
	i += 2 + int(binary.BigEndian.Uint16(out[i:]))
	i += 1 + int(out[i])
	binary.BigEndian.PutUint16(out[i:], binary.BigEndian.Uint16(out[i:])+uint16(len(ext)))
	binary.BigEndian.PutUint16(out[3:], binary.BigEndian.Uint16(out[3:])+uint16(len(ext)))
	n := int(out[6])<<16 | int(out[7])<<8 | int(out[8]) + len(ext)
	out[6], out[7], out[8] = byte(n>>16), byte(n>>8), byte(n)
	return append(out, ext...)
}

// TestHiddenDestinations: a tunnel to an IP address without an SNI that
// resolves to it is decided as ip-literal, and ECH that can hide the name
// as ech: refused for students, whose profile blocks them, relayed for
// staff. A browser's decoy (GREASE) ECH naming the CONNECT host is not
// ech.
func TestHiddenDestinations(t *testing.T) {
	e := lockinEnv(t)
	ipAuthority := net.JoinHostPort(upstreamIP, strconv.Itoa(e.tlsPort))
	handshake := func(user, pass, authority string, cfg *tls.Config) error {
		t.Helper()
		conn := connectTunnel(t, e.addr, user, pass, authority)
		defer conn.Close()
		tc := tls.Client(conn, cfg)
		tc.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		return tc.Handshake()
	}
	noSNI := &tls.Config{ServerName: upstreamIP, InsecureSkipVerify: true}                                   //nolint:gosec // an address: no SNI is sent
	echCfg := &tls.Config{ServerName: "casino.test", MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, //nolint:gosec
		EncryptedClientHelloConfigList: echConfigList(t, "cloudflare-ech.com")}
	frontAuthority := net.JoinHostPort("cloudflare-ech.com", strconv.Itoa(e.tlsPort))

	t.Run("student ip-literal", func(t *testing.T) {
		if err := handshake("alice", "alicepw", ipAuthority, noSNI); err == nil {
			t.Fatal("a student's tunnel to an address without SNI completed its handshake")
		}
		waitLog(t, e, func(l logLine) bool {
			return l.Host == upstreamIP && l.Verdict == "block" && l.Rule == "student#1" &&
				strings.Join(l.Categories, ",") == "ip-literal" && statusNum(l.Status) == 403
		})
	})
	t.Run("student ip-literal, SNI elsewhere", func(t *testing.T) {
		cfg := &tls.Config{ServerName: "elsewhere.example", InsecureSkipVerify: true} //nolint:gosec
		if err := handshake("alice", "alicepw", ipAuthority, cfg); err == nil {
			t.Fatal("a student's tunnel to an address with an SNI not resolving to it completed its handshake")
		}
	})
	t.Run("student, SNI resolving to the address", func(t *testing.T) {
		cfg := &tls.Config{ServerName: "site.test", InsecureSkipVerify: true} //nolint:gosec // site.test resolves to upstreamIP
		if err := handshake("alice", "alicepw", ipAuthority, cfg); err != nil {
			t.Fatalf("handshake: %v", err)
		}
	})
	t.Run("staff ip-literal", func(t *testing.T) {
		if err := handshake("bob", "bobpw", ipAuthority, noSNI); err != nil {
			t.Fatalf("a staff tunnel to an address: %v", err)
		}
	})
	t.Run("student ech", func(t *testing.T) {
		err := handshake("alice", "alicepw", frontAuthority, echCfg)
		var rej *tls.ECHRejectionError
		if err == nil || errors.As(err, &rej) {
			t.Fatalf("a student's ECH tunnel reached the server (%v)", err)
		}
		waitLog(t, e, func(l logLine) bool {
			return l.Host == "cloudflare-ech.com" && l.Verdict == "block" && l.Rule == "student#1" &&
				strings.Join(l.Categories, ",") == "ech"
		})
	})
	t.Run("staff ech", func(t *testing.T) {
		// The test server has no ECH keys: it rejects ECH, and the
		// client then checks its certificate against the public name, so
		// the client's error says the server answered.
		var rej *tls.ECHRejectionError
		var cert *tls.CertificateVerificationError
		if err := handshake("bob", "bobpw", frontAuthority, echCfg); !errors.As(err, &rej) && !errors.As(err, &cert) {
			t.Fatalf("a staff ECH tunnel: %v, want the server's answer (ECH rejected, or its certificate)", err)
		}
	})
	t.Run("student GREASE ECH", func(t *testing.T) {
		host := "site.test"
		conn := connectTunnel(t, e.addr, "alice", "alicepw", net.JoinHostPort(host, strconv.Itoa(e.tlsPort)))
		defer conn.Close()
		hello := withExtension(t, clientHello(t, &tls.Config{ServerName: host}), extECH, []byte{0, 0, 1, 0, 1, 0x8c, 0, 0})
		conn.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		if _, err := conn.Write(hello); err != nil {
			t.Fatal(err)
		}
		// The server answers (a ServerHello, or an alert about the
		// pipe-made key share): the tunnel was relayed.
		b := make([]byte, 1)
		if _, err := conn.Read(b); err != nil || (b[0] != 22 && b[0] != 21) {
			t.Fatalf("GREASE ECH tunnel: read %v %v, want the server's TLS record", b, err)
		}
	})
}

// TestHiddenIntercepted: inside an intercepted tunnel to an address with
// no SNI, every request is decided as ip-literal: a student gets the
// block page over TLS, staff are let through.
func TestHiddenIntercepted(t *testing.T) {
	e := lockinEnv(t)
	ca, _ := testCA(t, e.dir)
	addr := interceptProxyCA(t, e, ca, "")
	get := func(user, pass string) (int, string) {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: addr, User: url.UserPassword(user, pass)}),
			TLSClientConfig: &tls.Config{RootCAs: poolOf(ca)}, // the minted certificate names the address
		}}
		return getBody(t, c, "https://"+net.JoinHostPort(upstreamIP, strconv.Itoa(e.tlsPort))+"/hello", nil)
	}
	if status, body := get("alice", "alicepw"); status != 403 || !strings.Contains(body, "ip-literal") {
		t.Errorf("student: %d, want 403 with a block page naming ip-literal:\n%s", status, body)
	}
	waitLog(t, e, func(l logLine) bool {
		return l.Method == "GET" && l.User == "alice" && l.Verdict == "block" && l.Rule == "student#1" &&
			strings.Join(l.Categories, ",") == "ip-literal"
	})
	// Staff are not refused (the upstream's certificate is not from the
	// school CA this proxy trusts, so the answer is a 502).
	if status, _ := get("bob", "bobpw"); status == 403 {
		t.Errorf("staff: 403, want the request forwarded")
	}
	waitLog(t, e, func(l logLine) bool {
		return l.Method == "GET" && l.User == "bob" && l.Verdict == "allow" && strings.Join(l.Categories, ",") == "ip-literal"
	})
}

// TestChromiumGreaseECH: Chromium sends a decoy (GREASE) ECH extension
// on every connection without an ECH configuration; for a student whose
// profile blocks ech, a real Chromium still loads an HTTPS page through
// the proxy, while its request to a bare address is cut as ip-literal
// (Chromium would go to a loopback address direct: <-loopback> stops it).
func TestChromiumGreaseECH(t *testing.T) {
	chromium := chromiumPath(t)
	ec := lockinConfig(t)
	ec.requireAuth = false // headless Chromium cannot answer a 407; the address is a student's
	e := newEnv(t, ec)
	run := func(url string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir="+t.TempDir(), "--proxy-server=http://"+e.addr, "--proxy-bypass-list=<-loopback>",
			"--ignore-certificate-errors",
			"--dump-dom", url).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "<html") {
			t.Skipf("chromium could not run here: %v\n%s", err, out)
		}
		return string(out)
	}
	port := strconv.Itoa(e.tlsPort)
	if dom := run("https://site.test:" + port + "/hello"); !strings.Contains(dom, "hello from upstream") {
		t.Fatalf("Chromium did not load the page through the proxy (GREASE ECH taken for ech?):\n%s", dom)
	}
	e.findLog(t, "the student's allowed tunnel", func(l logLine) bool {
		return l.Method == "CONNECT" && l.Host == "site.test" && l.Verdict == "allow" && l.Profile == "student"
	})
	if dom := run("https://" + upstreamIP + ":" + port + "/hello"); strings.Contains(dom, "hello from upstream") {
		t.Fatalf("Chromium reached a bare address as a student:\n%s", dom)
	}
	e.findLog(t, "the cut ip-literal tunnel", func(l logLine) bool {
		return l.Method == "CONNECT" && l.Host == upstreamIP && l.Verdict == "block" && l.Rule == "student#1"
	})
}

// TestEncodedPathsIntercepted: inside an intercepted tunnel a path is
// decided on the same readings as plain HTTP.
func TestEncodedPathsIntercepted(t *testing.T) {
	e := lockinEnv(t)
	ca, caKey := testCA(t, e.dir)
	port := tlsUpstream(t, ca, caKey, decodingOrigin(""), "bbc.test")
	addr := interceptProxyCA(t, e, ca, "domains: [bbc.test]", port)
	get := func(user, pass, path string) (int, string) {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: addr, User: url.UserPassword(user, pass)}),
			TLSClientConfig: &tls.Config{RootCAs: poolOf(ca)},
		}}
		return getBody(t, c, "https://"+net.JoinHostPort("bbc.test", strconv.Itoa(port))+path, nil)
	}
	for _, path := range []string{"/%2Fiplayer", "/bitesize%2F..%2Fiplayer"} {
		if status, _ := get("alice", "alicepw", path); status != 403 {
			t.Errorf("student GET https://bbc.test%s: %d, want 403", path, status)
		}
		if status, body := get("bob", "bobpw", path); status != 200 || body != "IPLAYER" {
			t.Errorf("staff GET https://bbc.test%s: %d %q, want 200 IPLAYER (the origin decodes)", path, status, body)
		}
	}
	if status, body := get("alice", "alicepw", "/bitesize%2Fmaths"); status != 200 || body != "BITESIZE" {
		t.Errorf("student GET https://bbc.test/bitesize%%2Fmaths: %d %q, want 200 BITESIZE", status, body)
	}
	waitLog(t, e, func(l logLine) bool {
		return l.User == "alice" && l.Verdict == "block" && l.Rule == "student#3" &&
			l.URL == "https://bbc.test:"+strconv.Itoa(port)+"/iplayer"
	})
}
