package admin

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/schoolgate/schoolgate/policy"
)

func allowEngine(t *testing.T, allow string) *policy.Engine {
	t.Helper()
	return engineFrom(t, `timezone: UTC
listen: {proxy: "127.0.0.1:3128", dns: "", admin: ""}
clients: [127.0.0.0/8]
admin: {allow: [`+allow+`]}
default_profile: student
profiles:
  student: {default: allow}
`)
}

// getFrom sends GET path to addr from the local address from.
func getFrom(t *testing.T, from, addr, path string) int {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot dial from %s: %v", from, err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body) //nolint:errcheck
	resp.Body.Close()
	return resp.StatusCode
}

func serveAdmin(t *testing.T, o Options, max int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(o)
	go srv.Serve(Listen(ln, max)) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// /metrics and /healthz answer only admin.allow; the PAC file anyone.
func TestAdminAllow(t *testing.T) {
	addr := serveAdmin(t, Options{Gatherer: prometheus.NewRegistry(), Engine: allowEngine(t, "127.0.0.1/32"),
		ProxyAddr: "127.0.0.1:3128"}, 0)
	for _, c := range []struct {
		from, path string
		want       int
	}{
		{"127.0.0.1", "/metrics", 200},
		{"127.0.0.1", "/healthz", 200},
		{"127.0.0.2", "/metrics", 403},
		{"127.0.0.2", "/healthz", 403},
		{"127.0.0.2", "/proxy.pac", 200},
		{"127.0.0.2", "/wpad.dat", 200},
	} {
		if got := getFrom(t, c.from, addr, c.path); got != c.want {
			t.Errorf("GET %s from %s: %d, want %d", c.path, c.from, got, c.want)
		}
	}
}

// Idle connections cannot pile up: past the cap a connection is closed at
// once, and idle ones are closed after the idle timeout, after which the
// listener serves again.
func TestAdminIdleTimeoutAndCap(t *testing.T) {
	addr := serveAdmin(t, Options{Engine: allowEngine(t, "127.0.0.0/8"), IdleTimeout: 500 * time.Millisecond}, 5)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// One of them kept alive after a request, as a browser leaves it.
	fmt.Fprintf(held[0], "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	br := bufio.NewReader(held[0])
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 || resp.Close {
		t.Fatalf("keep-alive request: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body) //nolint:errcheck
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	extra.SetReadDeadline(time.Now().Add(2 * time.Second)) //nolint:errcheck
	if _, err := extra.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("a connection past the cap was not closed at once: %v", err)
	}
	extra.Close()
	// The idle ones are closed by the server after the idle timeout.
	for i, c := range held {
		c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		var err error
		if i == 0 {
			_, err = br.ReadByte()
		} else {
			_, err = c.Read(make([]byte, 1))
		}
		if err != io.EOF {
			t.Fatalf("idle connection %d was not closed: %v", i, err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if got := getFrom(t, "127.0.0.1", addr, "/healthz"); got != 200 {
		t.Fatalf("after the idle ones were closed: %d", got)
	}
}
