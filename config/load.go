package config

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	// Schedules and daily log files need the IANA database even on a
	// slim machine without /usr/share/zoneinfo.
	_ "time/tzdata"
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
// be read). Problems name the file as path is written.
func Load(path string) (*Config, error) {
	cfg, ps, err := load(path)
	if err != nil {
		return nil, err
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return cfg, nil
}

func load(path string) (*Config, Problems, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading config: %w", err)
	}
	cfg, ps := parse(data, path, filepath.Dir(abs))
	cfg.Path = abs
	return cfg, ps, nil
}

// Parse decodes and validates config data; name is used in problems and
// dir for resolving relative paths ("" leaves them relative to the working
// directory).
func Parse(data []byte, name, dir string) (*Config, error) {
	cfg, ps := parse(data, name, dir)
	if len(ps) > 0 {
		return nil, ps
	}
	return cfg, nil
}

// maxListItems bounds the list items of one config, aliases expanded:
// far above any real list written inline (large lists belong in files).
const maxListItems = 1_000_000

// parse always returns a config, filled as far as the data allowed, and
// every problem found.
func parse(data []byte, name, dir string) (*Config, Problems) {
	d := &decoder{file: name, cfg: Default(), maxItems: maxListItems}
	d.line.listen = make(map[string]int)
	d.cfg.Dir = dir
	root := d.parseDoc(data)
	if len(d.probs) > 0 {
		// Broken YAML: whatever else could be said would be noise.
		d.cfg.Location = time.UTC
		return d.cfg, d.probs
	}
	if root != nil {
		if r := deref(root); r.Kind != yaml.MappingNode && !isNull(r) {
			d.addf(r.Line, "the config: expected a mapping of keys (timezone, listen, ...), got %s", describe(r))
			return d.cfg, d.probs
		}
		d.top(root)
	}
	d.finish(dir)
	sortProblems(d.probs)
	return d.cfg, d.probs
}

//go:embed default.yaml
var embeddedYAML []byte

// EmbeddedYAML returns the text of the built-in default config, e.g. as a
// starting point for a school's own.
func EmbeddedYAML() []byte {
	return append([]byte(nil), embeddedYAML...)
}

// Embedded returns the built-in default config: loopback unprivileged
// ports, student and staff profiles. Its relative paths (the log dir) are
// relative to the working directory. A test keeps it valid; should it
// ever not be, the config as far as it parsed is still returned.
func Embedded() *Config {
	dir, err := os.Getwd()
	if err != nil {
		dir = ""
	}
	cfg, _ := parse(embeddedYAML, "(embedded default.yaml)", dir)
	return cfg
}

// EmbeddedProblems reports what is wrong with the embedded default config
// (nothing, unless a change broke it).
func EmbeddedProblems() Problems {
	_, ps := parse(embeddedYAML, "(embedded default.yaml)", "")
	return ps
}
