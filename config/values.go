package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/schoolgate/schoolgate/categories"
)

// parsePrefix parses a network in CIDR form. A bare address is a
// single-host network; a prefix with host bits set (10.0.0.1/8) is refused
// rather than silently widened, because it is usually a typo.
func parsePrefix(s, where string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("bad CIDR %q in %s (want a network such as 10.0.0.0/8, or an address)", s, where)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad CIDR %q in %s (want a network such as 10.0.0.0/8)", s, where)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%s in %s is not a network address (did you mean %s?)", s, where, m)
	}
	return p, nil
}

// userNameRE is what useradd accepts for a name (a number is not a name).
var userNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,31}$`)

var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$`)

// checkListen checks a listener address, host:port. Port 0 is allowed
// (the system picks a free port: useful in tests).
func checkListen(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("bad address %q: want host:port, such as 127.0.0.1:3128 or :53", s)
	}
	if err := checkPort(port, 0); err != nil {
		return err
	}
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if len(host) > 253 || !hostnameRE.MatchString(host) {
		return fmt.Errorf("bad address %q: %q is neither an IP address nor a host name", s, host)
	}
	return nil
}

// loopbackHost reports whether host (a name or an address, no port) is
// this machine: localhost or a loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func checkPort(port string, lo int) error {
	n, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("bad port %q: want a number", port)
	}
	if n < lo || n > 65535 {
		return fmt.Errorf("port %d out of range (%d-65535)", n, lo)
	}
	return nil
}

// parseUpstream checks a DNS upstream and returns it as ip:port; a bare
// address gets port 53. Only addresses are accepted: finding an
// upstream's address by name would need the DNS it is meant to provide.
func parseUpstream(s string) (string, error) {
	s = strings.TrimSpace(s)
	bare := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if a, err := netip.ParseAddr(bare); err == nil {
		return net.JoinHostPort(a.String(), "53"), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("bad upstream %q: want ip:port, such as 9.9.9.9:53", s)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "", fmt.Errorf("bad upstream %q: %q is not an IP address", s, host)
	}
	if err := checkPort(port, 1); err != nil {
		return "", fmt.Errorf("bad upstream %q: %v", s, err)
	}
	return net.JoinHostPort(a.String(), port), nil
}

var zoneRE = regexp.MustCompile(`^([A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?$`)

// parseForwardZone checks a zone of dns.forward and returns it in lower
// case without the trailing dot. A network (10.0.0.0/8) stands for its
// reverse zone (10.in-addr.arpa), so it must end on a label: a multiple
// of 8 bits for IPv4, of 4 for IPv6.
func parseForwardZone(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := parsePrefix(s, "dns.forward")
		if err != nil {
			return "", err
		}
		return reverseZone(p)
	}
	z := strings.ToLower(strings.TrimSuffix(s, "."))
	switch {
	case z == "":
		return "", errors.New("dns.forward: the root zone is dns.upstreams' job")
	case len(z) > 253 || !zoneRE.MatchString(z):
		return "", fmt.Errorf("dns.forward: %q is not a zone name (want such as school.local or 10.in-addr.arpa)", s)
	}
	for _, l := range strings.Split(z, ".") {
		if len(l) > 63 {
			return "", fmt.Errorf("dns.forward: %q has a label longer than 63 characters", s)
		}
	}
	return z, nil
}

// reverseZone is the in-addr.arpa or ip6.arpa zone of a network.
func reverseZone(p netip.Prefix) (string, error) {
	a := p.Addr()
	var labels []string
	if a.Is4() {
		if p.Bits()%8 != 0 || p.Bits() == 0 {
			return "", fmt.Errorf("dns.forward: network %s does not end on an octet (a reverse zone needs /8, /16, /24 or /32)", p)
		}
		b := a.As4()
		for i := p.Bits()/8 - 1; i >= 0; i-- {
			labels = append(labels, strconv.Itoa(int(b[i])))
		}
		return strings.Join(labels, ".") + ".in-addr.arpa", nil
	}
	if p.Bits()%4 != 0 || p.Bits() == 0 {
		return "", fmt.Errorf("dns.forward: network %s does not end on a nibble (a reverse zone needs a prefix length that is a multiple of 4)", p)
	}
	b := a.As16()
	for i := p.Bits()/4 - 1; i >= 0; i-- {
		nib := b[i/2] >> 4
		if i%2 == 1 {
			nib = b[i/2] & 0xf
		}
		labels = append(labels, strconv.FormatUint(uint64(nib), 16))
	}
	return strings.Join(labels, ".") + ".ip6.arpa", nil
}

var clockRE = regexp.MustCompile(`^(\d{1,2}):(\d{2})$`)

// parseClock parses "HH:MM". "24:00" is accepted when end is set (the end
// of a window): it is the same as 00:00 of the next day.
func parseClock(s string, end bool) (Clock, error) {
	m := clockRE.FindStringSubmatch(strings.TrimSpace(s))
	if m != nil {
		h, _ := strconv.Atoi(m[1])
		mi, _ := strconv.Atoi(m[2])
		if end && h == 24 && mi == 0 {
			return 0, nil
		}
		if h < 24 && mi < 60 {
			return Clock(h*60 + mi), nil
		}
	}
	if end {
		return 0, fmt.Errorf("bad time %q (want HH:MM, 00:00 to 24:00)", s)
	}
	return 0, fmt.Errorf("bad time %q (want HH:MM, 00:00 to 23:59)", s)
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "sunday": time.Sunday,
	"mon": time.Monday, "monday": time.Monday,
	"tue": time.Tuesday, "tues": time.Tuesday, "tuesday": time.Tuesday,
	"wed": time.Wednesday, "wednesday": time.Wednesday,
	"thu": time.Thursday, "thur": time.Thursday, "thurs": time.Thursday, "thursday": time.Thursday,
	"fri": time.Friday, "friday": time.Friday,
	"sat": time.Saturday, "saturday": time.Saturday,
}

func parseDay(s string) (time.Weekday, error) {
	if d, ok := dayNames[strings.ToLower(strings.TrimSpace(s))]; ok {
		return d, nil
	}
	return 0, fmt.Errorf("bad day %q (want mon, tue, wed, thu, fri, sat or sun)", s)
}

// parseAction accepts allow or block in any case.
func parseAction(s, what string) (string, error) {
	switch a := strings.ToLower(strings.TrimSpace(s)); a {
	case "allow", "block":
		return a, nil
	}
	return "", fmt.Errorf("bad %s %q (want allow or block)", what, s)
}

// checkCategory checks a category name; the pseudo-categories
// (unclassified, ip-literal, ech) only where allowUnclassified is set
// (rules), never in lists.
func checkCategory(s string, allowUnclassified bool) (string, error) {
	c, ok := categories.Parse(s)
	if ok && (!c.Pseudo() || allowUnclassified) {
		return c.String(), nil
	}
	if ok && c == categories.Unclassified {
		return "", fmt.Errorf("unclassified cannot be given to a list: it is what a host that no list names is")
	}
	if ok {
		return "", fmt.Errorf("%s cannot be given to a list: it is what the proxy sees of a connection, not of a host", c)
	}
	var known []string
	for _, c := range categories.All() {
		if !c.Pseudo() || allowUnclassified {
			known = append(known, c.String())
		}
	}
	if m := suggest(s, known); m != "" {
		return "", fmt.Errorf("unknown category %q (did you mean %q? known: %s)", s, m, strings.Join(known, ", "))
	}
	return "", fmt.Errorf("unknown category %q (known: %s)", s, strings.Join(known, ", "))
}

// checkDomain checks a domain entry (a host and its subdomains).
func checkDomain(s string) error {
	switch {
	case strings.Contains(s, "://"):
		return fmt.Errorf("domain %q is a URL: give the host name only (or put it under urls)", s)
	case strings.ContainsAny(s, " \t\r\n"):
		return fmt.Errorf("domain %q contains a space", s)
	case strings.HasPrefix(s, "*") || strings.HasPrefix(s, "."):
		return fmt.Errorf("domain %q: write it without \"*.\" or a leading dot (an entry already covers its subdomains)", s)
	case strings.Contains(s, "/"):
		return fmt.Errorf("domain %q has a path: put it under a list's urls", s)
	}
	return nil
}

// normURL checks a URL entry (host/path prefix), dropping an http(s)
// scheme that was pasted with it.
func normURL(s string) (string, error) {
	low := strings.ToLower(s)
	for _, scheme := range []string{"http://", "https://"} {
		if strings.HasPrefix(low, scheme) {
			s = s[len(scheme):]
			break
		}
	}
	switch {
	case s == "" || strings.HasPrefix(s, "/"):
		return "", fmt.Errorf("url %q has no host", s)
	case strings.Contains(s, "://"):
		return "", fmt.Errorf("url %q: only http and https URLs can be listed", s)
	case strings.ContainsAny(s, " \t\r\n"):
		return "", fmt.Errorf("url %q contains a space", s)
	}
	return s, nil
}

// checkWebhook checks that s is an absolute http or https URL.
func checkWebhook(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("alerts.webhook %q is not an http or https URL", s)
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// checkProfileName keeps profile names safe to write in the users CSV,
// in rule names (PROFILE#N) and in metric labels.
func checkProfileName(s string) error {
	if len(s) > 64 || !nameRE.MatchString(s) {
		return fmt.Errorf("bad profile name %q: use letters, digits, '-', '_' or '.' (at most 64)", s)
	}
	return nil
}
