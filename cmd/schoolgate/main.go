// Command schoolgate is the school network gateway: a filtering web proxy
// and DNS resolver with an access log. See README.md.
//
// This file only dispatches subcommands; each lives in its own file.
package main

import (
	"fmt"
	"io"
	"os"
)

// command is one subcommand: it gets its arguments (after the name) and
// returns the exit status.
type command struct {
	name, usage string
	run         func(args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

var commands = []command{
	{"serve", "serve [-config FILE]", runServe},
	{"check", "check [-config FILE] [-user NAME] [-ip ADDR] [-at TIME] [-json] TARGET... (- reads stdin)", runCheck},
	{"classify", "classify [-config FILE] [-profile P] [-json] [-phrases FILE]... FILE...", runClassify},
	{"config", "config check [-config] FILE...", runConfig},
	{"report", "report [-config FILE] [-date YYYY-MM-DD [-week] | -from DATE -to DATE] [-out DIR]", runReport},
	{"logs", "logs verify|search [-config FILE] ... (logs verify --help, logs search --help)", runLogs},
	{"lists", "lists update|status [-config FILE]", runLists},
	{"firewall", "firewall [-config FILE] [-apply]", runFirewall},
	{"users", "users add|list|remove|import [-config FILE | -file users.csv] ...", runUsers},
	{"version", "version", runVersion},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if isHelpArg(args[0]) || args[0] == "help" {
		// schoolgate help COMMAND [SUBCOMMAND] is COMMAND's --help.
		if args[0] == "help" && len(args) > 1 {
			return run(append(args[1:], "--help"), stdin, stdout, stderr)
		}
		usage(stdout)
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			// --help anywhere among a command's arguments prints what it
			// does and exits 0, before any flag is checked.
			if text, ok := helpFor(c.name, args[1:]); ok {
				fmt.Fprint(stdout, text)
				return 0
			}
			return c.run(args[1:], stdin, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "schoolgate: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: schoolgate COMMAND [flags]")
	fmt.Fprintln(w, "commands (each takes --help for what it does):")
	for _, c := range commands {
		fmt.Fprintf(w, "  schoolgate %s\n", c.usage)
	}
}
