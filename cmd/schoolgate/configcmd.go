package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/schoolgate/schoolgate/config"
)

// runConfig is `schoolgate config check FILE...`: exit 0 and "FILE: ok"
// when every file is valid; otherwise every problem on stderr as
// FILE:LINE: message and exit 1; exit 2 for bad usage.
func runConfig(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	const use = "usage: schoolgate config check [-config] FILE..."
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(stderr, use)
		return 2
	}
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, use) }
	// -config FILE, as every other command takes the config, names one
	// more file to check.
	var named []string
	fs.Func("config", "a config file to check", func(f string) error { named = append(named, f); return nil })
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	files := append(named, fs.Args()...)
	if len(files) == 0 {
		fmt.Fprintln(stderr, use)
		return 2
	}
	for _, file := range files {
		if strings.TrimSpace(file) == "" {
			fmt.Fprintln(stderr, "schoolgate config check: an empty file name (is a variable unset?)")
			return 2
		}
	}
	status := 0
	for _, file := range files {
		cfg, warnings, err := config.Check(file)
		for _, w := range warnings {
			fmt.Fprintln(stderr, w)
		}
		var ps config.Problems
		switch {
		case err == nil:
			fmt.Fprintf(stdout, "%s: ok (%s)\n", file, summary(cfg))
		case errors.As(err, &ps):
			for _, p := range ps {
				fmt.Fprintln(stderr, p)
			}
			status = 1
		default:
			fmt.Fprintf(stderr, "%s: %v\n", file, err)
			status = 1
		}
	}
	return status
}

// summary says in a few words what a valid config holds.
func summary(cfg *config.Config) string {
	plural := func(n int, what string) string {
		if n == 1 {
			return fmt.Sprintf("1 %s", what)
		}
		return fmt.Sprintf("%d %ss", n, what)
	}
	return fmt.Sprintf("%s, %s, %s, %s, timezone %s",
		plural(len(cfg.Profiles), "profile"), plural(len(cfg.Schedules), "schedule"),
		plural(len(cfg.Lists), "list"), plural(len(cfg.Networks), "network"), cfg.Timezone)
}
