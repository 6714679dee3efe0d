package main

import (
	"sort"
	"strings"
)

// helpTexts is what `--help` prints, per command and per subcommand
// ("users add"): what it does, its flags, its exit status. A command not
// listed here handles -h itself.
var helpTexts = map[string]string{
	"lists":        listsUsage,
	"lists update": listsUpdateUsage,
	"lists status": listsStatusUsage,
	"serve": `usage: schoolgate serve [-config FILE]

Runs the gateway until it is stopped: the web proxy (listen.proxy, which also
serves /proxy.pac and /wpad.dat to its clients), the DNS filter (listen.dns)
and the admin listener (listen.admin: /metrics, /healthz, /proxy.pac),
writing the access log to log.dir. Without -config it serves the embedded
default config (config/default.yaml) on loopback.

Signals:
  SIGHUP          reload the config, the lists, the users file and the
                  classifier, built to the side and swapped at once; a broken
                  one is refused (logged) and the old one keeps serving
  SIGTERM, SIGINT stop: in-flight requests finish (up to 15 s), the access log
                  is flushed, then exit

Exit status: 0 after a clean stop; 1 when it cannot start (config problems as
FILE:LINE; a port in use names the listen.* setting to change) or when log
lines could not be written; 2 for bad usage.

  -config FILE  the config (default: the embedded default config)
`,
	"check":    checkUsage,
	"firewall": firewallUsage,
	"classify": classifyUsage,
	"config": `usage: schoolgate config check [-config] FILE...

Subcommands:
  check   validate a config file (schoolgate config check --help)
`,
	"config check": `usage: schoolgate config check [-config] FILE...

Validates each config FILE (given as -config FILE too, as the other commands
take it) without starting anything: exit 0 and "FILE: ok"
with a summary, or every problem on stderr as FILE:LINE: message and exit 1.
Besides the config itself it reads the users file (bad lines, unknown
profiles), checks that list files, UT1 folders and CA files exist, that
clients covers every networks: entry, that inline list entries are host names
the database keeps (not localhost, intranet or an IP address) and that
log.dir is not a file. Exit 2 for bad usage.
`,
	"report": `usage: schoolgate report [-config FILE] [-date YYYY-MM-DD [-week] | -from YYYY-MM-DD -to YYYY-MM-DD] [-out DIR]

Writes the daily (or weekly) report from the access log: report-DATE.html
(incidents first, for the safeguarding lead) and report-DATE.csv (one row per
user), into reports/ under the working folder unless -out says otherwise.
Default: yesterday, in the config's timezone.

  -config FILE  the config: its log.dir, timezone and school-hours schedule
                (default: the embedded default config)
  -date DATE    the day to report on (default: yesterday)
  -week         the seven days ending with -date
  -from DATE    the first day of a period (with -to; default -to: -from)
  -to DATE      the last day of a period
  -out DIR      the folder to write to (default: reports; created if missing)

Exit status: 0 when the report was written (days of the period without a log
are named on stderr); 1 when no day of the period has a log (nothing is
written: a cron job notices) or the report cannot be written; 2 for bad usage.
`,
	"logs": `usage: schoolgate logs verify|search [-config FILE] ...

Subcommands:
  verify  check that a day's access log is complete and unaltered
          (schoolgate logs verify --help)
  search  the lines of a user, address, host, category or verdict over a
          period, and whether each day searched verifies
          (schoolgate logs search --help)
`,
	"logs verify": logsUsage,
	"users": `usage: schoolgate users add|list|remove|import [-config FILE | -file FILE] ...

Manages the users file (CSV: user,profile,password_hash) the proxy checks
sign-ins against. Each subcommand takes the file as -file FILE, or -config
FILE to use the config's users.file (and to check profiles against it).
The file is rewritten atomically, its comments kept.

Subcommands:
  add     add a user or change one's profile and password (password on stdin)
  list    print user,profile for every user
  remove  remove users
  import  add or update users from a CSV export of the school's MIS

schoolgate users SUBCOMMAND --help says more.
`,
	"users add": `usage: schoolgate users add [-config FILE | -file FILE] -profile P NAME

Adds user NAME with profile P, or updates an existing user's profile and
password. The password is read from stdin: one line from a pipe, or typed
twice (not shown) at a terminal. It is stored as a bcrypt hash.

  -file FILE     the users file (created if missing)
  -config FILE   use the config's users.file, and check that P is one of its profiles
  -profile P     the user's profile

Exit status: 0 when saved; 1 when refused (unknown profile, bad name, empty
password, a users file with problems); 2 for bad usage.
`,
	"users list": `usage: schoolgate users list [-config FILE | -file FILE]

Prints "user,profile" and then one line per user (never the password hashes),
in the form users import reads. With -config, a user whose profile the config
does not define is named on stderr (such a user cannot sign in) and the exit
status is 1.

  -file FILE     the users file
  -config FILE   use the config's users.file and check profiles against it
`,
	"users remove": `usage: schoolgate users remove [-config FILE | -file FILE] NAME...

Removes the named users. A name the file does not hold is an error, and then
nothing is removed (exit 1). The proxy stops accepting a removed user's
password at once: its credential cache follows the users file.

  -file FILE     the users file
  -config FILE   use the config's users.file
`,
	"users import": `usage: schoolgate users import [-config FILE | -file FILE] CSVFILE

Adds or updates users from a CSV file exported from the school's MIS:
user,profile[,password] per row, with an optional header row (user,profile or
user,profile,password), '#' comments and blank lines. A row with a password
sets it; a new user without one gets a generated password, and those are
printed once on stdout as "user,password" lines (with a header): hand them
out, they are stored only as hashes. An existing user without a password in
the file keeps the one they have. Every problem is reported as FILE:LINE and
then nothing is imported (exit 1); the users file is rewritten once.

  -file FILE     the users file (created if missing)
  -config FILE   use the config's users.file, and check every profile against it
`,
	"version": `usage: schoolgate version

Prints the version, the Go version and the source revision it was built from.
`,
}

// helpWords ask for help.
func isHelpArg(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

// wantsHelp reports whether args (before any "--") ask for help.
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isHelpArg(a) {
			return true
		}
	}
	return false
}

// subcommands returns the subcommands helpTexts knows for cmd, sorted.
func subcommands(cmd string) []string {
	var subs []string
	for k := range helpTexts {
		if c, sub, ok := strings.Cut(k, " "); ok && c == cmd {
			subs = append(subs, sub)
		}
	}
	sort.Strings(subs)
	return subs
}

// helpFor returns the help to print for `schoolgate cmd args...` when args
// ask for it (`--help`, `-h`, `help`), and whether they do. A subcommand it
// has no text for is left to the command.
func helpFor(cmd string, args []string) (string, bool) {
	if len(args) > 0 && args[0] == "help" {
		args = append(args[1:], "--help")
	}
	subs := subcommands(cmd)
	if len(args) > 0 && len(subs) > 0 && !strings.HasPrefix(args[0], "-") {
		for _, s := range subs {
			if s == args[0] {
				if wantsHelp(args[1:]) {
					return helpTexts[cmd+" "+s], true
				}
				return "", false
			}
		}
		return "", false // a subcommand without a help text here
	}
	if !wantsHelp(args) {
		return "", false
	}
	text, ok := helpTexts[cmd]
	return text, ok
}
