package proxy

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// With proxy.deny_destinations absent, the gateway's own loopback and
// addresses are refused (issue 19); the test configs that run upstreams on
// loopback list deny_destinations themselves.
func TestDefaultDenyRefusesTheGatewaysOwnAddresses(t *testing.T) {
	e := newEnv(t, envConfig{edit: func(cfg string) string {
		return strings.Replace(cfg, "  deny_destinations: [127.0.0.1/32, 169.254.0.0/16, \"::1/128\"]\n", "", 1)
	}})
	c := e.client("", "")
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck
		resp.Body.Close()
		return resp.StatusCode, ""
	}
	if st, _ := get(e.upURL + "/hello"); st != http.StatusForbidden {
		t.Fatalf("a service on the gateway's loopback (%s) answered %d through the proxy, want 403", e.upURL, st)
	}
	if l := e.lastLog(t, "127.0.0.2"); l.Rule != "deny_destinations" {
		t.Fatalf("line = %+v", l)
	}
	// The gateway's own non-loopback address, where it has one.
	var own net.IP
	for _, a := range localAddrs() {
		if a.Is4() && !a.IsLoopback() && !a.IsLinkLocalUnicast() {
			own = net.IP(a.AsSlice())
			break
		}
	}
	if own == nil {
		t.Log("no non-loopback IPv4 address on this machine: only loopback checked")
		return
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(own.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "internal") })} //nolint:errcheck
	go srv.Serve(ln)                                                                                                               //nolint:errcheck
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if st, _ := get("http://" + net.JoinHostPort(own.String(), strconv.Itoa(port)) + "/"); st != http.StatusForbidden {
		t.Fatalf("a service on the gateway's own address %s answered %d through the proxy, want 403", own, st)
	}
}
