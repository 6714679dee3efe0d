package main

import (
	"bufio"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/schoolgate/schoolgate/config"
)

// usersBcryptCost is the cost of stored hashes; tests lower it.
var usersBcryptCost = bcrypt.DefaultCost

// runUsers dispatches `schoolgate users add|list|remove|import`.
func runUsers(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "add":
			return runUsersAdd(args[1:], stdin, stdout, stderr)
		case "list":
			return runUsersList(args[1:], stdout, stderr)
		case "remove":
			return runUsersRemove(args[1:], stdout, stderr)
		case "import":
			return runUsersImport(args[1:], stdout, stderr)
		}
	}
	fmt.Fprint(stderr, helpTexts["users"])
	return 2
}

// usersFlags are the flags every users subcommand takes: the users file
// named directly (-file) or through a config's users.file (-config), which
// also checks profiles.
type usersFlags struct {
	sub     string
	fs      *flag.FlagSet
	file    *string
	cfgPath *string
	stderr  io.Writer
}

func newUsersFlags(sub string, stderr io.Writer) *usersFlags {
	fs := newFlagSet("users "+sub, helpTexts["users "+sub], stderr)
	return &usersFlags{
		sub:     sub,
		stderr:  stderr,
		fs:      fs,
		file:    fs.String("file", "", "the users `FILE` (CSV)"),
		cfgPath: configFlag(fs, "config `FILE`: its users.file, and its profiles are checked"),
	}
}

// parse parses args with flags before or after the operands, which it returns.
func (u *usersFlags) parse(args []string) ([]string, bool) {
	var names []string
	rest := args
	for {
		if err := u.fs.Parse(rest); err != nil {
			return nil, false
		}
		if u.fs.NArg() == 0 {
			return names, true
		}
		if len(rest) > u.fs.NArg() && rest[len(rest)-u.fs.NArg()-1] == "--" {
			return append(names, u.fs.Args()...), true
		}
		names = append(names, u.fs.Arg(0))
		rest = u.fs.Args()[1:]
	}
}

// resolve loads the config if -config was given and returns the users
// file: -file, else the config's users.file. code is non-zero on failure
// (the message is printed).
func (u *usersFlags) resolve(sub string, stderr io.Writer) (path string, cfg *config.Config, code int) {
	if *u.cfgPath != "" {
		c, err := config.Load(*u.cfgPath)
		if err != nil {
			fmt.Fprintf(stderr, "schoolgate users %s: %v\n", sub, err)
			return "", nil, 1
		}
		cfg = c
	}
	switch {
	case *u.file != "":
		return *u.file, cfg, 0
	case cfg != nil && cfg.Users.File != "":
		return cfg.Users.File, cfg, 0
	case cfg != nil:
		fmt.Fprintf(stderr, "schoolgate users %s: %s names no users.file; give -file FILE\n", sub, *u.cfgPath)
		return "", nil, 2
	}
	fmt.Fprintf(stderr, "schoolgate users %s: give -file FILE, or -config FILE to use its users.file\n", sub)
	fmt.Fprint(stderr, helpTexts["users "+sub])
	return "", nil, 2
}

// setup parses args, checks the operands with bad (which returns what is
// wrong with them, or "") and finds the users file. code is non-zero when
// the subcommand must stop with it (the message is printed).
func (u *usersFlags) setup(args []string, bad func(operands []string) string) (operands []string, file string, cfg *config.Config, code int) {
	operands, ok := u.parse(args)
	if !ok {
		return nil, "", nil, 2
	}
	if msg := bad(operands); msg != "" {
		fmt.Fprintf(u.stderr, "schoolgate users %s: %s\n", u.sub, msg)
		fmt.Fprint(u.stderr, helpTexts["users "+u.sub])
		return nil, "", nil, 2
	}
	file, cfg, code = u.resolve(u.sub, u.stderr)
	return operands, file, cfg, code
}

// unknownProfile returns the problem with profile under cfg, or "".
func unknownProfile(cfg *config.Config, profile string) string {
	if cfg == nil {
		return ""
	}
	if _, ok := cfg.Profiles[profile]; ok {
		return ""
	}
	known := make([]string, 0, len(cfg.Profiles))
	for p := range cfg.Profiles {
		known = append(known, p)
	}
	sort.Strings(known)
	return fmt.Sprintf("unknown profile %q (known: %s)", profile, strings.Join(known, ", "))
}

// runUsersAdd is `schoolgate users add -file users.csv -profile P NAME`,
// with the password read from stdin: one line from a pipe, or typed twice
// (without echo where stty allows) at a terminal.
func runUsersAdd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	uf := newUsersFlags("add", stderr)
	profile := uf.fs.String("profile", "", "the user's profile")
	names, file, cfg, code := uf.setup(args, func(names []string) string {
		switch {
		case *profile == "":
			return "-profile is required"
		case len(names) != 1:
			return "give exactly one user NAME"
		}
		return ""
	})
	if code != 0 {
		return code
	}
	name := names[0]
	if msg := unknownProfile(cfg, *profile); msg != "" {
		fmt.Fprintf(stderr, "schoolgate users add: %s\n", msg)
		return 1
	}
	password, err := readPassword(stdin, stderr, name)
	if err != nil {
		fmt.Fprintf(stderr, "schoolgate users add: %v\n", err)
		return 1
	}
	if err := config.AddUserCost(file, name, *profile, password, usersBcryptCost); err != nil {
		fmt.Fprintf(stderr, "schoolgate users add: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: saved user %q with profile %s\n", file, name, *profile)
	if cfg == nil {
		fmt.Fprintf(stderr, "schoolgate users add: note: profile %q was not checked against a config (give -config FILE to check it); a user whose profile does not exist cannot sign in\n", *profile)
	}
	return 0
}

// runUsersList is `schoolgate users list`: user,profile per line (no
// password hashes), as `users import` reads them.
func runUsersList(args []string, stdout, stderr io.Writer) int {
	_, file, cfg, code := newUsersFlags("list", stderr).setup(args, func(ops []string) string {
		if len(ops) > 0 {
			return fmt.Sprintf("unexpected argument %q", ops[0])
		}
		return ""
	})
	if code != 0 {
		return code
	}
	users, err := config.LoadUsers(file)
	if err != nil {
		fmt.Fprintf(stderr, "schoolgate users list: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "user,profile")
	for _, u := range users {
		fmt.Fprintf(stdout, "%s,%s\n", u.Name, u.Profile)
	}
	status := 0
	for _, u := range users {
		if msg := unknownProfile(cfg, u.Profile); msg != "" {
			fmt.Fprintf(stderr, "%s:%d: user %q: %s: this user cannot sign in\n", file, u.Line, u.Name, msg)
			status = 1
		}
	}
	return status
}

// runUsersRemove is `schoolgate users remove NAME...`.
func runUsersRemove(args []string, stdout, stderr io.Writer) int {
	names, file, _, code := newUsersFlags("remove", stderr).setup(args, func(names []string) string {
		if len(names) == 0 {
			return "give the user NAME(s) to remove"
		}
		return ""
	})
	if code != 0 {
		return code
	}
	if err := config.RemoveUsers(file, names); err != nil {
		fmt.Fprintf(stderr, "schoolgate users remove: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: removed %s\n", file, strings.Join(names, ", "))
	return 0
}

// runUsersImport is `schoolgate users import FILE`: a CSV from the
// school's MIS, user,profile[,password]. New users without a password get
// a generated one, printed once (user,password on stdout); existing users
// keep theirs unless the row gives one.
func runUsersImport(args []string, stdout, stderr io.Writer) int {
	operands, file, cfg, code := newUsersFlags("import", stderr).setup(args, func(ops []string) string {
		if len(ops) != 1 {
			return "give one CSV FILE to import (user,profile[,password])"
		}
		return ""
	})
	if code != 0 {
		return code
	}
	src := operands[0]
	rows, ok := readImport(src, cfg, stderr)
	if !ok {
		return 1
	}
	existing, err := existingUsers(file)
	if err != nil {
		fmt.Fprintf(stderr, "schoolgate users import: %v\n", err)
		return 1
	}
	updates, generated, added, err := importUpdates(rows, existing)
	if err != nil {
		fmt.Fprintf(stderr, "schoolgate users import: %v\n", err)
		return 1
	}
	if i, err := hashPasswords(updates, rows, generated); err != nil {
		fmt.Fprintf(stderr, "%s:%d: user %q: hashing the password: %v\n", src, rows[i].Line, rows[i].Name, err)
		return 1
	}
	if err := config.UpdateUsers(file, updates); err != nil {
		fmt.Fprintf(stderr, "schoolgate users import: %v\n", err)
		return 1
	}
	nGen := printGenerated(stdout, rows, generated)
	fmt.Fprintf(stderr, "%s: %d users imported (%d new, %d updated)", file, len(rows), added, len(rows)-added)
	if nGen > 0 {
		fmt.Fprintf(stderr, "; %d passwords generated and printed above, once: they are stored only as hashes", nGen)
	}
	fmt.Fprintln(stderr)
	if cfg == nil {
		fmt.Fprintln(stderr, "schoolgate users import: note: profiles were not checked against a config (give -config FILE to check them)")
	}
	return 0
}

// readImport reads the CSV at src, with every row's profile checked
// against cfg (when there is one); on a problem it has said what, and
// that nothing was imported.
func readImport(src string, cfg *config.Config, stderr io.Writer) ([]config.ImportLine, bool) {
	data, err := os.ReadFile(src)
	if err != nil {
		fmt.Fprintf(stderr, "schoolgate users import: %v\n", err)
		return nil, false
	}
	rows, err := config.ParseUserImport(data, src)
	var ps config.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			fmt.Fprintln(stderr, p)
		}
		fmt.Fprintf(stderr, "schoolgate users import: nothing imported\n")
		return nil, false
	}
	if cfg != nil {
		bad := false
		for _, r := range rows {
			if msg := unknownProfile(cfg, r.Profile); msg != "" {
				fmt.Fprintf(stderr, "%s:%d: user %q: %s\n", src, r.Line, r.Name, msg)
				bad = true
			}
		}
		if bad {
			fmt.Fprintf(stderr, "schoolgate users import: nothing imported\n")
			return nil, false
		}
	}
	return rows, true
}

// existingUsers is the names in the users file (none when it does not
// exist yet).
func existingUsers(file string) (map[string]bool, error) {
	existing := map[string]bool{}
	users, err := config.LoadUsers(file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, u := range users {
		existing[u.Name] = true
	}
	return existing, nil
}

// printGenerated prints the generated passwords, user,password, once;
// it returns how many.
func printGenerated(stdout io.Writer, rows []config.ImportLine, generated []string) int {
	n := 0
	for i, pw := range generated {
		if pw == "" {
			continue
		}
		if n == 0 {
			fmt.Fprintln(stdout, "user,password")
		}
		n++
		fmt.Fprintf(stdout, "%s,%s\n", rows[i].Name, pw)
	}
	return n
}

// importUpdates turns the imported rows into updates of the users file,
// with a password generated for each new user the CSV gives none (an
// existing user without one keeps theirs); it counts the new users.
func importUpdates(rows []config.ImportLine, existing map[string]bool) (updates []config.UserUpdate, generated []string, added int, err error) {
	updates = make([]config.UserUpdate, len(rows))
	generated = make([]string, len(rows))
	for i, r := range rows {
		updates[i] = config.UserUpdate{Name: r.Name, Profile: r.Profile}
		if !existing[r.Name] {
			added++
			if r.Password == "" {
				if generated[i], err = generatePassword(); err != nil {
					return nil, nil, 0, err
				}
			}
		}
	}
	return updates, generated, added, nil
}

// hashPasswords sets the hash of every update that has a password (from
// the CSV, or generated), on every core: bcrypt is slow on purpose. It
// returns the index of a row whose password could not be hashed.
func hashPasswords(updates []config.UserUpdate, rows []config.ImportLine, generated []string) (int, error) {
	errs := make([]error, len(rows))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				pw := rows[i].Password
				if pw == "" {
					pw = generated[i]
				}
				h, err := bcrypt.GenerateFromPassword([]byte(pw), usersBcryptCost)
				updates[i].Hash, errs[i] = string(h), err
			}
		}()
	}
	for i := range rows {
		if rows[i].Password != "" || generated[i] != "" {
			next <- i
		}
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return i, err
		}
	}
	return 0, nil
}

// passwordAlphabet leaves out letters and digits that read alike (l 1 I o 0 O).
const passwordAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

// generatePassword returns a password a pupil can type: three groups of
// four from passwordAlphabet (about 59 bits), such as "k7mq-x3tp-wa9c".
func generatePassword() (string, error) {
	out := make([]byte, 0, 14)
	n := big.NewInt(int64(len(passwordAlphabet)))
	for i := range 12 {
		if i > 0 && i%4 == 0 {
			out = append(out, '-')
		}
		k, err := rand.Int(rand.Reader, n) // uniform: no modulo bias
		if err != nil {
			return "", fmt.Errorf("generating a password: %w", err)
		}
		out = append(out, passwordAlphabet[k.Int64()])
	}
	return string(out), nil
}

// readPassword reads the password: one line from a pipe or file, or, at a
// terminal, typed twice after a prompt on stderr.
func readPassword(stdin io.Reader, stderr io.Writer, name string) (string, error) {
	f, ok := stdin.(*os.File)
	if ok && isTerminal(f) {
		r := bufio.NewReader(f)
		restore := noEcho(f)
		defer restore()
		fmt.Fprintf(stderr, "password for %s: ", name)
		p1, err := readLine(r)
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if p1 == "" {
			return "", errors.New("refusing an empty password")
		}
		fmt.Fprintf(stderr, "again: ")
		p2, err := readLine(r)
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if p1 != p2 {
			return "", errors.New("the two passwords differ")
		}
		return p1, nil
	}
	p, err := readLine(bufio.NewReader(stdin))
	if err != nil {
		return "", err
	}
	if p == "" {
		return "", errors.New("refusing an empty password (give it on stdin, one line)")
	}
	return p, nil
}

// readLine reads one line without its line ending; a last line without
// one is fine.
func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// isTerminal reports whether f is a terminal: a character device that
// stty accepts (/dev/null is a character device too, but not a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	stty, err := exec.LookPath("stty")
	if err != nil {
		return true
	}
	cmd := exec.Command(stty, "-g")
	cmd.Stdin = f
	return cmd.Run() == nil
}

// noEcho turns off the terminal's echo with stty, where there is one, and
// returns what turns it back on.
func noEcho(tty *os.File) func() {
	stty, err := exec.LookPath("stty")
	if err != nil {
		return func() {}
	}
	cmd := exec.Command(stty, "-echo")
	cmd.Stdin = tty
	if cmd.Run() != nil {
		return func() {}
	}
	return func() {
		cmd := exec.Command(stty, "echo")
		cmd.Stdin = tty
		_ = cmd.Run()
	}
}
