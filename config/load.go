package config

import (
	"errors"
	"fmt"
	"strings"
)

// Problem is one thing wrong with a config file.
type Problem struct {
	File string
	Line int // 0 when no line applies
	Msg  string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}

// Problems is every problem found in a config; Load returns it as its error.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Load reads, decodes and validates the config file at path. Any error is
// a Problems listing everything wrong (or a plain error if the file cannot
// be read).
func Load(path string) (*Config, error) {
	return nil, errors.New("config.Load: not implemented yet")
}

// Parse decodes and validates config data; name is used in problems and
// dir for resolving relative paths.
func Parse(data []byte, name, dir string) (*Config, error) {
	return nil, errors.New("config.Parse: not implemented yet")
}

// Embedded returns the built-in default config: loopback unprivileged
// ports, student and staff profiles.
func Embedded() *Config {
	panic("config.Embedded: not implemented yet")
}
