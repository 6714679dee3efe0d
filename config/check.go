package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// Check is what `schoolgate config check` runs: Load, plus the checks
// that can be made quickly on the files the config names without loading
// them: the users file is read and parsed (and its profiles must exist),
// list files, UT1 trees and the interception CA files must exist, log.dir
// must not be a file. It also refuses what Load lets through because serve
// runs without it: inline list entries the category database skips
// (localhost, intranet, IP addresses) and networks that clients do not
// cover (their devices would all be refused). It
// returns the config when there is no problem; otherwise the error is a
// Problems (config problems first, then those of the users file), or a
// plain error if the config file cannot be read.
//
// A users file that does not exist yet is only a warning: the contract's
// example.yaml names one and must pass as it stands; `serve` will refuse
// to start without it.
func Check(path string) (cfg *Config, warnings Problems, err error) {
	cfg, ps, err := load(path)
	if err != nil {
		return nil, nil, err
	}
	files, users, warnings := checkFiles(cfg, path)
	warnings = append(warnings, portalWarnings(cfg, path)...)
	ps = append(ps, files...)
	ps = append(ps, cfg.unusable...)
	ps = append(ps, checkNetworks(cfg, path)...)
	ps = append(ps, checkTrustedForwarders(cfg, path)...)
	sortProblems(ps)
	ps = append(ps, users...)
	if len(ps) > 0 {
		return nil, warnings, ps
	}
	return cfg, warnings, nil
}

// checkFiles checks the files cfg names; name is the config file's name
// as the user wrote it. It returns the problems to report against the
// config file, those found in the users file, and warnings.
func checkFiles(cfg *Config, name string) (ps, ups, warnings Problems) {
	fc := &fileCheck{name: name}
	checkIdentity(cfg, fc.addf)
	checkPortal(cfg, fc.addf)
	for _, l := range cfg.Lists {
		fc.exists(l.Line, "list file", l.File, false)
		fc.exists(l.Line, "UT1 tree", l.UT1, true)
	}
	for i, f := range cfg.Content.PhraseFiles {
		line := 0
		if i < len(cfg.Content.PhraseLines) {
			line = cfg.Content.PhraseLines[i]
		}
		fc.ps = append(fc.ps, CheckPhraseFile(f, line, name)...)
	}
	fc.folders(cfg)
	if ic := cfg.Proxy.Intercept; ic != nil {
		fc.intercept(ic)
	}
	if l := cfg.Users.LDAP; l != nil {
		fc.exists(l.Line, "users.ldap.bind_password_file", l.BindPasswordFile, false)
		if l.CAFile != "" && fc.exists(l.Line, "users.ldap.ca_file", l.CAFile, false) {
			if _, err := l.CAPool(); err != nil {
				fc.addf(l.Line, "%v", err)
			}
		}
	}
	checkStatutory(cfg, fc.addf)
	if cfg.Users.File != "" {
		ups, warnings = fc.usersFile(cfg)
	}
	return fc.ps, ups, warnings
}

// fileCheck collects the problems of the files a config names, against
// the config file name.
type fileCheck struct {
	name string
	ps   Problems
}

func (c *fileCheck) addf(line int, format string, args ...any) {
	c.ps = append(c.ps, Problem{File: c.name, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// exists reports whether path is there and of the right kind (true for
// ""), adding the problem when it is not.
func (c *fileCheck) exists(line int, what, path string, wantDir bool) bool {
	if path == "" {
		return true
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		c.addf(line, "%s %s does not exist", what, path)
	case err != nil:
		c.addf(line, "%s %s: %v", what, path, errors.Unwrap(err))
	case wantDir && !st.IsDir():
		c.addf(line, "%s %s is not a folder", what, path)
	case !wantDir && st.IsDir():
		c.addf(line, "%s %s is a folder, not a file", what, path)
	default:
		return true
	}
	return false
}

// folders refuses a file where log.dir or state_dir names a folder:
// serve creates a missing folder, but a file there cannot hold the logs.
func (c *fileCheck) folders(cfg *Config) {
	if st, err := os.Stat(cfg.Log.Dir); err == nil && !st.IsDir() {
		c.addf(cfg.Log.DirLine, "log.dir %s is a file, not a folder: the access log needs a folder (serve creates a missing one)", cfg.Log.Dir)
	}
	if st, err := os.Stat(cfg.StateDir); err == nil && !st.IsDir() {
		c.addf(cfg.StateDirLine, "state_dir %s is a file, not a folder (serve creates a missing one)", cfg.StateDir)
	}
}

// intercept checks that the interception CA's files are there and are a
// certificate and its key.
func (c *fileCheck) intercept(ic *Intercept) {
	certOK := c.exists(ic.CACertLine, "proxy.intercept.ca_cert", ic.CACert, false)
	keyOK := c.exists(ic.CAKeyLine, "proxy.intercept.ca_key", ic.CAKey, false)
	if certOK && keyOK {
		if _, _, err := ic.LoadCA(); err != nil {
			c.addf(ic.CACertLine, "proxy.intercept.ca_cert: %v", err)
		}
	}
}

// usersFile checks users.file: its own problems (ups, against the users
// file), every user's profile, and a warning when it does not exist yet.
func (c *fileCheck) usersFile(cfg *Config) (ups, warnings Problems) {
	var users []User
	data, err := os.ReadFile(cfg.Users.File)
	switch {
	case errors.Is(err, os.ErrNotExist):
		warnings = append(warnings, Problem{File: c.name, Line: cfg.Users.FileLine, Msg: fmt.Sprintf(
			"warning: users file %s does not exist yet: nobody can sign in to the proxy until it does (schoolgate users add creates it)", cfg.Users.File)})
	case err != nil:
		c.addf(cfg.Users.FileLine, "users.file: %v", err)
	default:
		_, users, ups = parseUsers(data, cfg.Users.File)
	}
	known := profileNames(cfg)
	for _, u := range users {
		if _, ok := cfg.Profiles[u.Profile]; !ok {
			ups = append(ups, Problem{File: cfg.Users.File, Line: u.Line,
				Msg: fmt.Sprintf("user %q has unknown profile %q (known: %s)", u.Name, u.Profile, strings.Join(known, ", "))})
		}
	}
	sortProblems(ups)
	return ups, warnings
}

// checkNetworks refuses a network that clients do not cover: every device
// in it would be refused as not_a_client, whatever profile it names.
func checkNetworks(cfg *Config, name string) Problems {
	var ps Problems
	for _, n := range cfg.Networks {
		covered, overlaps := false, false
		for _, c := range cfg.Clients {
			if c.Bits() <= n.Prefix.Bits() && c.Contains(n.Prefix.Addr()) {
				covered = true
				break
			}
			if c.Overlaps(n.Prefix) {
				overlaps = true
			}
		}
		if covered {
			continue
		}
		msg := fmt.Sprintf("network %s is not inside clients (%s): its devices would all be refused as not_a_client; add it to clients", n.Prefix, prefixList(cfg.Clients))
		if overlaps {
			msg = fmt.Sprintf("network %s is only partly inside clients (%s): the rest of its devices would be refused as not_a_client; add it to clients, or narrow it", n.Prefix, prefixList(cfg.Clients))
		}
		ps = append(ps, Problem{File: name, Line: n.Line, Msg: msg})
	}
	return ps
}

// checkTrustedForwarders refuses a trusted forwarder that clients do
// not cover: the DNS filter would refuse its queries as not_a_client.
func checkTrustedForwarders(cfg *Config, name string) Problems {
	var ps Problems
	for _, t := range cfg.DNS.TrustedForwarders {
		covered := false
		for _, c := range cfg.Clients {
			if c.Bits() <= t.Bits() && c.Contains(t.Addr()) {
				covered = true
				break
			}
		}
		if !covered {
			ps = append(ps, Problem{File: name, Line: cfg.DNS.TrustedForwardersLine,
				Msg: fmt.Sprintf("dns.trusted_forwarders: %s is not inside clients (%s): its queries would be refused as not_a_client; add it to clients", t, prefixList(cfg.Clients))})
		}
	}
	return ps
}

func prefixList(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
