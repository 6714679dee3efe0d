package main

import (
	"strings"
	"testing"
)

// --help (and -h, -help, help) on every command and subcommand prints what
// it does on stdout and exits 0, whatever else is on the line.
func TestHelpEverywhere(t *testing.T) {
	var lines [][]string
	for _, c := range commands {
		lines = append(lines, []string{c.name})
		for _, s := range subcommands(c.name) {
			lines = append(lines, []string{c.name, s})
		}
	}
	if len(lines) < len(commands)+6 {
		t.Fatalf("only %d commands and subcommands have help", len(lines))
	}
	for _, cmd := range lines {
		for _, h := range []string{"--help", "-h", "-help"} {
			for _, extra := range [][]string{nil, {"-bogus-flag"}} {
				args := append(append(append([]string{}, cmd...), extra...), h)
				t.Run(strings.Join(args, " "), func(t *testing.T) {
					code, out, errs := runCmd(t, "", args...)
					if code != 0 {
						t.Fatalf("exit %d, stderr %q", code, errs)
					}
					text := helpTexts[strings.Join(cmd, " ")]
					if text == "" || out != text {
						t.Fatalf("stdout %q, want the help text of %q", out, strings.Join(cmd, " "))
					}
					// What it does: a usage line, then at least one sentence.
					if !strings.HasPrefix(out, "usage: schoolgate "+cmd[0]) || len(strings.Split(strings.TrimSpace(out), "\n")) < 3 {
						t.Errorf("help says too little:\n%s", out)
					}
				})
			}
		}
	}
	t.Run("schoolgate help users import", func(t *testing.T) {
		code, out, _ := runCmd(t, "", "help", "users", "import")
		if code != 0 || out != helpTexts["users import"] {
			t.Errorf("exit %d, stdout %q", code, out)
		}
	})
	t.Run("schoolgate --help", func(t *testing.T) {
		code, out, _ := runCmd(t, "", "--help")
		if code != 0 || !strings.Contains(out, "schoolgate users add|list|remove|import") {
			t.Errorf("exit %d, stdout %q", code, out)
		}
	})
	t.Run("serve --help names the signals", func(t *testing.T) {
		_, out, _ := runCmd(t, "", "serve", "--help")
		for _, sig := range []string{"SIGHUP", "SIGTERM", "SIGINT"} {
			if !strings.Contains(out, sig) {
				t.Errorf("serve --help does not name %s", sig)
			}
		}
	})
	t.Run("-- ends the flags", func(t *testing.T) {
		// users add -- --help: an operand, not a request for help.
		_, out, _ := runCmd(t, "pw\n", "users", "add", "-file", t.TempDir()+"/u.csv", "-profile", "p", "--", "--help")
		if out == helpTexts["users add"] {
			t.Errorf("help printed for an operand after --")
		}
	})
}
