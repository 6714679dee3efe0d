package main

import (
	"errors"
	"flag"
	"strings"
)

// configPath is the -config flag. An empty value is an error rather than
// "the embedded default", so that an unset variable in a script
// (-config="$CONFIG") never serves a different policy, or writes its log to
// another folder, without anyone noticing.
type configPath string

func (c *configPath) String() string { return string(*c) }

func (c *configPath) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("needs a file name (leave -config out for the embedded default)")
	}
	*c = configPath(s)
	return nil
}

// configFlag defines -config on fs.
func configFlag(fs *flag.FlagSet, usage string) *string {
	p := new(string)
	fs.Var((*configPath)(p), "config", usage)
	return p
}
