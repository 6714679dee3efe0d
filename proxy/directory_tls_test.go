package proxy

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/schoolgate/schoolgate/internal/slapdtest"
)

// TestProxyLDAPTLS: directory users sign in to the proxy over ldaps:// and
// start_tls against a slapd that answers nothing in the clear; with a
// ca_file that did not issue the server's certificate they get the 407
// page saying the directory cannot be reached, and the program log says
// why (the certificate, and which file to fix).
func TestProxyLDAPTLS(t *testing.T) {
	srv := slapdtest.StartTLS(t, slapdtest.SchoolLDIF)
	tests := []struct {
		name, conn string
		status     int
		body, log  string
	}{
		{"ldaps with ca_file", "url: " + srv.LDAPSURL + "\nca_file: " + srv.CAFile, 200, "hello from upstream", ""},
		{"start_tls with ca_file", "url: " + srv.URL + "\nstart_tls: true\nca_file: " + srv.CAFile, 200, "hello from upstream", ""},
		{"ldaps with another CA", "url: " + srv.LDAPSURL + "\nca_file: " + srv.OtherCAFile, 407, "directory cannot be reached",
			"the server's certificate does not chain to users.ldap.ca_file " + srv.OtherCAFile},
		{"start_tls without ca_file", "url: " + srv.URL + "\nstart_tls: true", 407, "directory cannot be reached",
			"does not chain to the system's roots (set users.ldap.ca_file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.WarnLevel)
			e := ldapEnvOn(t, srv, tc.conn, zap.New(core))
			school := "http://school.test:" + strconv.Itoa(e.up.Listener.Addr().(*net.TCPAddr).Port) + "/hello"
			status, body := e.get(t, "tom", "tom-pw", school)
			if status != tc.status || !strings.Contains(body, tc.body) {
				t.Fatalf("status %d, want %d with %q:\n%s", status, tc.status, tc.body, body)
			}
			if l := e.lastLog(t, "school.test"); l.User != "tom" {
				t.Errorf("logged user %q, want tom", l.User)
			}
			if tc.log == "" {
				return
			}
			for _, l := range logs.All() {
				for _, f := range l.Context {
					if err, ok := f.Interface.(error); ok && f.Key == "error" && strings.Contains(err.Error(), tc.log) {
						return
					}
				}
			}
			t.Fatalf("the program log does not say %q: %v", tc.log, logs.All())
		})
	}
}
