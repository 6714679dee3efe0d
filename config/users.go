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
		msgs := userProblems(u, seen)
		for _, m := range msgs {
			ps = append(ps, Problem{name, n, m})
		}
		if u.Name != "" {
			if _, dup := seen[u.Name]; !dup {
				seen[u.Name] = n
			}
		}
		bad := len(msgs) > 0
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

// userProblems is what is wrong with the user of one line of a users
// file; seen holds the line of each user named before it.
func userProblems(u User, seen map[string]int) []string {
	var msgs []string
	if err := checkUserName(u.Name); err != nil {
		msgs = append(msgs, err.Error())
	}
	if u.Profile == "" {
		msgs = append(msgs, fmt.Sprintf("user %q has no profile", u.Name))
	}
	if cost, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
		msgs = append(msgs, fmt.Sprintf("user %q: password_hash is not a bcrypt hash (use schoolgate users add)", u.Name))
	} else if cost > MaxBcryptCost {
		msgs = append(msgs, fmt.Sprintf("user %q: bcrypt cost %d is too slow to check (at most %d); re-add the user with schoolgate users add", u.Name, cost, MaxBcryptCost))
	}
	if first, dup := seen[u.Name]; dup && u.Name != "" {
		msgs = append(msgs, fmt.Sprintf("duplicate user %q (first at line %d)", u.Name, first))
	}
	return msgs
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
	return rewriteUsers(path, true, func(lines []usersLine) ([]string, error) {
		out := make([]string, 0, len(lines)+1)
		replaced := false
		for _, l := range lines {
			if l.user != nil && l.user.Name == name {
				out = append(out, newLine)
				replaced = true
			} else {
				out = append(out, l.raw)
			}
		}
		if !replaced {
			out = append(out, newLine)
		}
		return out, nil
	})
}

// rewriteUsers rewrites the users file at path atomically with the lines
// edit returns for its current lines; a missing file is created (mode
// 0600, with a header line) when create is set. A file with problems is
// not touched. A users file that is a symbolic link (to a shared folder,
// say) is updated where it points; the link stays a link.
func rewriteUsers(path string, create bool, edit func([]usersLine) ([]string, error)) error {
	path, err := followLinks(path)
	if err != nil {
		return err
	}
	mode := fs.FileMode(0o600)
	var old fs.FileInfo
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && create:
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
	out, err := edit(lines)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, l := range out {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return writeAtomic(path, []byte(b.String()), mode, old)
}

// RemoveUsers removes the named users from the users file at path (one
// atomic rewrite; every other line, comments included, is kept). A name
// the file does not hold is an error and nothing is changed.
func RemoveUsers(path string, names []string) error {
	gone := make(map[string]bool, len(names))
	for _, n := range names {
		gone[n] = false
	}
	return rewriteUsers(path, false, func(lines []usersLine) ([]string, error) {
		out := make([]string, 0, len(lines))
		for _, l := range lines {
			if l.user != nil {
				if _, ok := gone[l.user.Name]; ok {
					gone[l.user.Name] = true
					continue
				}
			}
			out = append(out, l.raw)
		}
		var missing []string
		for _, n := range names {
			if !gone[n] {
				missing = append(missing, fmt.Sprintf("%q", n))
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("no user %s in %s; nothing removed", strings.Join(missing, ", "), path)
		}
		return out, nil
	})
}

// UserUpdate is one user to add or update. Hash is the bcrypt hash of a
// new password; "" keeps an existing user's password (a new user needs one).
type UserUpdate struct {
	Name, Profile, Hash string
}

// UpdateUsers adds or updates users in the users file at path in one
// atomic rewrite (created if missing): an existing user's line is replaced
// in place, new users are appended in the order given.
func UpdateUsers(path string, updates []UserUpdate) error {
	for _, u := range updates {
		if err := checkUserName(u.Name); err != nil {
			return err
		}
		if err := checkProfileName(u.Profile); err != nil {
			return fmt.Errorf("user %q: %w", u.Name, err)
		}
	}
	return rewriteUsers(path, true, func(lines []usersLine) ([]string, error) {
		idx := make(map[string]int, len(updates))
		for i, u := range updates {
			idx[u.Name] = i
		}
		done := make([]bool, len(updates))
		out := make([]string, 0, len(lines)+len(updates))
		for _, l := range lines {
			if l.user != nil {
				if i, ok := idx[l.user.Name]; ok {
					u := updates[i]
					hash := u.Hash
					if hash == "" {
						hash = l.user.PasswordHash
					}
					out = append(out, u.Name+","+u.Profile+","+hash)
					done[i] = true
					continue
				}
			}
			out = append(out, l.raw)
		}
		for i, u := range updates {
			if done[i] {
				continue
			}
			if u.Hash == "" {
				return nil, fmt.Errorf("new user %q has no password", u.Name)
			}
			out = append(out, u.Name+","+u.Profile+","+u.Hash)
		}
		return out, nil
	})
}

// ImportLine is one row of a user import: user,profile[,password].
type ImportLine struct {
	Name, Profile, Password string
	Line                    int
}

// ParseUserImport reads a CSV export from a school's MIS: one user a row,
// `user,profile[,password]`, an optional header row naming those columns,
// '#' comment lines and blank lines. name labels the problems, every one
// of which is reported as FILE:LINE.
func ParseUserImport(data []byte, name string) ([]ImportLine, error) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	var (
		out   []ImportLine
		ps    Problems
		seen  = make(map[string]int)
		first = true
	)
	for i, raw := range strings.Split(text, "\n") {
		n := i + 1
		t := strings.TrimSpace(raw)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		fields, err := splitCSVLine(t)
		if err != nil {
			ps = append(ps, Problem{name, n, fmt.Sprintf("bad CSV: %v", err)})
			continue
		}
		if first {
			first = false
			if len(fields) >= 2 && strings.EqualFold(fields[0], "user") && strings.EqualFold(fields[1], "profile") {
				continue
			}
		}
		if len(fields) != 2 && len(fields) != 3 {
			ps = append(ps, Problem{name, n, fmt.Sprintf("want 2 or 3 columns (user,profile[,password]), got %d", len(fields))})
			continue
		}
		l := ImportLine{Name: fields[0], Profile: fields[1], Line: n}
		if len(fields) == 3 {
			l.Password = fields[2]
		}
		bad := false
		if err := checkUserName(l.Name); err != nil {
			ps = append(ps, Problem{name, n, err.Error()})
			bad = true
		}
		if err := checkProfileName(l.Profile); err != nil {
			ps = append(ps, Problem{name, n, fmt.Sprintf("user %q: %v", l.Name, err)})
			bad = true
		}
		if len(l.Password) > 72 {
			ps = append(ps, Problem{name, n, fmt.Sprintf("user %q: password too long (bcrypt uses at most 72 bytes)", l.Name)})
			bad = true
		}
		if first, dup := seen[l.Name]; dup {
			ps = append(ps, Problem{name, n, fmt.Sprintf("duplicate user %q (first at line %d)", l.Name, first)})
			bad = true
		} else if l.Name != "" {
			seen[l.Name] = n
		}
		if !bad {
			out = append(out, l)
		}
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return out, nil
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
