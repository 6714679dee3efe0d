package proxy

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/internal/testenv"
)

// dialFrom connects to the proxy from a chosen loopback address.
func dialFrom(t *testing.T, proxyAddr, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes a raw request on c and reads the response.
func roundTrip(t *testing.T, c net.Conn, req string) (int, string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Clients that announce a body and stall are cut after BodyIdleTimeout;
// while they hold every slot, a new client is told so (503) at once.
func TestStalledBodies(t *testing.T) {
	e := newEnv(t, envConfig{opts: func(o *Options) {
		o.MaxConnections = 3
		o.BodyIdleTimeout = 300 * time.Millisecond
	}})
	post := "POST " + e.upURL + "/sum HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nA"
	var stalled []net.Conn
	for range 3 {
		c := dialFrom(t, e.addr, "127.0.0.1")
		if _, err := io.WriteString(c, post); err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, c)
	}
	time.Sleep(50 * time.Millisecond) // the three are accepted

	start := time.Now()
	st, body := roundTrip(t, dialFrom(t, e.addr, "127.0.0.1"), "GET "+e.upURL+"/hello HTTP/1.1\r\nHost: x\r\n\r\n")
	if st != 503 || !strings.Contains(body, "as many connections as it can") || time.Since(start) > time.Second {
		t.Fatalf("a fourth client while three stall: %d %q after %v, want 503 at once", st, body, time.Since(start))
	}
	if got := testenv.MetricValue(e.p.m.connsRefusedBy[refusedMaxConns]); got != 1 {
		t.Errorf("connections_refused_total{reason=max_connections} = %v, want 1", got)
	}

	// The stalled ones are cut after about BodyIdleTimeout, not minutes.
	for i, c := range stalled {
		c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		io.Copy(io.Discard, c)                             //nolint:errcheck
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("stalled client %d cut after %v", i, took)
		}
	}
	// Their slots are free again.
	for i := 0; testenv.MetricValue(e.p.m.activeConns) != 0 && i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if st, body := roundTrip(t, dialFrom(t, e.addr, "127.0.0.1"), "GET "+e.upURL+"/hello HTTP/1.1\r\nHost: x\r\n\r\n"); st != 200 {
		t.Fatalf("after the cut: %d %q", st, body)
	}
	// The lines: the GET after the cut, and each stalled POST as client
	// gone (a POST's line may land after the GET's on a loaded machine:
	// its handler ends when the cut reaches it).
	var n, gets int
	for try := 0; try < 40 && n < 3; try++ { // each read waits 50 ms and flushes
		n, gets = 0, 0
		for _, l := range e.logLines(t) {
			switch {
			case l.Method == "POST" && statusNum(l.Status) == statusClientGone:
				n++
			case l.Method == "GET" && statusNum(l.Status) == 200:
				gets++
			}
		}
	}
	if n != 3 || gets != 1 {
		t.Errorf("%d POSTs logged as %d (client gone), want 3; %d GETs logged 200, want 1", n, statusClientGone, gets)
	}
}

// A slow upload that keeps moving is not cut, however long it takes.
func TestSlowUploadProgresses(t *testing.T) {
	e := newEnv(t, envConfig{opts: func(o *Options) { o.BodyIdleTimeout = 300 * time.Millisecond }})
	c := dialFrom(t, e.addr, "127.0.0.1")
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	const n = 8
	fmt.Fprintf(c, "POST %s/sum HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", e.upURL, n)
	for range n {
		time.Sleep(150 * time.Millisecond) // 1.2 s in all, each pause under the timeout
		if _, err := io.WriteString(c, "z"); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("slow upload cut: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	sum := sha256.Sum256([]byte(strings.Repeat("z", n)))
	if want := fmt.Sprintf("%d %s", n, hex.EncodeToString(sum[:])); resp.StatusCode != 200 || string(b) != want {
		t.Fatalf("%d %q, want %q", resp.StatusCode, b, want)
	}
	// The same connection goes on serving (the watch ended with the body).
	time.Sleep(400 * time.Millisecond)
	if st, _ := roundTrip(t, c, "GET "+e.upURL+"/hello HTTP/1.1\r\nHost: x\r\n\r\n"); st != 200 {
		t.Fatalf("next request on the connection: %d", st)
	}
}

// One address cannot take every slot.
func TestConnectionsPerClient(t *testing.T) {
	e := newEnv(t, envConfig{opts: func(o *Options) {
		o.MaxConnections = 10
		o.MaxConnsPerClient = 2
	}})
	get := "GET " + e.upURL + "/hello HTTP/1.1\r\nHost: x\r\n\r\n"
	for range 2 {
		if st, _ := roundTrip(t, dialFrom(t, e.addr, "127.0.0.1"), get); st != 200 {
			t.Fatalf("status %d", st)
		}
	}
	if st, _ := roundTrip(t, dialFrom(t, e.addr, "127.0.0.1"), get); st != 503 {
		t.Fatalf("third connection from one address: %d, want 503", st)
	}
	if got := testenv.MetricValue(e.p.m.connsRefusedBy[refusedPerClient]); got != 1 {
		t.Errorf("connections_refused_total{reason=per_client} = %v, want 1", got)
	}
	if st, _ := roundTrip(t, dialFrom(t, e.addr, "127.0.0.3"), get); st != 200 {
		t.Fatalf("another address: %d, want 200", st)
	}
}

// A blocked upload leaves its body unread (the server discards it past
// the watch): the kept-alive connection must not then be cut as stalled
// when it is merely idle for longer than BodyIdleTimeout.
func TestIdleAfterUnreadBody(t *testing.T) {
	e := newEnv(t, envConfig{opts: func(o *Options) { o.BodyIdleTimeout = 200 * time.Millisecond }})
	c := dialFrom(t, e.addr, "127.0.0.1")
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	body := strings.Repeat("x", 1000)
	st, _ := roundTrip(t, c, "POST http://www.casino.test/upload HTTP/1.1\r\nHost: www.casino.test\r\nContent-Length: 1000\r\n\r\n"+body)
	if st != 403 {
		t.Fatalf("blocked POST: %d", st)
	}
	time.Sleep(600 * time.Millisecond) // idle, body long sent
	if st, _ := roundTrip(t, c, "GET "+e.upURL+"/hello HTTP/1.1\r\nHost: x\r\n\r\n"); st != 200 {
		t.Fatalf("next request after an idle pause: %d", st)
	}
}

// proxy.max_connections is one budget for every listener: while the
// explicit listener holds every slot, a connection to the transparent
// HTTPS listener is refused too (closed without an answer: TLS is
// expected there), and counted.
func TestConnectionBudgetSharedByListeners(t *testing.T) {
	e := newEnv(t, envConfig{opts: func(o *Options) { o.MaxConnections = 2 }})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.p.ServeTransparentHTTPS(ln) //nolint:errcheck // ends with the proxy's Shutdown
	for range 2 {
		dialFrom(t, e.addr, "127.0.0.1") // idle: holds a slot
	}
	for i := 0; testenv.MetricValue(e.p.m.activeConns) != 2 && i < 200; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	c := dialFrom(t, ln.Addr().String(), "127.0.0.1")
	c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	if n, err := c.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Fatalf("the transparent listener answered while the explicit one holds every slot: %d %v", n, err)
	}
	if got := testenv.MetricValue(e.p.m.connsRefusedBy[refusedMaxConns]); got != 1 {
		t.Errorf("connections_refused_total{reason=max_connections} = %v, want 1", got)
	}
}
