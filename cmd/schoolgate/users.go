package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/schoolgate/schoolgate/config"
)

// usersBcryptCost is the cost of stored hashes; tests lower it.
var usersBcryptCost = bcrypt.DefaultCost

// runUsers is `schoolgate users add -file users.csv -profile P NAME`,
// with the password read from stdin: one line from a pipe, or typed twice
// (without echo where stty allows) at a terminal.
func runUsers(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	const use = "usage: schoolgate users add -file users.csv -profile P [-config FILE] NAME  (password on stdin)"
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprintln(stderr, use)
		return 2
	}
	fs := flag.NewFlagSet("users add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, use)
		fs.PrintDefaults()
	}
	file := fs.String("file", "", "the users file (CSV); created if missing")
	profile := fs.String("profile", "", "the user's profile")
	cfgPath := configFlag(fs, "config `FILE`: if given, the profile must be one of its profiles")

	// Flags may come before or after the name.
	var names []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		if len(rest) > fs.NArg() && rest[len(rest)-fs.NArg()-1] == "--" {
			names = append(names, fs.Args()...)
			break
		}
		names = append(names, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	switch {
	case *file == "":
		fmt.Fprintln(stderr, "schoolgate users add: -file is required")
		fmt.Fprintln(stderr, use)
		return 2
	case *profile == "":
		fmt.Fprintln(stderr, "schoolgate users add: -profile is required")
		fmt.Fprintln(stderr, use)
		return 2
	case len(names) != 1:
		fmt.Fprintln(stderr, "schoolgate users add: give exactly one user NAME")
		fmt.Fprintln(stderr, use)
		return 2
	}
	name := names[0]

	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			fmt.Fprintf(stderr, "schoolgate users add: %v\n", err)
			return 1
		}
		if _, ok := cfg.Profiles[*profile]; !ok {
			known := make([]string, 0, len(cfg.Profiles))
			for p := range cfg.Profiles {
				known = append(known, p)
			}
			sort.Strings(known)
			fmt.Fprintf(stderr, "schoolgate users add: unknown profile %q (known: %s)\n", *profile, strings.Join(known, ", "))
			return 1
		}
	}

	password, err := readPassword(stdin, stderr, name)
	if err != nil {
		fmt.Fprintf(stderr, "schoolgate users add: %v\n", err)
		return 1
	}
	if err := config.AddUserCost(*file, name, *profile, password, usersBcryptCost); err != nil {
		fmt.Fprintf(stderr, "schoolgate users add: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: saved user %q with profile %s\n", *file, name, *profile)
	if *cfgPath == "" {
		fmt.Fprintf(stderr, "schoolgate users add: note: profile %q was not checked against a config (give -config FILE to check it); a user whose profile does not exist cannot sign in\n", *profile)
	}
	return 0
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
