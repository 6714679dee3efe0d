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

// users list, remove and import beside add; all four find the users file
// through -config (its users.file) or -file.
func TestUsersListRemoveImport(t *testing.T) {
	dir := t.TempDir()
	usersBcryptCost = bcrypt.MinCost
	t.Cleanup(func() { usersBcryptCost = bcrypt.DefaultCost })
	file := filepath.Join(dir, "users.csv")
	cfg := filepath.Join(dir, "school.yaml")
	if err := os.WriteFile(cfg, []byte("users: {file: users.csv}\ndefault_profile: student\nprofiles: {student: {}, staff: {}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runCmd(t, "pw\n", "users", "add", "-config", cfg, "-profile", "staff", "mr.patel"); code != 0 {
		t.Fatalf("add through -config: exit %d, %s", code, errs)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("add -config did not write the config's users.file: %v", err)
	}

	// An MIS export: header, a row with a password, rows without, an
	// existing user (keeps the password) whose profile changes.
	mis := filepath.Join(dir, "mis.csv")
	if err := os.WriteFile(mis, []byte("User,Profile,Password\r\nada,student,\"Secret, with comma\"\r\nbea,student\r\n# a leaver\r\ncai,student,\r\nmr.patel,student\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd(t, "", "users", "import", "-config", cfg, mis)
	if code != 0 {
		t.Fatalf("import: exit %d, stderr %s", code, errs)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 3 || rows[0] != "user,password" || !strings.HasPrefix(rows[1], "bea,") || !strings.HasPrefix(rows[2], "cai,") {
		t.Fatalf("import printed %q, want user,password for bea and cai only", out)
	}
	generated := map[string]string{}
	for _, r := range rows[1:] {
		name, pw, _ := strings.Cut(r, ",")
		if len(pw) != 14 {
			t.Errorf("generated password %q for %s", pw, name)
		}
		generated[name] = pw
	}
	if !strings.Contains(errs, "4 users imported (3 new, 1 updated); 2 passwords generated") {
		t.Errorf("import summary: %q", errs)
	}
	users, err := config.LoadUsers(file)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{"mr.patel": {"student", "pw"}, "ada": {"student", "Secret, with comma"},
		"bea": {"student", generated["bea"]}, "cai": {"student", generated["cai"]}}
	if len(users) != len(want) {
		t.Fatalf("users after import: %+v", users)
	}
	for _, u := range users {
		w := want[u.Name]
		if u.Profile != w[0] || bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(w[1])) != nil {
			t.Errorf("%s: profile %s, or the password is not %q", u.Name, u.Profile, w[1])
		}
	}

	// list: user,profile, no hashes; -file works too.
	code, out, errs = runCmd(t, "", "users", "list", "-file", file)
	if code != 0 || out != "user,profile\nmr.patel,student\nada,student\nbea,student\ncai,student\n" {
		t.Errorf("list: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	// Import problems: every one at its line, nothing imported.
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("dan,student\neve,pupils\nda n,student\ndan,staff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(file)
	code, _, errs = runCmd(t, "", "users", "import", "-config", cfg, bad)
	if code != 1 || !strings.Contains(errs, bad+":3: bad user name") || !strings.Contains(errs, bad+":4: duplicate user \"dan\"") {
		t.Errorf("bad import: exit %d, stderr %q", code, errs)
	}
	if err := os.WriteFile(bad, []byte("dan,student\neve,pupils\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCmd(t, "", "users", "import", "-config", cfg, bad)
	if code != 1 || !strings.Contains(errs, bad+`:2: user "eve": unknown profile "pupils"`) {
		t.Errorf("unknown profile: exit %d, stderr %q", code, errs)
	}
	if after, _ := os.ReadFile(file); string(after) != string(before) {
		t.Error("a refused import changed the users file")
	}

	// remove: one or more names; an unknown one removes nothing.
	if code, _, errs := runCmd(t, "", "users", "remove", "-config", cfg, "bea", "nobody"); code != 1 || !strings.Contains(errs, `no user "nobody"`) {
		t.Errorf("remove unknown: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := runCmd(t, "", "users", "remove", "-file", file, "bea", "cai"); code != 0 {
		t.Errorf("remove: exit %d, stderr %q", code, errs)
	}
	if _, out, _ := runCmd(t, "", "users", "list", "-config", cfg); out != "user,profile\nmr.patel,student\nada,student\n" {
		t.Errorf("list after remove: %q", out)
	}

	// Neither -file nor -config: bad usage.
	for _, sub := range []string{"list", "remove", "import"} {
		if code, _, _ := runCmd(t, "", "users", sub, "x"); code != 2 {
			t.Errorf("users %s without a file: exit %d, want 2", sub, code)
		}
	}
}
