package config

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// User is one line of the users file.
type User struct {
	Name         string
	Profile      string
	PasswordHash string // bcrypt
	Line         int
}

// MaxBcryptCost is the highest bcrypt cost a users file may use. Each step
// doubles the work: cost 10 (the default) takes tens of milliseconds of
// CPU to check, 14 about a second, and 31 (which bcrypt allows) days, so a
// few requests naming such a user would hold every core. The proxy checks
// each new login's password, so this bounds what one login can cost.
const MaxBcryptCost = 14

// usersHeader is the optional first line naming the columns.
const usersHeader = "user,profile,password_hash"

// usersLine is one physical line of a users file: a user, or a line kept
// as it is (comment, blank, header).
type usersLine struct {
	raw  string
	user *User
}

// LoadUsers reads a users CSV (user,profile,password_hash; an optional
// header line; '#' comment lines; blank lines). Every problem is reported,
// as a Problems naming path and the line.
func LoadUsers(path string) ([]User, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading users file: %w", err)
	}
	_, users, ps := parseUsers(data, path)
	if len(ps) > 0 {
		return nil, ps
	}
	return users, nil
}

// parseUsers splits a users file into its lines and users, checking each.
func parseUsers(data []byte, name string) ([]usersLine, []User, Problems) {
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // a spreadsheet's BOM
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	text = strings.TrimSuffix(text, "\n")
	var (
		lines  []usersLine
		users  []User
		ps     Problems
		seen   = make(map[string]int)
		header = true // the header may only be the first data line
	)
	if text == "" {
		return nil, nil, nil
	}
	for i, raw := range strings.Split(text, "\n") {
		n := i + 1
		t := strings.TrimSpace(raw)
		if t == "" || strings.HasPrefix(t, "#") {
			lines = append(lines, usersLine{raw: raw})
			continue
		}
		fields, err := splitCSVLine(t)
		if err != nil {
			ps = append(ps, Problem{name, n, fmt.Sprintf("bad CSV: %v", err)})
			lines = append(lines, usersLine{raw: raw})
			continue
		}
		if header {
			header = false
			if strings.EqualFold(strings.Join(fields, ","), usersHeader) {
				lines = append(lines, usersLine{raw: raw})
				continue
			}
		}
		if len(fields) != 3 {
			ps = append(ps, Problem{name, n, fmt.Sprintf("want 3 columns (user,profile,password_hash), got %d", len(fields))})
			lines = append(lines, usersLine{raw: raw})
			continue
		}
		u := User{Name: fields[0], Profile: fields[1], PasswordHash: fields[2], Line: n}
		bad := false
		if err := checkUserName(u.Name); err != nil {
			ps = append(ps, Problem{name, n, err.Error()})
			bad = true
		}
		if u.Profile == "" {
			ps = append(ps, Problem{name, n, fmt.Sprintf("user %q has no profile", u.Name)})
			bad = true
		}
		if cost, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
			ps = append(ps, Problem{name, n, fmt.Sprintf("user %q: password_hash is not a bcrypt hash (use schoolgate users add)", u.Name)})
			bad = true
		} else if cost > MaxBcryptCost {
			ps = append(ps, Problem{name, n, fmt.Sprintf("user %q: bcrypt cost %d is too slow to check (at most %d); re-add the user with schoolgate users add", u.Name, cost, MaxBcryptCost)})
			bad = true
		}
		if first, dup := seen[u.Name]; dup && u.Name != "" {
			ps = append(ps, Problem{name, n, fmt.Sprintf("duplicate user %q (first at line %d)", u.Name, first)})
			bad = true
		}
		if u.Name != "" {
			if _, dup := seen[u.Name]; !dup {
				seen[u.Name] = n
			}
		}
		if bad {
			lines = append(lines, usersLine{raw: raw})
			continue
		}
		users = append(users, u)
		lines = append(lines, usersLine{raw: raw, user: &users[len(users)-1]})
	}
	// users may have moved while growing: point lines at the final slice.
	k := 0
	for i := range lines {
		if lines[i].user != nil {
			lines[i].user = &users[k]
			k++
		}
	}
	return lines, users, ps
}

// splitCSVLine splits one line as CSV (so quoted fields from a
// spreadsheet work), trimming spaces around fields.
func splitCSVLine(line string) ([]string, error) {
	r := csv.NewReader(strings.NewReader(line))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	rec, err := r.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, pe.Err
		}
		return nil, err
	}
	for i := range rec {
		rec[i] = strings.TrimSpace(rec[i])
	}
	return rec, nil
}

// checkUserName keeps user names safe in the CSV, in Basic credentials
// and in log lines.
func checkUserName(name string) error {
	switch {
	case name == "":
		return errors.New("empty user name")
	case len(name) > 128:
		return fmt.Errorf("user name %q is too long (at most 128 bytes)", name[:32]+"...")
	case strings.ContainsAny(name, ",\"' \t\r\n:#"):
		return fmt.Errorf("bad user name %q: no commas, quotes, spaces, colons or '#'", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("bad user name %q: no control characters", name)
		}
	}
	return nil
}

// AddUser adds or updates a user in the users file at path, storing a
// bcrypt hash of password. The file is rewritten atomically. A missing
// file is created (mode 0600) with a header line; in an existing one the
// user's line is replaced in place and every other line, comments
// included, is kept as it was. A file with problems is not touched.
func AddUser(path, name, profile, password string) error {
	return AddUserCost(path, name, profile, password, bcrypt.DefaultCost)
}

// AddUserCost is AddUser with a chosen bcrypt cost (bcrypt.MinCost to
// MaxBcryptCost), for tests and for schools that want slower hashes.
func AddUserCost(path, name, profile, password string, cost int) error {
	if err := checkUserName(name); err != nil {
		return err
	}
	if err := checkProfileName(profile); err != nil {
		return err
	}
	if password == "" {
		return errors.New("refusing an empty password")
	}
	if cost < bcrypt.MinCost || cost > MaxBcryptCost {
		return fmt.Errorf("bcrypt cost %d out of range (%d-%d)", cost, bcrypt.MinCost, MaxBcryptCost)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		if errors.Is(err, bcrypt.ErrPasswordTooLong) {
			return errors.New("password too long: bcrypt uses at most 72 bytes")
		}
		return fmt.Errorf("hashing password: %w", err)
	}
	newLine := name + "," + profile + "," + string(hash)

	// A users file that is a symbolic link (to a shared folder, say) is
	// updated where it points; the link stays a link.
	path, err = followLinks(path)
	if err != nil {
		return err
	}
	mode := fs.FileMode(0o600)
	var old fs.FileInfo
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		data = []byte(usersHeader + "\n")
	case err != nil:
		return fmt.Errorf("reading users file: %w", err)
	default:
		if st, err := os.Stat(path); err == nil {
			mode, old = st.Mode().Perm(), st
		}
	}
	lines, _, ps := parseUsers(data, path)
	if len(ps) > 0 {
		return fmt.Errorf("users file has problems; fix them first:\n%w", ps)
	}
	var b strings.Builder
	replaced := false
	for _, l := range lines {
		if l.user != nil && l.user.Name == name {
			b.WriteString(newLine)
			replaced = true
		} else {
			b.WriteString(l.raw)
		}
		b.WriteByte('\n')
	}
	if !replaced {
		b.WriteString(newLine)
		b.WriteByte('\n')
	}
	return writeAtomic(path, []byte(b.String()), mode, old)
}

// followLinks returns the file path names after following symbolic
// links, also when the last one points at a file not there yet.
func followLinks(path string) (string, error) {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		return real, nil
	}
	// Not there (yet), or a loop: follow by hand, resolving each link's
	// folder as the kernel would before joining a relative target to it.
	for range 40 {
		st, err := os.Lstat(path)
		if err != nil || st.Mode()&fs.ModeSymlink == 0 {
			return path, nil
		}
		target, err := os.Readlink(path)
		if err != nil {
			return "", fmt.Errorf("reading users file link: %w", err)
		}
		if !filepath.IsAbs(target) {
			dir := filepath.Dir(path)
			if d, err := filepath.EvalSymlinks(dir); err == nil {
				dir = d
			}
			target = filepath.Join(dir, target)
		}
		path = target
	}
	return "", fmt.Errorf("users file %s: too many levels of symbolic links", path)
}

// writeAtomic replaces path with data: a temporary file in the same
// folder, synced, then renamed over it, so a reader sees the old file or
// the new one, never half of one. The new file gets mode and, where old
// (the file replaced) is given, its owner and group: a file the
// gateway's service account reads must stay readable to it after `sudo
// schoolgate users add`. Where the owner cannot be kept, the file is not
// replaced.
func writeAtomic(path string, data []byte, mode fs.FileMode, old fs.FileInfo) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing users file: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if old != nil {
		if err := keepOwner(tmp, old); err != nil {
			return fmt.Errorf("writing users file: cannot keep its owner (run as root or as the file's owner, or the gateway may no longer read it): %w", err)
		}
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("writing users file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("writing users file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("writing users file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing users file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		done = true
		return fmt.Errorf("writing users file: %w", err)
	}
	done = true
	return nil
}
