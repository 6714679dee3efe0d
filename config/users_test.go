package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// a real bcrypt hash (cost 4) of "secret", to keep tests fast.
var testHash = func() string {
	h, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
}()

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadUsers(t *testing.T) {
	text := "\ufeffUser,Profile,Password_Hash\r\n" +
		"# staff first\n" +
		"\n" +
		"alice,staff," + testHash + "\n" +
		" bob , student , " + testHash + "\n" +
		"\"carol\",student,\"" + testHash + "\""
	p := writeFile(t, "users.csv", text)
	users, err := LoadUsers(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []User{
		{"alice", "staff", testHash, 4},
		{"bob", "student", testHash, 5},
		{"carol", "student", testHash, 6},
	}
	if len(users) != len(want) {
		t.Fatalf("got %+v", users)
	}
	for i := range want {
		if users[i] != want[i] {
			t.Errorf("user %d = %+v, want %+v", i, users[i], want[i])
		}
	}
}

func TestLoadUsersProblems(t *testing.T) {
	tests := []struct {
		name, text string
		line       int
		msg        string
	}{
		{"columns", "user,profile,password_hash\nalice,staff\n", 2, "want 3 columns (user,profile,password_hash), got 2"},
		{"too many columns", "alice,staff," + testHash + ",x\n", 1, "want 3 columns"},
		{"empty user", "# c\n,staff," + testHash + "\n", 2, "empty user name"},
		{"bad user", "a b,staff," + testHash + "\n", 1, `bad user name "a b"`},
		{"no profile", "alice,," + testHash + "\n", 1, `user "alice" has no profile`},
		{"duplicate", "alice,staff," + testHash + "\n\nalice,student," + testHash + "\n", 3, `duplicate user "alice" (first at line 1)`},
		{"not bcrypt", "alice,staff,5f4dcc3b5aa765d61d8327deb882cf99\n", 1, `user "alice": password_hash is not a bcrypt hash`},
		{"plain password", "user,profile,password_hash\nalice,staff,secret\n", 2, "not a bcrypt hash"},
		{"header not first", "alice,staff," + testHash + "\nuser,profile,password_hash\n", 2, "not a bcrypt hash"},
		{"bad quotes", "alice,\"staff," + testHash + "\n", 1, "bad CSV"},
		// A cost-31 hash (made by hand: generating one would take days).
		{"cost too high", "user,profile,password_hash\nalice,staff,$2a$31$" + testHash[7:] + "\n", 2,
			`user "alice": bcrypt cost 31 is too slow to check (at most 14); re-add the user`},
		{"cost 15", "alice,staff,$2a$15$" + testHash[7:] + "\n", 1, "bcrypt cost 15 is too slow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, "users.csv", tt.text)
			_, err := LoadUsers(p)
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("want Problems, got %v", err)
			}
			if len(ps) != 1 || ps[0].File != p || ps[0].Line != tt.line || !strings.Contains(ps[0].Msg, tt.msg) {
				t.Errorf("got %v\nwant %s:%d: ...%s...", ps, p, tt.line, tt.msg)
			}
		})
	}
	if _, err := LoadUsers(filepath.Join(t.TempDir(), "missing.csv")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v", err)
	}
}

func TestAddUser(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "users.csv")
	if err := AddUser(p, "alice", "staff", "pw1"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("new file mode = %v, want 0600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(p)
	if !strings.HasPrefix(string(data), "user,profile,password_hash\nalice,staff,$2a$10$") {
		t.Errorf("new file = %q", data)
	}

	// Hand-edited lines and comments survive; an existing user is
	// replaced in place.
	text := string(data) + "# the office\nbob,student," + testHash + "\n"
	if err := os.WriteFile(p, []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := AddUserCost(p, "alice", "student", "pw2", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	if err := AddUserCost(p, "carol", "staff", "pw3", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	users, err := LoadUsers(p)
	if err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(p)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 5 || lines[0] != usersHeader || !strings.HasPrefix(lines[1], "alice,student,") ||
		lines[2] != "# the office" || lines[3] != "bob,student,"+testHash || !strings.HasPrefix(lines[4], "carol,staff,") {
		t.Errorf("file after updates:\n%s", data)
	}
	check := map[string]string{"alice": "pw2", "bob": "secret", "carol": "pw3"}
	for _, u := range users {
		if err := bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(check[u.Name])); err != nil {
			t.Errorf("user %s: password does not match: %v", u.Name, err)
		}
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o640 {
		t.Errorf("mode after rewrite = %v, want the file's 0640 kept", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestAddUserRefuses(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "users.csv")
	tests := []struct{ name, user, profile, password, msg string }{
		{"empty password", "alice", "staff", "", "empty password"},
		{"comma", "a,b", "staff", "pw", "bad user name"},
		{"space", "a b", "staff", "pw", "bad user name"},
		{"quote", "a\"b", "staff", "pw", "bad user name"},
		{"newline", "a\nb", "staff", "pw", "bad user name"},
		{"empty name", "", "staff", "pw", "empty user name"},
		{"bad profile", "alice", "st aff", "pw", "bad profile name"},
		{"long password", "alice", "staff", strings.Repeat("x", 73), "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := AddUserCost(p, tt.user, tt.profile, tt.password, bcrypt.MinCost)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("got %v, want an error containing %q", err, tt.msg)
			}
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Error("file created by a refused AddUser")
			}
		})
	}
	// A cost the file could not be loaded with is refused before hashing.
	if err := AddUserCost(p, "alice", "staff", "pw", MaxBcryptCost+1); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("cost %d: got %v", MaxBcryptCost+1, err)
	}
	// A broken file is left alone.
	broken := "alice,staff\n"
	if err := os.WriteFile(p, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := AddUserCost(p, "bob", "staff", "pw", bcrypt.MinCost); err == nil || !strings.Contains(err.Error(), "want 3 columns") {
		t.Errorf("got %v", err)
	}
	if data, _ := os.ReadFile(p); string(data) != broken {
		t.Errorf("broken file changed: %q", data)
	}
}

// TestAddUserThroughSymlink: a users file that is a link is updated where
// it points, the link stays a link; a link to a file not there yet
// creates it; a loop of links is an error.
func TestAddUserThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "shared"), 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "shared", "users.csv")
	link := filepath.Join(dir, "users.csv")
	if err := os.Symlink(filepath.Join("shared", "users.csv"), link); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	// The target does not exist yet: created through the link.
	for _, name := range []string{"alice", "bob"} {
		if err := AddUserCost(link, name, "staff", "pw", bcrypt.MinCost); err != nil {
			t.Fatal(err)
		}
		st, err := os.Lstat(link)
		if err != nil || st.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("after adding %s the link is no longer a link: %v %v", name, st, err)
		}
	}
	users, err := LoadUsers(target)
	if err != nil || len(users) != 2 {
		t.Fatalf("target holds %v (%v), want alice and bob", users, err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "shared")} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp-") {
				t.Errorf("temporary file left in %s: %s", d, e.Name())
			}
		}
	}

	a, b := filepath.Join(dir, "a.csv"), filepath.Join(dir, "b.csv")
	if err := os.Symlink(b, a); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(a, b); err != nil {
		t.Fatal(err)
	}
	if err := AddUserCost(a, "carol", "staff", "pw", bcrypt.MinCost); err == nil || !strings.Contains(err.Error(), "symbolic links") {
		t.Errorf("loop of links: got %v", err)
	}
}

// TestAddUserLinkInLinkedFolder: a relative link inside a folder reached
// through another link is resolved from the real folder, as the kernel
// does (etc/schoolgate → ../opt/sg/etc, whose users.csv → ../users.csv
// is opt/sg/users.csv, not etc/users.csv).
func TestAddUserLinkInLinkedFolder(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"etc", "opt/sg/etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../opt/sg/etc", filepath.Join(root, "etc", "schoolgate")); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	if err := os.Symlink("../users.csv", filepath.Join(root, "opt/sg/etc/users.csv")); err != nil {
		t.Fatal(err)
	}
	via := filepath.Join(root, "etc", "schoolgate", "users.csv")
	real := filepath.Join(root, "opt", "sg", "users.csv")
	// Dangling at first: created where the links lead; then updated there.
	for _, name := range []string{"alice", "bob"} {
		if err := AddUserCost(via, name, "staff", "pw", bcrypt.MinCost); err != nil {
			t.Fatal(err)
		}
	}
	users, err := LoadUsers(real)
	if err != nil || len(users) != 2 {
		t.Fatalf("%s holds %v (%v), want alice and bob", real, users, err)
	}
	if _, err := os.Lstat(filepath.Join(root, "etc", "users.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a users file was written beside the link instead: %v", err)
	}
}
