package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
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
