package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Requests that net/http refuses before any handler runs still get their
// line: every answer the proxy gives is one line, with the host the
// request named (and its categories) when it can be read.
func TestParserRefusalsAreLogged(t *testing.T) {
	e := newEnv(t, envConfig{})
	cases := []struct {
		name, req string
		status    int
		method    string
	}{
		{"malformed CONNECT authority", "CONNECT casino.test:443\x7f HTTP/1.1\r\nHost: casino.test\r\n\r\n", 400, "CONNECT"},
		{"CONNECT authority with a space", "CONNECT casino.test:443 x HTTP/1.1\r\n\r\n", 400, "CONNECT"},
		{"control byte in the path", "GET http://casino.test/a\x01b HTTP/1.1\r\nHost: casino.test\r\n\r\n", 400, "GET"},
		{"70 KB of headers", "GET http://casino.test/ HTTP/1.1\r\nHost: casino.test\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n", 431, "GET"},
		{"HTTP/2.0 on CONNECT", "CONNECT casino.test:443 HTTP/2.0\r\nHost: casino.test:443\r\n\r\n", 505, "CONNECT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.logLines(t))
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
			go io.WriteString(c, tc.req)                   //nolint:errcheck // the server may answer before reading it all
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("answered %s, want %d", resp.Status, tc.status)
			}
			var got []logLine
			for i := 0; i < 50 && len(got) == 0; i++ {
				got = e.logLines(t)[before:]
			}
			if len(got) != 1 {
				t.Fatalf("%d new log lines, want 1: %+v", len(got), got)
			}
			l := got[0]
			if statusNum(l.Status) != tc.status || l.Host != "casino.test" || l.Method != tc.method ||
				l.Verdict != "block" || l.Rule != "bad_request" || fmt.Sprint(l.Categories) != "[gambling]" || l.IP != "127.0.0.1" {
				t.Fatalf("line = %+v", l)
			}
		})
	}

	// Answers from handlers are logged once, not twice: two requests on one
	// kept-alive connection make two lines.
	before := len(e.logLines(t))
	c := e.client("", "")
	for i := 0; i < 2; i++ {
		resp, err := c.Get(e.upURL + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck
		resp.Body.Close()
	}
	if n := len(e.logLines(t)) - before; n != 2 {
		t.Fatalf("%d lines for two requests", n)
	}
}
