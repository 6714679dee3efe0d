package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elazarl/goproxy"
)

// benchClient sends keep-alive absolute-URI GETs over one connection and
// reads the answers; it is deliberately lean so the proxy dominates.
func benchClient(b *testing.B, proxyAddr, target, auth string) {
	b.Helper()
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := "GET " + target + " HTTP/1.1\r\nHost: " + strings.TrimPrefix(target, "http://")[:strings.Index(strings.TrimPrefix(target, "http://"), "/")] + "\r\n"
	if auth != "" {
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(auth)) + "\r\n"
	}
	req += "\r\n"
	br := bufio.NewReader(c)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := io.WriteString(c, req); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

func benchUpstream(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", upstreamIP+":0")
	if err != nil {
		b.Skip(err)
	}
	body := strings.Repeat("x", 1024)
	var conns atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Content-Length"] = []string{"1024"}
		io.WriteString(w, body) //nolint:errcheck
	}), ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}}
	go srv.Serve(ln) //nolint:errcheck
	b.Cleanup(func() {
		srv.Close()
		b.ReportMetric(float64(conns.Load()), "upstream-conns")
	})
	return "http://" + ln.Addr().String() + "/bench/page"
}

// BenchmarkProxyPlainHTTP is schoolgate's per-request path: auth (cached),
// decision (cached), forwarding, access log.
func BenchmarkProxyPlainHTTP(b *testing.B) {
	e := newBenchEnv(b)
	benchClient(b, e.addr, benchUpstream(b), "alice:alicepw")
}

// BenchmarkBareGoproxy is the baseline: goproxy with no filtering.
func BenchmarkBareGoproxy(b *testing.B) {
	gp := goproxy.NewProxyHttpServer()
	gp.Tr = &http.Transport{MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second}
	gp.KeepAcceptEncoding = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: gp}
	go srv.Serve(ln) //nolint:errcheck
	b.Cleanup(func() { srv.Close() })
	benchClient(b, ln.Addr().String(), benchUpstream(b), "")
}

func BenchmarkAuthCacheHit(b *testing.B) {
	e := newBenchEnv(b)
	snap := e.engine.Snapshot()
	ctx, ip := context.Background(), netip.MustParseAddr("127.0.0.1")
	if err := e.p.auth.verify(ctx, snap, ip, "alice", "alicepw"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := e.p.auth.verify(ctx, snap, ip, "alice", "alicepw"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseClientHello(b *testing.B) {
	hello := clientHello(b, &tls.Config{ServerName: "www.example.com"})
	b.ReportAllocs()
	b.SetBytes(int64(len(hello)))
	for i := 0; i < b.N; i++ {
		if _, err := parseClientHelloSNI(hello); err != nil {
			b.Fatal(err)
		}
	}
}

func newBenchEnv(b *testing.B) *env {
	b.Helper()
	return newEnv(b, envConfig{requireAuth: true})
}

// BenchmarkIntercept is a page load through interception: 24 requests at
// once, as a browser fetches a page's parts, over HTTP/1.1 (six
// connections, each a CONNECT and a TLS handshake with a minted
// certificate, to a HTTP/1.1 upstream) or HTTP/2 (one connection each
// way). upstream-conns counts the upstream's connections in the run.
func BenchmarkIntercept(b *testing.B) {
	for _, h2 := range []bool{false, true} {
		name := "http1"
		if h2 {
			name = "http2"
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b, envConfig{})
			ca, caKey := testCA(b, e.dir)
			body := strings.Repeat("x", 4096)
			var conns atomic.Int64
			up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				io.WriteString(w, body) //nolint:errcheck
			}))
			up.EnableHTTP2 = h2
			up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			up.Listener = listenUpstream(b)
			up.TLS = &tls.Config{Certificates: []tls.Certificate{leafCert(b, ca, caKey, "www.allowed.test")}}
			up.StartTLS()
			b.Cleanup(up.Close)
			port := up.Listener.Addr().(*net.TCPAddr).Port
			addr := interceptProxyCA(b, e, ca, "domains: [allowed.test]", port)
			tr := &http.Transport{
				Proxy:             http.ProxyURL(&url.URL{Scheme: "http", Host: addr}),
				TLSClientConfig:   &tls.Config{RootCAs: poolOf(ca)},
				ForceAttemptHTTP2: h2,
				MaxConnsPerHost:   6, // a browser's HTTP/1.1 limit
			}
			b.Cleanup(tr.CloseIdleConnections)
			c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			target := "https://www.allowed.test:" + strconv.Itoa(port) + "/part"
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				var wg sync.WaitGroup
				for range 24 {
					wg.Go(func() {
						resp, err := c.Get(target)
						if err != nil {
							b.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body) //nolint:errcheck
						resp.Body.Close()
						if resp.StatusCode != 200 || resp.ProtoMajor != map[bool]int{false: 1, true: 2}[h2] {
							b.Errorf("%s %d", resp.Proto, resp.StatusCode)
						}
					})
				}
				wg.Wait()
			}
			b.StopTimer()
			b.ReportMetric(float64(conns.Load()), "upstream-conns")
		})
	}
}
