package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// configUsage is the -config flag's usage where the embedded default
// config stands in when -config is left out.
const configUsage = "config `FILE` (default: the embedded default config)"

// newFlagSet is the flag set of a command: its errors go to stderr, and
// -help prints usage there.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	return fs
}

// parseStatus is the exit status of a command whose flags did not parse:
// 0 after -help, 2 for bad usage (the flag package has said why).
func parseStatus(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// parseInterspersed parses flags that may come before, between or after
// the targets (check gmail.com -user alice), as a technician types them;
// "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var targets []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return targets, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(targets, rest...), nil
		}
		targets = append(targets, rest[0])
		args = rest[1:]
	}
}
