package admin

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/schoolgate/schoolgate/identity"
)

// postFrom sends POST path with body (signed with secret when not nil)
// to addr from the local address from.
func postFrom(t *testing.T, from, addr, path string, body, secret []byte) int {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot dial from %s: %v", from, err)
	}
	defer c.Close()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
	if secret != nil {
		m := hmac.New(sha256.New, secret)
		m.Write(body)
		req.Header.Set(identity.SignatureHeader, "sha256="+hex.EncodeToString(m.Sum(nil)))
	}
	req.Close = true
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body) //nolint:errcheck
	resp.Body.Close()
	return resp.StatusCode
}

// The logon API is reachable from `clients` outside admin.allow (every
// school machine runs the logon script), and its signature is what lets
// a request change anything; the rest of the admin paths stay closed.
func TestLogonAPIThroughAllow(t *testing.T) {
	engine := allowEngine(t, "127.0.0.1/32")
	tb, err := identity.New(identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tb.Close)
	secret := []byte("s3cret")
	api, err := tb.APIHandler(identity.APIOptions{Secret: secret, IsClient: engine.Snapshot().IsClient})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveAdmin(t, Options{Gatherer: prometheus.NewRegistry(), Engine: engine, ProxyAddr: "127.0.0.1:3128", Identity: api}, 0)
	body := []byte(fmt.Sprintf(`{"user":"alice","ip":"127.0.0.2","action":"logon","ts":%d}`, time.Now().Unix()))
	if got := getFrom(t, "127.0.0.2", addr, "/metrics"); got != 403 {
		t.Errorf("GET /metrics from a client outside admin.allow: %d, want 403", got)
	}
	if got := postFrom(t, "127.0.0.2", addr, identity.APIPath, body, nil); got != 401 {
		t.Errorf("unsigned POST from a client: %d, want 401", got)
	}
	if got := postFrom(t, "127.0.0.2", addr, identity.APIPath, body, secret); got != 204 {
		t.Errorf("signed POST from a client: %d, want 204", got)
	}
	if e, ok := tb.Lookup(netip.MustParseAddr("127.0.0.2"), time.Now()); !ok || e.User != "alice" {
		t.Errorf("entry %+v %v", e, ok)
	}
}

// Without identity.api_secret_file there is no API, and the path is as
// closed as any other admin path.
func TestNoLogonAPI(t *testing.T) {
	addr := serveAdmin(t, Options{Gatherer: prometheus.NewRegistry(), Engine: allowEngine(t, "127.0.0.1/32"), ProxyAddr: "127.0.0.1:3128"}, 0)
	if got := postFrom(t, "127.0.0.2", addr, identity.APIPath, []byte("{}"), nil); got != 403 {
		t.Errorf("from a client: %d, want 403", got)
	}
	if got := postFrom(t, "127.0.0.1", addr, identity.APIPath, []byte("{}"), nil); got != 404 {
		t.Errorf("from admin.allow: %d, want 404", got)
	}
}
