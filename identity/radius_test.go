package identity

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
)

var radiusSecret = []byte("testing123")

// radiusServer serves accounting on loopback, taking packets only from
// 127.0.0.1 and naming only 10.0.0.0/8.
func radiusServer(t *testing.T) (*Table, *RADIUSServer, *prometheus.Registry) {
	t.Helper()
	tb := newTable(t, Options{})
	reg := prometheus.NewRegistry()
	s, err := tb.ListenRADIUS(RADIUSOptions{
		Addr:       "127.0.0.1:0",
		Secret:     radiusSecret,
		Allowed:    func(ip netip.Addr) bool { return ip == netip.MustParseAddr("127.0.0.1") },
		IsClient:   netip.MustParsePrefix("10.0.0.0/8").Contains,
		Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return tb, s, reg
}

func packetsCounted(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "schoolgate_identity_radius_packets_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

func acct(status rfc2866.AcctStatusType, user, ip string, secret []byte) *radius.Packet {
	p := radius.New(radius.CodeAccountingRequest, secret)
	rfc2866.AcctStatusType_Set(p, status)    //nolint:errcheck
	rfc2866.AcctSessionID_SetString(p, "s1") //nolint:errcheck
	if user != "" {
		rfc2865.UserName_SetString(p, user) //nolint:errcheck
	}
	if ip != "" {
		rfc2865.FramedIPAddress_Set(p, net.ParseIP(ip)) //nolint:errcheck
	}
	return p
}

// send exchanges p from the local address from; a dropped packet is an
// error after wait.
func send(p *radius.Packet, from, to string, wait time.Duration) (*radius.Packet, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c := &radius.Client{Retry: 300 * time.Millisecond, Dialer: net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}}
	return c.Exchange(ctx, p, to)
}

func TestRADIUSGo(t *testing.T) {
	tb, s, reg := radiusServer(t)
	addr := s.Addr().String()
	ip := netip.MustParseAddr("10.0.0.5")
	mustSend := func(p *radius.Packet) {
		t.Helper()
		r, err := send(p, "127.0.0.1", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if r.Code != radius.CodeAccountingResponse {
			t.Fatalf("answer %v", r.Code)
		}
	}
	mustSend(acct(rfc2866.AcctStatusType_Value_Start, `SCHOOL\alice`, "10.0.0.5", radiusSecret))
	if e, ok := tb.Lookup(ip, time.Now()); !ok || e.User != "alice" || e.Source != SourceRADIUS {
		t.Fatalf("after Start: %+v %v", e, ok)
	}
	mustSend(acct(rfc2866.AcctStatusType_Value_InterimUpdate, "bob@school.example", "10.0.0.5", radiusSecret))
	if e, ok := tb.Lookup(ip, time.Now()); !ok || e.User != "bob" {
		t.Fatalf("after Interim-Update: %+v %v", e, ok)
	}
	// alice's late Stop leaves bob; bob's ends it.
	mustSend(acct(rfc2866.AcctStatusType_Value_Stop, "alice", "10.0.0.5", radiusSecret))
	if _, ok := tb.Lookup(ip, time.Now()); !ok {
		t.Fatal("alice's Stop removed bob")
	}
	mustSend(acct(rfc2866.AcctStatusType_Value_Stop, "bob", "10.0.0.5", radiusSecret))
	if e, ok := tb.Lookup(ip, time.Now()); ok {
		t.Fatalf("after Stop: %+v", e)
	}
	// Answered but changing nothing: an address outside clients, no
	// address, Accounting-On.
	mustSend(acct(rfc2866.AcctStatusType_Value_Start, "carol", "192.0.2.9", radiusSecret))
	mustSend(acct(rfc2866.AcctStatusType_Value_Start, "carol", "", radiusSecret))
	mustSend(acct(rfc2866.AcctStatusType_Value_AccountingOn, "", "", radiusSecret))
	if n := tb.Len(time.Now()); len(n) != 0 {
		t.Errorf("entries %v, want none", n)
	}
	if got := packetsCounted(t, reg, "ignored"); got != 3 {
		t.Errorf("ignored = %v, want 3", got)
	}

	// Dropped unanswered: the wrong secret, a sender outside the clients.
	if _, err := send(acct(rfc2866.AcctStatusType_Value_Start, "mallory", "10.0.0.6", []byte("wrong")), "127.0.0.1", addr, time.Second); err == nil {
		t.Error("a packet with the wrong secret was answered")
	}
	if _, err := send(acct(rfc2866.AcctStatusType_Value_Start, "mallory", "10.0.0.6", radiusSecret), "127.0.0.2", addr, time.Second); err == nil {
		t.Error("a stranger's packet was answered")
	}
	if n := tb.Len(time.Now()); len(n) != 0 {
		t.Errorf("entries %v, want none", n)
	}
	if got := packetsCounted(t, reg, "bad_authenticator"); got < 1 {
		t.Errorf("bad_authenticator = %v, want ≥ 1 (retries count each)", got)
	}
	if got := packetsCounted(t, reg, "stranger"); got < 1 {
		t.Errorf("stranger = %v, want ≥ 1", got)
	}
	// Junk is counted, never answered, and the listener keeps serving.
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("\x04\x01\x00\x05x")) //nolint:errcheck
	c.Write(make([]byte, 30))            //nolint:errcheck
	c.Close()
	mustSend(acct(rfc2866.AcctStatusType_Value_Start, "dave", "10.0.0.7", radiusSecret))
	if got := packetsCounted(t, reg, "malformed"); got != 2 {
		t.Errorf("malformed = %v, want 2", got)
	}
}

// radclient runs FreeRADIUS's radclient (Debian freeradius-utils) with
// attrs, against addr with secret; it reports whether an answer came.
func radclient(t *testing.T, addr, secret, attrs string) bool {
	t.Helper()
	bin, err := exec.LookPath("radclient")
	if err != nil {
		t.Skip("radclient not installed (Debian freeradius-utils)")
	}
	cmd := exec.Command(bin, "-r", "2", "-t", "1", addr, "acct", secret)
	cmd.Stdin = strings.NewReader(attrs)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Logf("radclient: %v\n%s", err, out)
		return false
	}
	return strings.Contains(string(out), "Accounting-Response")
}

func TestRADIUSRadclient(t *testing.T) {
	if _, err := exec.LookPath("radclient"); err != nil {
		t.Skip("radclient not installed (Debian freeradius-utils)")
	}
	tb, s, _ := radiusServer(t)
	addr := s.Addr().String()
	ip := netip.MustParseAddr("10.0.0.5")
	msg := func(status, user string) string {
		return fmt.Sprintf("User-Name = %q\nAcct-Status-Type = %s\nAcct-Session-Id = \"rc1\"\nFramed-IP-Address = 10.0.0.5\nNAS-IP-Address = 127.0.0.1\n", user, status)
	}
	if !radclient(t, addr, string(radiusSecret), msg("Start", "alice")) {
		t.Fatal("Start not answered")
	}
	if e, ok := tb.Lookup(ip, time.Now()); !ok || e.User != "alice" || e.Source != SourceRADIUS {
		t.Fatalf("after Start: %+v %v", e, ok)
	}
	if !radclient(t, addr, string(radiusSecret), msg("Interim-Update", "erin")) {
		t.Fatal("Interim-Update not answered")
	}
	if e, ok := tb.Lookup(ip, time.Now()); !ok || e.User != "erin" {
		t.Fatalf("after Interim-Update: %+v %v", e, ok)
	}
	if radclient(t, addr, "not-the-secret", msg("Stop", "erin")) {
		t.Error("a Stop with the wrong secret was answered")
	}
	if _, ok := tb.Lookup(ip, time.Now()); !ok {
		t.Fatal("a Stop with the wrong secret ended the session")
	}
	if !radclient(t, addr, string(radiusSecret), msg("Stop", "erin")) {
		t.Fatal("Stop not answered")
	}
	if e, ok := tb.Lookup(ip, time.Now()); ok {
		t.Fatalf("after Stop: %+v", e)
	}
}

func TestRADIUSUser(t *testing.T) {
	for in, want := range map[string]string{
		"alice": "alice", `SCHOOL\alice`: "alice", "alice@school.example": "alice", " bob ": "bob", "@x": "@x",
	} {
		if got := RADIUSUser(in); got != want {
			t.Errorf("RADIUSUser(%q) = %q, want %q", in, got, want)
		}
	}
}
