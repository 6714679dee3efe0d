package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "ut1"), 0o700); err != nil {
		t.Fatal(err)
	}
	write("extra.txt", "a.example\n")
	write("ca.pem", "x")
	write("c.yaml", `lists:
  - category: adult
    file: extra.txt
  - ut1: ut1
  - ut1: extra.txt
  - category: adult
    file: ut1
proxy:
  intercept: {ca_cert: ca.pem, ca_key: ca.key}
default_profile: p
profiles: {p: {}}
`)
	path := filepath.Join(dir, "c.yaml")
	_, warnings, err := Check(path)
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %v", err)
	}
	want := []string{
		path + ":5: UT1 tree " + filepath.Join(dir, "extra.txt") + " is not a folder",
		path + ":6: list file " + filepath.Join(dir, "ut1") + " is a folder, not a file",
		path + ":9: proxy.intercept.ca_key " + filepath.Join(dir, "ca.key") + " does not exist",
	}
	if got := strings.Split(ps.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", ps.Error(), strings.Join(want, "\n"))
	}

	// Load itself does not look at the files.
	if _, err := Load(path); err != nil {
		t.Errorf("Load: %v", err)
	}
}

// Configs that load but cannot work as written: each is a FILE:LINE error.
func TestCheckRefusesWhatCannotWork(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "logfile"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "c.yaml")
	text := `clients: [10.10.0.0/16, 10.30.0.0/16]
networks:
  10.10.1.0/24: p
  10.20.0.0/16: p
  10.30.0.0/15: p
lists:
  - category: education
    domains:
      - school.example
      - localhost
      - intranet
      - 10.1.2.3
  - category: adult
    urls: [intranet/page, www.example.com/x]
log:
  dir: logfile
dns:
  trusted_forwarders: [10.10.0.53, 10.0.0.10]
default_profile: p
profiles: {p: {}}
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatalf("Load must still accept it (serve runs without those parts): %v", err)
	}
	_, _, err := Check(path)
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %v", err)
	}
	want := []string{
		":4: network 10.20.0.0/16 is not inside clients",
		":5: network 10.30.0.0/15 is only partly inside clients",
		`:10: entry "localhost" is a single-label name`,
		`:11: entry "intranet" is a single-label name`,
		`:12: entry "10.1.2.3" is an IP address`,
		`:14: entry "intranet/page" is a single-label name`,
		":16: log.dir " + filepath.Join(dir, "logfile") + " is a file, not a folder",
		":18: dns.trusted_forwarders: 10.0.0.10/32 is not inside clients",
	}
	lines := strings.Split(ps.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(lines), len(want), ps.Error())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], path+w) {
			t.Errorf("problem %d = %q, want it to start %q", i, lines[i], path+w)
		}
	}
}

// The interception CA files are read, not only found: a file that is not
// a certificate, a certificate that is not a CA, or a key of another pair
// is refused at the ca_cert line (and so, through the proxy, by a reload).
func TestCheckCA(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("notcert.pem", "this is not a certificate\n")
	write("any.key", "nor a key\n")
	write("c.yaml", "proxy:\n  intercept:\n    ca_cert: notcert.pem\n    ca_key: any.key\ndefault_profile: p\nprofiles: {p: {}}\n")
	path := filepath.Join(dir, "c.yaml")
	_, _, err := Check(path)
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Line != 3 ||
		!strings.Contains(ps[0].Msg, "proxy.intercept.ca_cert") || !strings.Contains(ps[0].Msg, "PEM") {
		t.Fatalf("Check = %v, want one problem at line 3 saying the CA file holds no certificate", err)
	}
}

// A config that tries to allow or step round what a statutory list names
// is refused at the line that does it; a list that only blocks is not
// (refusing it would say what the statutory list holds).
func TestCheckStatutory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("iwf.txt", "images.example/albums/1234/\nwhole-site.example\n")
	write("empty.txt", "# nothing yet\n")
	write("ca.pem", "x")
	write("ca.key", "x")
	write("c.yaml", `statutory:
  - name: iwf
    file: iwf.txt
lists:
  - category: education
    domains: [school.example, cdn.whole-site.example]
  - category: adult
    domains: [whole-site.example]
  - category: education
    urls: [images.example/albums/1234/x.jpg, images.example/other]
default_profile: p
profiles:
  p:
    rules:
      - action: allow
        categories: [education]
      - action: allow
        domains: [whole-site.example, images.example]
      - action: block
        domains: [whole-site.example]
`)
	path := filepath.Join(dir, "c.yaml")
	_, _, err := Check(path)
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %v", err)
	}
	want := []string{
		path + ":5: cannot allow cdn.whole-site.example: it is on the statutory list iwf",
		path + ":9: cannot allow images.example/albums/1234/x.jpg: it is on the statutory list iwf",
		path + ":17: cannot allow whole-site.example: it is on the statutory list iwf",
	}
	if got := strings.Split(ps.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", ps.Error(), strings.Join(want, "\n"))
	}

	// Intercepting a statutory host, and an empty statutory file.
	write("c2.yaml", "statutory:\n  - {name: iwf, file: iwf.txt}\n  - {name: ctiru, file: empty.txt}\nproxy:\n  intercept:\n    ca_cert: ca.pem\n    ca_key: ca.key\n    domains: [whole-site.example]\ndefault_profile: p\nprofiles: {p: {}}\n")
	_, _, err = Check(filepath.Join(dir, "c2.yaml"))
	for _, w := range []string{":3: loading statutory list ctiru: ", "holds no entries", ":8: cannot intercept whole-site.example: it is on the statutory list iwf"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Check c2.yaml = %v, want it to say %q", err, w)
		}
	}
}

// state_dir defaults to "state" beside the config and must be a folder.
func TestStateDir(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte("default_profile: p\nprofiles: {p: {}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "state"); cfg.StateDir != want {
		t.Errorf("StateDir = %s, want %s", cfg.StateDir, want)
	}
	if err := os.WriteFile(filepath.Join(dir, "afile"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("state_dir: afile\ndefault_profile: p\nprofiles: {p: {}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = Check(path)
	if err == nil || !strings.Contains(err.Error(), ":1: state_dir "+filepath.Join(dir, "afile")+" is a file") {
		t.Errorf("Check = %v, want state_dir refused at line 1", err)
	}
}
