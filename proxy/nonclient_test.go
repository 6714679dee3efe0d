package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/internal/testenv"
)

// Non-clients cannot starve the clients (issue 19): a refused non-client's
// connection is closed at once, and their connections are counted in a
// small pool apart from the clients' slots.
func TestNonClientsCannotFillTheConnectionCap(t *testing.T) {
	e := newEnv(t, envConfig{clients: "  - 127.0.0.1/32\n", opts: func(o *Options) { o.MaxConnections = 64 }})

	// One refused non-client request: 403 not_a_client, then the
	// connection is closed by the proxy.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", e.addr)
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.3: %v", err)
	}
	fmt.Fprintf(c, "GET %s/hello HTTP/1.1\r\nHost: 127.0.0.2\r\n\r\n", e.upURL)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body) //nolint:errcheck
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !resp.Close {
		t.Fatalf("non-client answered %s (close %v), want 403 and Connection: close", resp.Status, resp.Close)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second)) //nolint:errcheck
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("the refused non-client's connection stays open: %v", err)
	}
	c.Close()
	if l := e.lastLog(t, "127.0.0.2"); l.Rule != "not_a_client" || l.IP != "127.0.0.3" {
		t.Fatalf("line = %+v", l)
	}

	// Four non-client addresses open 64 connections each and keep them.
	var mu sync.Mutex
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	var wg sync.WaitGroup
	for a := 3; a <= 6; a++ {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(a))}, Timeout: 2 * time.Second}
		for i := 0; i < 64; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if c, err := d.Dial("tcp", e.addr); err == nil {
					mu.Lock()
					held = append(held, c)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond) // accepted (or refused) by now
	// A real client still gets through, on several connections at once.
	for i := 0; i < 8; i++ {
		cl := e.client("", "")
		cl.Transport.(*http.Transport).DisableKeepAlives = true
		resp, err := cl.Get(e.upURL + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("client request %d: %s while non-clients hold connections", i, resp.Status)
		}
	}
	if got := testenv.MetricValue(e.p.m.connsRefusedBy[refusedNonClient]); got < 4*64-maxNonClientConns {
		t.Fatalf("non-client refusals counted %v, want at least %d", got, 4*64-maxNonClientConns)
	}
}
