package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A busy port names the setting to change, for each listener.
func TestServeBusyPortNamesTheSetting(t *testing.T) {
	for _, name := range []string{"proxy", "dns", "admin"} {
		t.Run(name, func(t *testing.T) {
			busy, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer busy.Close()
			addrs := map[string]string{"proxy": "", "dns": "", "admin": ""}
			addrs[name] = busy.Addr().String()
			dir := t.TempDir()
			cfg := filepath.Join(dir, "c.yaml")
			body := fmt.Sprintf("listen: {proxy: %q, dns: %q, admin: %q}\nclients: [127.0.0.0/8]\ndefault_profile: p\nprofiles: {p: {default: allow}}\nlog: {dir: logs}\n",
				addrs["proxy"], addrs["dns"], addrs["admin"])
			if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			if code := run([]string{"serve", "-config", cfg}, nil, &stdout, &stderr); code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
			}
			want := fmt.Sprintf("listen.%s %s: address already in use - set listen.%s in the config to another port", name, busy.Addr(), name)
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
			}
		})
	}
}
