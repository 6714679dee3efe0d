package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAdminCannotStarveTheProxy: with 1024 file descriptors, 2000
// keep-alive connections to the admin listener leave the proxy serving:
// the admin listener keeps at most its share (64 at this limit) and
// closes the rest at once.
func TestAdminCannotStarveTheProxy(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit (util-linux) is not installed")
	}
	s := startE2EWith(t, func(s *e2eServer) { s.wrap = []string{"prlimit", "--nofile=1024:1024"} })
	const attack = 2000
	var (
		mu              sync.Mutex
		served, refused int
		conns           []net.Conn
		wg              sync.WaitGroup
		sem             = make(chan struct{}, 64)
	)
	start := time.Now()
	for range attack {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", s.admin, 5*time.Second)
			if err != nil {
				mu.Lock()
				refused++
				mu.Unlock()
				return
			}
			c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refused++
				c.Close()
				return
			}
			io.Copy(io.Discard, resp.Body) //nolint:errcheck
			resp.Body.Close()
			served++
			conns = append(conns, c) // kept open, idle
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	t.Logf("%d admin connections in %v: %d served and kept idle, %d closed by the admin listener",
		attack, time.Since(start).Round(time.Millisecond), served, refused)
	if served > 64 {
		t.Errorf("the admin listener holds %d idle connections, want at most its share, 64", served)
	}
	if refused == 0 {
		t.Errorf("no admin connection was refused")
	}

	resp, err := s.client("alice", "alicepw").Get(s.up.URL + "/hello")
	if err != nil {
		t.Fatalf("the proxy, while %d idle admin connections are open: %v\n%s", served, err, s.stderr.String())
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "hello" {
		t.Fatalf("the proxy, while %d idle admin connections are open: %d %q", served, resp.StatusCode, b)
	}
	if strings.Contains(s.stderr.String(), "too many open files") {
		t.Errorf("serve ran out of file descriptors:\n%s", s.stderr.String())
	}
}

// TestProxyCannotStarveTheAdmin: with 1024 file descriptors, 2000 idle
// client connections to the proxy (from 24 addresses, under the
// per-address cap) leave the admin listener answering: the proxy holds at
// most its share (352 at this limit), not proxy.max_connections (4096).
func TestProxyCannotStarveTheAdmin(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit (util-linux) is not installed")
	}
	s := startE2EWith(t, func(s *e2eServer) { s.wrap = []string{"prlimit", "--nofile=1024:1024"} })
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	start := time.Now()
	for i := range 2000 {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(10+i%24))}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", s.proxy)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	time.Sleep(500 * time.Millisecond) // accepted, or answered 503
	t.Logf("2000 idle proxy connections opened in %v", time.Since(start).Round(time.Millisecond))
	open := scrapeMetric(t, s.admin, "schoolgate_proxy_active_connections")
	t.Logf("the proxy holds %v of them", open)
	if open < 0 || open > 352 {
		t.Errorf("the proxy holds %v connections, want at most its share, 352", open)
	}
	resp, err := http.Get("http://" + s.admin + "/healthz")
	if err != nil {
		t.Fatalf("the admin listener, while 2000 proxy connections are open: %v\n%s", err, s.stderr.String())
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the admin listener, while 2000 proxy connections are open: %d", resp.StatusCode)
	}
	if strings.Contains(s.stderr.String(), "too many open files") {
		t.Errorf("serve ran out of file descriptors:\n%s", s.stderr.String())
	}
}

// scrapeMetric reads one series (as exposed, with its labels) from the
// admin listener's /metrics; -1 when it cannot.
func scrapeMetric(t *testing.T, admin, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Logf("scraping /metrics: %v", err)
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	return -1
}
