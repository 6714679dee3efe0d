package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/schoolgate/schoolgate/config"
	"golang.org/x/crypto/bcrypt"
)

func TestUsersAdd(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "users.csv")
	usersBcryptCost = bcrypt.MinCost // a fast hash under -race
	t.Cleanup(func() { usersBcryptCost = bcrypt.DefaultCost })

	code, out, errs := runCmd(t, "s3cret\n", "users", "add", "-file", file, "-profile", "staff", "alice")
	if code != 0 || !strings.Contains(out, `saved user "alice" with profile staff`) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// Flags after the name, a password without a final newline, CRLF.
	if code, _, errs := runCmd(t, "pw2", "users", "add", "bob", "-file", file, "-profile", "student"); code != 0 {
		t.Fatalf("bob: exit %d, %s", code, errs)
	}
	if code, _, errs := runCmd(t, "new pass\r\n", "users", "add", "-file", file, "-profile", "student", "alice"); code != 0 {
		t.Fatalf("alice again: exit %d, %s", code, errs)
	}
	users, err := config.LoadUsers(file)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{"alice": {"student", "new pass"}, "bob": {"student", "pw2"}}
	if len(users) != 2 {
		t.Fatalf("users = %+v", users)
	}
	for _, u := range users {
		w := want[u.Name]
		if u.Profile != w[0] || bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(w[1])) != nil {
			t.Errorf("user %+v does not hold profile %s and password %q", u, w[0], w[1])
		}
	}

	// -config checks the profile.
	cfg := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfg, []byte("default_profile: staff\nprofiles: {staff: {}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runCmd(t, "pw\n", "users", "add", "-config", cfg, "-file", file, "-profile", "pupils", "carol"); code != 1 || !strings.Contains(errs, `unknown profile "pupils" (known: staff)`) {
		t.Errorf("unknown profile: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := runCmd(t, "pw\n", "users", "add", "-config", cfg, "-file", file, "-profile", "staff", "carol"); code != 0 {
		t.Errorf("known profile: exit %d, stderr %q", code, errs)
	}

	// Refusals: exit 1, nothing changed.
	before, _ := os.ReadFile(file)
	for _, tt := range []struct {
		stdin, name, msg string
	}{
		{"", "dave", "empty password"},
		{"\n", "dave", "empty password"},
		{"pw\n", "da,ve", "bad user name"},
		{"pw\n", "da ve", "bad user name"},
	} {
		code, _, errs := runCmd(t, tt.stdin, "users", "add", "-file", file, "-profile", "staff", tt.name)
		if code != 1 || !strings.Contains(errs, tt.msg) {
			t.Errorf("%q %q: exit %d, stderr %q, want %q", tt.stdin, tt.name, code, errs, tt.msg)
		}
	}
	if after, _ := os.ReadFile(file); string(after) != string(before) {
		t.Error("a refused add changed the file")
	}

	// Bad usage.
	for _, args := range [][]string{
		{"users"}, {"users", "del", "x"},
		{"users", "add", "-profile", "staff", "x"},
		{"users", "add", "-file", file, "x"},
		{"users", "add", "-file", file, "-profile", "staff"},
		{"users", "add", "-file", file, "-profile", "staff", "x", "y"},
		{"users", "add", "-nope", "-file", file, "-profile", "staff", "x"},
	} {
		if code, _, _ := runCmd(t, "pw\n", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
