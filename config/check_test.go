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
