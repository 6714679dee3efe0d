//go:build unix

package config

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func fileOwner(t *testing.T, path string) (uid, gid int) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	s := st.Sys().(*syscall.Stat_t)
	return int(s.Uid), int(s.Gid)
}

// TestAddUserKeepsOwner: rewriting the file as root keeps its owner and
// group, so the gateway's service account can still read it.
func TestAddUserKeepsOwner(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give the file another owner")
	}
	p := filepath.Join(t.TempDir(), "users.csv")
	if err := AddUserCost(p, "alice", "staff", "pw", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 4242, 4343); err != nil {
		t.Skipf("chown: %v", err)
	}
	if err := AddUserCost(p, "bob", "staff", "pw", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	uid, gid := fileOwner(t, p)
	if uid != 4242 || gid != 4343 {
		t.Errorf("owner after rewrite %d:%d, want 4242:4343", uid, gid)
	}
}
