// Package config reads and validates schoolgate's YAML configuration.
//
// Decoding is strict: the file is parsed into a yaml.Node tree and walked
// by hand, so that an unknown key, a value of the wrong type, a duplicate
// key or a bad value is reported with its line. Validation never stops at
// the first problem: Load and Parse return every problem found, as a
// Problems error whose lines read FILE:LINE: message, which is what
// `schoolgate config check` prints.
//
// Defaults live in one constructor, Default, applied before decoding: a key
// that is absent keeps its default, a key that is present replaces it (a
// list is replaced, not appended to). Relative paths (users file, list
// files, UT1 trees, log dir, CA files, alerts file) are resolved against
// the folder of the config file; the embedded default config (Embedded)
// resolves them against the working directory.
//
// The users file is CSV (user,profile,password_hash with a bcrypt hash, an
// optional header line, '#' comment lines); LoadUsers reads it and AddUser
// adds or replaces one user, rewriting the file atomically.
//
// The package exports no metrics; the config reload counters live with
// the code that reloads (cmd/schoolgate serve).
package config
