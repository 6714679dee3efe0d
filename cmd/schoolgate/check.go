package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/categories/classify"
	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/identity"
	"github.com/schoolgate/schoolgate/internal/lines"
	"github.com/schoolgate/schoolgate/policy"
)

const checkUsage = `usage: schoolgate check [-config FILE] [-user NAME] [-ip ADDR] [-at TIME] [-json] TARGET...

Explains what schoolgate would do with each TARGET (a URL or a host name):
the profile, the categories, the verdict, the rule that decided and why.

  -user NAME   decide as this user of the users file (its profile applies)
  -ip ADDR     decide as a request from this client address: its network picks
               the profile when no -user is given, and an address outside
               'clients' is refused (not_a_client). -user and -ip may be combined,
               as for a user who signed in to the proxy from that address.
               Without -user, the user the gateway's identity table holds for
               the address (state_dir/identity.json: proxy sign-in, RADIUS, logon
               API) applies, with their profile. With -ip and no TARGET, check
               shows only that: the user, where the name came from, until when,
               and the profile.
  -at TIME     RFC 3339 (2026-11-24T12:30:00Z) or 2026-11-24T12:30 in the
               config's timezone; default now
  -json        one JSON object per target, one per line
  -config FILE the config (default: the embedded default config)

Targets are decided as the proxy sees them: an http:// URL (or one with no
scheme) on its full URL; an https:// URL on its host only, since the proxy
sees just the host of a CONNECT, unless proxy.intercept covers that host
(then on the full URL, as the proxy does inside the intercepted tunnel).

A TARGET of - reads targets from stdin, one a line (blank lines and lines
starting with # are skipped). A target that is not a URL or host name is
reported on stderr and skipped. Exit status: 0 whatever the verdicts; 2 for
bad usage (bad flags, an unknown user, a bad target on the command line);
1 when the config or its lists cannot be loaded.
`

func runCheck(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", checkUsage, stderr)
	cfgPath := configFlag(fs, configUsage)
	user := fs.String("user", "", "user name")
	ipFlag := fs.String("ip", "", "client address")
	atFlag := fs.String("at", "", "time")
	asJSON := fs.Bool("json", false, "JSON output")

	targets, err := parseInterspersed(fs, args)
	if err != nil {
		return parseStatus(err)
	}
	if len(targets) == 0 && *ipFlag == "" {
		fmt.Fprintln(stderr, "schoolgate check: no TARGET given (a URL, a host name, or - for stdin)")
		fmt.Fprint(stderr, checkUsage)
		return 2
	}
	var ip netip.Addr
	if *ipFlag != "" {
		if ip, err = netip.ParseAddr(strings.Trim(*ipFlag, "[]")); err != nil {
			fmt.Fprintf(stderr, "schoolgate check: -ip %q is not an IP address\n", *ipFlag)
			return 2
		}
	}

	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "schoolgate check: loading config:\n%v\n", err)
		return 1
	}
	snap, err := policy.Build(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "schoolgate check: %v\n", err)
		return 1
	}
	for _, w := range snap.Warnings {
		fmt.Fprintf(stderr, "schoolgate check: warning: %s\n", w)
	}

	if *user != "" {
		if _, ok := snap.User(*user); !ok {
			fmt.Fprintf(stderr, "schoolgate check: unknown user %q%s\n", *user, usersFileNote(cfg))
			return 2
		}
	}
	when := time.Now()
	if *atFlag != "" {
		if when, err = parseAt(*atFlag, snap.Location()); err != nil {
			fmt.Fprintf(stderr, "schoolgate check: %v\n", err)
			return 2
		}
	}

	as := policy.Args{User: *user, IP: ip, Time: when}
	signedIn := signedInAt(cfg, &as, stderr)
	if len(targets) == 0 {
		// check -ip ADDR alone: who is signed in there, and their profile.
		return showIdentity(stdout, snap, as, signedIn, *asJSON)
	}
	c := &checker{
		snap:     snap,
		signedIn: signedIn,
		args:     as,
		json:     *asJSON,
		out:      bufio.NewWriterSize(stdout, 64<<10),
		stderr:   stderr,
	}
	c.classified = loadClassified(cfg, when, stderr)
	return c.run(targets, stdin)
}

// usersFileNote says where a user was looked for.
func usersFileNote(cfg *config.Config) string {
	if cfg.Users.File == "" {
		return ": the config names no users file"
	}
	return " (not in " + cfg.Users.File + ")"
}

// signedInAt is who the running gateway's identity table holds for the
// address of as (state_dir/identity.json), when no -user was given: who
// its requests are decided as. It sets as's user and profile from it.
func signedInAt(cfg *config.Config, as *policy.Args, stderr io.Writer) *identity.Entry {
	if !as.IP.IsValid() || as.User != "" {
		return nil
	}
	e, ok, err := identity.LookupFile(filepath.Join(cfg.StateDir, identity.FileName), as.IP, time.Now())
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "schoolgate check: warning: %v\n", err)
	case ok:
		as.User, as.Profile = e.User, e.Profile
		return &e
	}
	return nil
}

// run checks every target (- reads them from stdin) and returns the
// exit status: 2 when a target could not be read as a URL or host.
func (c *checker) run(targets []string, stdin io.Reader) int {
	if !c.json {
		c.header()
	}
	status := 0
	for _, t := range targets {
		if t == "-" {
			if err := c.stdin(stdin); err != nil {
				c.out.Flush()
				fmt.Fprintf(c.stderr, "schoolgate check: reading stdin: %v\n", err)
				return 1
			}
			continue
		}
		if !c.check(t) {
			status = 2
		}
	}
	if err := c.out.Flush(); err != nil {
		fmt.Fprintf(c.stderr, "schoolgate check: writing output: %v\n", err)
		return 1
	}
	return status
}

// parseAt reads -at: RFC 3339, or a local time in the config's timezone.
func parseAt(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02 15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("-at %q: want RFC 3339 (2026-11-24T12:30:00Z) or 2026-11-24T12:30 in the config's timezone (%s)", s, loc)
}

type checker struct {
	snap   *policy.Snapshot
	args   policy.Args // identity and time; Host and Path set per target
	json   bool
	out    *bufio.Writer
	stderr io.Writer
	buf    []byte

	// signedIn is the identity table's entry for -ip, nil when it holds
	// nobody there (or -user was given).
	signedIn *identity.Entry

	// classified is what the server's content classifier learned
	// (check_classified.go); nil when it learned nothing.
	classified *classify.Memory
}

// header tells a person who the targets are checked as, and when.
func (c *checker) header() {
	who := "no user, no address"
	switch {
	case c.signedIn != nil:
		who = "address " + c.args.IP.String() + ", signed in as " + c.args.User + " (" + c.signedIn.Source + ")"
	case c.args.User != "" && c.args.IP.IsValid():
		who = "user " + c.args.User + " from " + c.args.IP.String()
	case c.args.User != "":
		who = "user " + c.args.User
	case c.args.IP.IsValid():
		who = "address " + c.args.IP.String()
	}
	open := strings.Join(c.snap.OpenSchedules(c.args.Time), ", ")
	if open == "" {
		open = "none"
	}
	fmt.Fprintf(c.out, "# %s: profile %s, at %s; schedules open: %s\n", who,
		c.snap.ProfileOf(c.args),
		c.args.Time.In(c.snap.Location()).Format("Mon 2006-01-02 15:04 MST"), open)
}

// stdin checks one target a line. A bad line is reported and skipped: a
// long list with a little junk in it is still worth checking.
func (c *checker) stdin(r io.Reader) error {
	const longest = 64 << 10
	return lines.EachFit(r, longest, func(_ int, raw []byte) {
		if line := strings.TrimSpace(string(raw)); line != "" && line[0] != '#' {
			c.check(line)
		}
	}, func(n int) {
		// A line longer than any URL worth checking: say which, skip
		// the rest of it, and go on with the next.
		c.out.Flush()
		fmt.Fprintf(c.stderr, "schoolgate check: stdin line %d is longer than %d bytes; skipped\n", n, longest)
	})
}

// check decides one target and writes its line; false for a bad target.
func (c *checker) check(target string) bool {
	host, path, ok := categories.SplitTarget(target)
	if !ok {
		c.out.Flush() // keep stdout and stderr in order on a terminal
		fmt.Fprintf(c.stderr, "schoolgate check: %q is not a URL or host name; skipped\n", target)
		return false
	}
	a := c.args
	a.Host, a.Path = host, path
	d, hostOnly := c.decideTarget(target, a)
	if c.json {
		c.buf = appendJSONLine(c.buf[:0], target, host, c.args.User, d)
	} else {
		note := ""
		if hostOnly && path != "/" {
			note = httpsHostOnlyNote
		}
		c.buf = appendHumanLine(c.buf[:0], target, c.args.User, d, note)
	}
	c.out.Write(c.buf) //nolint:errcheck // the error sticks; Flush reports it
	return true
}

// httpsHostOnlyNote tells a technician that an https:// target's path
// played no part, as it plays none in the proxy.
const httpsHostOnlyNote = "; HTTPS: decided on the host; the path is not visible without interception"

// decideTarget decides a as the proxy would: an https:// (or wss://)
// target reaches the proxy as a CONNECT to its host, so unless the proxy
// intercepts that host (policy.Snapshot.Intercepts, the proxy's own test)
// it is decided on the host alone; hostOnly says so. Anything else (http://
// or a bare host or URL) is decided on the full URL, as plain HTTP is.
//
// A TLS target is decided with what its ClientHello hides (policy.Hidden):
// a browser names the host in the SNI, but never an IP address, so
// https://203.0.113.7/ is ip-literal, as the proxy decides it.
func (c *checker) decideTarget(target string, a policy.Args) (d policy.Decision, hostOnly bool) {
	if !isTLSTarget(target) {
		return c.decide(a), false
	}
	a.Seen = policy.Hidden(a.Host, policy.Hello{SNI: a.Host})
	if a.Path == "" {
		return c.decide(a), false
	}
	onHost := a
	onHost.Path = ""
	d = c.decide(onHost)
	if c.snap.Intercepts(a.Host, d.Categories) {
		return c.decide(a), false
	}
	return d, true
}

// isTLSTarget reports whether target names a scheme a browser sends
// through the proxy as a CONNECT tunnel.
func isTLSTarget(target string) bool {
	s := strings.TrimSpace(target)
	for _, scheme := range []string{"https://", "wss://"} {
		if len(s) >= len(scheme) && strings.EqualFold(s[:len(scheme)], scheme) {
			return true
		}
	}
	return false
}

// appendJSONLine writes the object of docs/contract.md §2 and a newline.
func appendJSONLine(b []byte, target, host, user string, d policy.Decision) []byte {
	b = append(b, `{"target":`...)
	b = appendJSONString(b, target)
	b = append(b, `,"host":`...)
	b = appendJSONString(b, host)
	b = append(b, `,"user":`...)
	b = appendJSONString(b, user)
	b = append(b, `,"profile":`...)
	b = appendJSONString(b, d.Profile)
	b = append(b, `,"categories":[`...)
	for i, n := range d.Categories.Names() {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, n)
	}
	b = append(b, `],"verdict":`...)
	b = appendJSONString(b, d.Verdict.String())
	b = append(b, `,"rule":`...)
	b = appendJSONString(b, d.Rule)
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, d.Reason)
	if d.Classified != "" {
		b = append(b, `,"classified":`...)
		b = appendJSONString(b, d.Classified)
	}
	if d.SafeSearch != nil {
		b = append(b, `,"safe_search":"applied"`...)
	}
	return append(b, "}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript readers.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendHumanLine writes one line a technician reads:
//
//	https://www.bet365.com/en  BLOCKED  gambling  rule staff#1 — category gambling is blocked for staff (profile staff)
//
// note, when not "", follows the reason.
func appendHumanLine(b []byte, target, user string, d policy.Decision, note string) []byte {
	b = append(b, target...)
	if d.Verdict == policy.Block {
		b = append(b, "  BLOCKED  "...)
	} else {
		b = append(b, "  ALLOWED  "...)
	}
	b = append(b, d.Categories.String()...)
	b = append(b, "  rule "...)
	b = append(b, d.Rule...)
	b = append(b, " — "...)
	b = append(b, d.Reason...)
	if d.Classified != "" {
		b = append(b, "; classified by content: "...)
		b = append(b, d.Classified...)
	}
	b = append(b, note...)
	if ss := d.SafeSearch; ss != nil {
		b = append(b, "; safe_search: applied (connects to "...)
		b = append(b, ss.Target...)
		if ss.Param != "" {
			b = append(b, ", adds "...)
			b = append(b, ss.Param...)
			b = append(b, '=')
			b = append(b, ss.Value...)
		}
		if ss.Header != "" {
			b = append(b, ", sends "...)
			b = append(b, ss.Header...)
			b = append(b, ": "...)
			b = append(b, ss.HeaderValue...)
		}
		b = append(b, ')')
	}
	b = append(b, " (profile "...)
	b = append(b, d.Profile...)
	if user != "" {
		b = append(b, ", user "...)
		b = append(b, user...)
	}
	return append(b, ")\n"...)
}

// showIdentity prints who the identity table holds for args.IP and the
// profile their requests get (check -ip ADDR without a target).
func showIdentity(w io.Writer, snap *policy.Snapshot, args policy.Args, e *identity.Entry, asJSON bool) int {
	profile := snap.ProfileOf(args)
	if asJSON {
		v := struct {
			IP      string     `json:"ip"`
			User    string     `json:"user"`
			Profile string     `json:"profile"`
			Source  string     `json:"source,omitempty"`
			Since   *time.Time `json:"since,omitempty"`
			Until   *time.Time `json:"until,omitempty"`
		}{IP: args.IP.String(), User: args.User, Profile: profile}
		if e != nil {
			v.Source, v.Since, v.Until = e.Source, &e.Since, &e.Until
		}
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "%s\n", b)
		return 0
	}
	if e == nil {
		fmt.Fprintf(w, "%s: nobody signed in; profile %s\n", args.IP, profile)
		return 0
	}
	loc := snap.Location()
	fmt.Fprintf(w, "%s: user %s (%s, since %s, until %s); profile %s\n", args.IP, e.User, e.Source,
		e.Since.In(loc).Format("2006-01-02 15:04"), e.Until.In(loc).Format("2006-01-02 15:04 MST"), profile)
	return 0
}
