package directory

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/internal/slapdtest"
	"github.com/schoolgate/schoolgate/internal/testenv"
)

// TestSlapdTLS signs in against a slapd that has a certificate from a test
// CA and refuses every operation outside TLS: ldaps:// and start_tls with
// ca_file work (so they really encrypted), and each way of getting the
// server's certificate wrong is refused with an UnavailableError that
// says what to fix.
func TestSlapdTLS(t *testing.T) {
	srv := slapdtest.StartTLS(t, slapdtest.SchoolLDIF)
	port := strconv.Itoa(srv.TLSPort)
	tests := []struct {
		name, url string
		startTLS  bool
		caFile    string
		want      string // "" signs in; else in the UnavailableError
	}{
		{"ldaps with ca_file", srv.LDAPSURL, false, srv.CAFile, ""},
		{"ldaps by name", "ldaps://localhost:" + port, false, srv.CAFile, ""},
		{"start_tls with ca_file", srv.URL, true, srv.CAFile, ""},
		{"ldaps without ca_file", srv.LDAPSURL, false, "", "does not chain to the system's roots (set users.ldap.ca_file"},
		{"ldaps with another CA", srv.LDAPSURL, false, srv.OtherCAFile, "does not chain to users.ldap.ca_file " + srv.OtherCAFile},
		{"start_tls with another CA", srv.URL, true, srv.OtherCAFile, "does not chain to users.ldap.ca_file " + srv.OtherCAFile},
		{"start_tls without ca_file", srv.URL, true, "", "does not chain to the system's roots"},
		// Proves the sign-ins above were encrypted: this server answers
		// nothing in the clear.
		{"plain ldap (loopback) where the server wants TLS", srv.URL, false, "", "confidentiality"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := schoolConfig(t, tc.url)
			cfg.StartTLS, cfg.CAFile = tc.startTLS, tc.caFile
			d, _ := newDir(t, cfg)
			r, err := d.Authenticate(context.Background(), "alice", "alice-pw")
			if tc.want == "" {
				if err != nil || r.Profile != "pupils" {
					t.Fatalf("Authenticate = %+v, %v; want pupils", r, err)
				}
				return
			}
			var ue *UnavailableError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Authenticate = %+v, %v; want an UnavailableError saying %q", r, err, tc.want)
			}
		})
	}
}

// TestSlapdTLSWrongName: a certificate from the right CA for another host
// is refused, by name: the URL's host is what the certificate is checked
// against (not whatever the server presents).
func TestSlapdTLSWrongName(t *testing.T) {
	srv := slapdtest.StartTLS(t, slapdtest.SchoolLDIF)
	// The certificate is for 127.0.0.1, ::1 and localhost; a relay on
	// 127.0.0.2 reaches the same slapd under an address it does not name.
	relay := relayTo(t, "127.0.0.2:0", "127.0.0.1:"+strconv.Itoa(srv.TLSPort))
	cfg := schoolConfig(t, "ldaps://"+relay)
	cfg.CAFile = srv.CAFile
	d, _ := newDir(t, cfg)
	_, err := d.Authenticate(context.Background(), "alice", "alice-pw")
	var ue *UnavailableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "not for the host in users.ldap.url ldaps://"+relay) {
		t.Fatalf("Authenticate = %v; want an UnavailableError saying the certificate is not for the host", err)
	}
}

// relayTo listens on addr and copies each connection to and from target.
func relayTo(t *testing.T, addr, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	testenv.ServeConns(t, ln, func(c net.Conn) {
		u, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer u.Close()
		go io.Copy(u, c) //nolint:errcheck
		io.Copy(c, u)    //nolint:errcheck
	})
	return ln.Addr().String()
}

// TestCAFileForms: ca_file may be PEM (one or several certificates) or a
// single DER certificate as Windows exports it; anything else is refused
// by New with the file's name.
func TestCAFileForms(t *testing.T) {
	srv := slapdtest.StartTLS(t, slapdtest.SchoolLDIF)
	pemBytes, err := os.ReadFile(srv.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		t.Fatal(err)
	}
	other, err := os.ReadFile(srv.OtherCAFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tests := []struct {
		name    string
		content []byte
		bad     string // "" works
	}{
		{"DER", block.Bytes, ""},
		{"PEM bundle, the right CA second", append(other, pemBytes...), ""},
		{"PEM without a certificate", []byte("-----BEGIN NOTHING-----\n-----END NOTHING-----\n"), "holds no usable PEM certificate"},
		{"garbage", []byte("not a certificate"), "holds neither PEM certificates nor a DER certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if err := os.WriteFile(p, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := schoolConfig(t, srv.LDAPSURL)
			cfg.CAFile = p
			d, err := New(cfg)
			if tc.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tc.bad) || !strings.Contains(err.Error(), p) {
					t.Fatalf("New = %v; want an error naming %s saying %q", err, p, tc.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r, err := d.Authenticate(context.Background(), "tom", "tom-pw"); err != nil || r.Profile != "staff" {
				t.Fatalf("Authenticate = %+v, %v; want staff", r, err)
			}
		})
	}
}

// TestTLSStall: a server that accepts the connection (and StartTLS) but
// never completes the TLS handshake is given up on after the timeout, as
// unreachable, not waited for forever.
func TestTLSStall(t *testing.T) {
	// An ExtendedResponse to message 1 (go-ldap's first): success.
	startTLSOK := []byte{0x30, 0x0c, 0x02, 0x01, 0x01, 0x78, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00}
	for _, startTLS := range []bool{false, true} {
		name := map[bool]string{false: "ldaps", true: "start_tls"}[startTLS]
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			defer close(done)
			testenv.ServeConns(t, ln, func(c net.Conn) {
				if startTLS {
					buf := make([]byte, 512)
					if _, err := c.Read(buf); err != nil {
						return
					}
					c.Write(startTLSOK) //nolint:errcheck
				}
				<-done // then say nothing more
			})
			scheme := map[bool]string{false: "ldaps://", true: "ldap://"}[startTLS]
			cfg := schoolConfig(t, scheme+ln.Addr().String())
			cfg.StartTLS = startTLS
			d, _ := newDir(t, cfg)
			d.timeout = 300 * time.Millisecond
			res := make(chan error, 1)
			go func() {
				_, err := d.Authenticate(context.Background(), "alice", "alice-pw")
				res <- err
			}()
			select {
			case err := <-res:
				var ue *UnavailableError
				if !errors.As(err, &ue) {
					t.Fatalf("Authenticate = %v; want an UnavailableError", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Authenticate still waits for a stalled TLS handshake after 30s (timeout 300ms)")
			}
		})
	}
}
