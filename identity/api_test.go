package identity

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var testSecret = []byte("correct horse battery staple")

func sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func apiBody(user, ip, action string, ts time.Time) []byte {
	return []byte(fmt.Sprintf(`{"user":%q,"ip":%q,"action":%q,"ts":%d}`, user, ip, action, ts.Unix()))
}

// apiServer serves the API on loopback: the sender is 127.0.0.1, the
// clients are 127.0.0.0/8 and 10.0.0.0/8, and only 127.0.0.2 may name
// another address.
func apiServer(t *testing.T) (*Table, string) {
	t.Helper()
	tb := newTable(t, Options{})
	h, err := tb.APIHandler(APIOptions{
		Secret: testSecret,
		IsClient: func(ip netip.Addr) bool {
			return netip.MustParsePrefix("127.0.0.0/8").Contains(ip) || netip.MustParsePrefix("10.0.0.0/8").Contains(ip)
		},
		Trusted:    func(ip netip.Addr) bool { return ip == netip.MustParseAddr("127.0.0.2") },
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return tb, srv.URL + APIPath
}

func post(t *testing.T, url string, body []byte, sig string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if sig != "" {
		req.Header.Set(SignatureHeader, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAPI(t *testing.T) {
	tb, url := apiServer(t)
	me := netip.MustParseAddr("127.0.0.1")
	now := time.Now()
	logon := apiBody("alice", "127.0.0.1", "logon", now)
	bad := func(b []byte) string { return sign([]byte("wrong secret"), b) }
	upper := strings.ToUpper(sign(testSecret, logon)[7:])

	// Each refused request leaves the table empty.
	refused := []struct {
		name string
		body []byte
		sig  string
		want int
	}{
		{"no signature", logon, "", 401},
		{"wrong secret", logon, bad(logon), 401},
		{"signature of another body", logon, sign(testSecret, apiBody("bob", "127.0.0.1", "logon", now)), 401},
		{"uppercase hex", logon, "sha256=" + upper, 401},
		{"no sha256= prefix", logon, sign(testSecret, logon)[7:], 401},
		{"ts 6 minutes old", apiBody("alice", "127.0.0.1", "logon", now.Add(-6*time.Minute)), "", 401},
		{"ts 6 minutes ahead", apiBody("alice", "127.0.0.1", "logon", now.Add(6*time.Minute)), "", 401},
		{"no ts", []byte(`{"user":"alice","ip":"127.0.0.1","action":"logon"}`), "", 400},
		{"empty user", apiBody("", "127.0.0.1", "logon", now), "", 400},
		{"bad action", apiBody("alice", "127.0.0.1", "login", now), "", 400},
		{"bad ip", apiBody("alice", "10.0.0.300", "logon", now), "", 400},
		{"unknown field", []byte(fmt.Sprintf(`{"user":"alice","ip":"127.0.0.1","action":"logon","ts":%d,"profile":"staff"}`, now.Unix())), "", 400},
		{"not a client", apiBody("alice", "192.0.2.1", "logon", now), "", 403},
		{"another machine's address", apiBody("alice", "10.1.2.3", "logon", now), "", 403},
		{"too large", append(logon, bytes.Repeat([]byte(" "), APIMaxBody)...), "", 413},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			sig := c.sig
			if sig == "" && c.want != 401 || c.name == "ts 6 minutes old" || c.name == "ts 6 minutes ahead" {
				sig = sign(testSecret, c.body)
			}
			if code, msg := post(t, url, c.body, sig); code != c.want {
				t.Errorf("status %d (%s), want %d", code, msg, c.want)
			}
			if n := tb.Len(time.Now()); len(n) != 0 {
				t.Errorf("table changed: %v", n)
			}
		})
	}

	if code, msg := post(t, url, logon, sign(testSecret, logon)); code != http.StatusNoContent {
		t.Fatalf("good logon: %d %s", code, msg)
	}
	e, ok := tb.Lookup(me, time.Now())
	if !ok || e.User != "alice" || e.Source != SourceAPI || e.Until.Sub(now) < APILogonTTL-time.Minute {
		t.Fatalf("after logon: %+v %v", e, ok)
	}
	// With alice signed in, refused requests leave her entry as it was:
	// a logoff or another user's logon with a wrong signature or a stale
	// ts is a 401 and changes nothing.
	aliceOff := apiBody("alice", "127.0.0.1", "logoff", now.Add(time.Second))
	staleOff := apiBody("alice", "127.0.0.1", "logoff", now.Add(-6*time.Minute))
	bobOn := apiBody("bob", "127.0.0.1", "logon", now.Add(time.Second))
	for _, c := range []struct {
		name string
		body []byte
		sig  string
	}{
		{"logoff with the wrong secret", aliceOff, bad(aliceOff)},
		{"logoff without a signature", aliceOff, ""},
		{"logoff with a stale ts", staleOff, sign(testSecret, staleOff)},
		{"another user's logon with the wrong secret", bobOn, bad(bobOn)},
	} {
		if code, msg := post(t, url, c.body, c.sig); code != 401 {
			t.Errorf("%s: status %d (%s), want 401", c.name, code, msg)
		}
		if got, ok := tb.Lookup(me, time.Now()); !ok || got != e {
			t.Errorf("%s: entry %+v %v, want it unchanged: %+v", c.name, got, ok, e)
		}
	}
	// The same signed body again is a replay.
	if code, _ := post(t, url, logon, sign(testSecret, logon)); code != 401 {
		t.Errorf("replayed logon: %d, want 401", code)
	}
	// bob's logoff does not sign alice off; alice's does.
	bobOff := apiBody("bob", "127.0.0.1", "logoff", now)
	if code, _ := post(t, url, bobOff, sign(testSecret, bobOff)); code != http.StatusNoContent {
		t.Errorf("bob's logoff: %d", code)
	}
	if _, ok := tb.Lookup(me, time.Now()); !ok {
		t.Error("bob's logoff signed alice off")
	}
	off := apiBody("alice", "127.0.0.1", "logoff", now)
	if code, _ := post(t, url, off, sign(testSecret, off)); code != http.StatusNoContent {
		t.Errorf("alice's logoff: %d", code)
	}
	if e, ok := tb.Lookup(me, time.Now()); ok {
		t.Errorf("still signed in after logoff: %+v", e)
	}
	// GET is not the API.
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
}

// TestAPITrustedSender: an admin.allow address (a server forwarding logon
// events) may name another machine's address.
func TestAPITrustedSender(t *testing.T) {
	tb, url := apiServer(t)
	// Dial the server from 127.0.0.2.
	d := &netDialer{local: "127.0.0.2"}
	c := &http.Client{Transport: &http.Transport{DialContext: d.dial}}
	body := apiBody("carol", "10.1.2.3", "logon", time.Now())
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set(SignatureHeader, sign(testSecret, body))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if e, ok := tb.Lookup(netip.MustParseAddr("10.1.2.3"), time.Now()); !ok || e.User != "carol" {
		t.Errorf("entry %+v %v", e, ok)
	}
}
