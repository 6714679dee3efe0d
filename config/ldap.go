package config

import (
	"net"
	"net/url"
	"strings"

	"gopkg.in/yaml.v3"
)

// LDAP is users.ldap: sign-in against an LDAP directory (Active
// Directory or OpenLDAP) for names the users file does not hold.
type LDAP struct {
	URL              string // ldaps://host[:port] or ldap://host[:port]
	StartTLS         bool
	BindDN           string // the service account that searches
	BindPasswordFile string // its password, first line (absolute after loading)
	BaseDN           string
	UserFilter       string // {user} is replaced by the escaped name
	CAFile           string // PEM roots for the server's certificate ("" = the system's)
	Groups           []LDAPGroup
	CacheMinutes     int
	Line             int // line of users.ldap
}

// LDAPGroup maps members of a directory group (nested membership
// included) to a profile. The first listed group a user is in decides.
type LDAPGroup struct {
	Group   string // the group's DN
	Profile string
	Line    int
}

// DefaultLDAPUserFilter finds enabled person accounts of Active Directory
// by their sAMAccountName (bit 2 of userAccountControl is "disabled").
const DefaultLDAPUserFilter = "(&(objectCategory=person)(objectClass=user)(sAMAccountName={user})(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"

// DefaultLDAPCacheMinutes is how long a directory sign-in is trusted
// before the directory is asked again.
const DefaultLDAPCacheMinutes = 15

// Encrypted reports whether the connection to the directory is TLS from
// the start or after StartTLS.
func (l *LDAP) Encrypted() bool {
	return strings.HasPrefix(strings.ToLower(l.URL), "ldaps://") || l.StartTLS
}

// ldap decodes users.ldap.
func (d *decoder) ldap(k, n *yaml.Node) {
	l := &LDAP{CacheMinutes: DefaultLDAPCacheMinutes, UserFilter: DefaultLDAPUserFilter, Line: k.Line}
	var urlLine, filterLine, startTLSLine int
	str := func(dst *string, where string) func(_, v *yaml.Node) {
		return func(_, v *yaml.Node) {
			if s, ok := d.str(v, where); ok {
				*dst = strings.TrimSpace(s)
			}
		}
	}
	d.mapping(n, "users.ldap", []field{
		{"url", func(_, v *yaml.Node) {
			urlLine = deref(v).Line
			str(&l.URL, "users.ldap.url")(nil, v)
		}},
		{"start_tls", func(k, v *yaml.Node) {
			startTLSLine = k.Line
			l.StartTLS, _ = d.boolean(v, "users.ldap.start_tls")
		}},
		{"bind_dn", str(&l.BindDN, "users.ldap.bind_dn")},
		{"bind_password_file", str(&l.BindPasswordFile, "users.ldap.bind_password_file")},
		{"base_dn", str(&l.BaseDN, "users.ldap.base_dn")},
		{"user_filter", func(_, v *yaml.Node) {
			filterLine = deref(v).Line
			str(&l.UserFilter, "users.ldap.user_filter")(nil, v)
		}},
		{"ca_file", str(&l.CAFile, "users.ldap.ca_file")},
		{"cache_minutes", func(_, v *yaml.Node) {
			if m, ok := d.nonNegative(v, "users.ldap.cache_minutes", true); ok {
				l.CacheMinutes = m
			}
		}},
		{"groups", func(_, v *yaml.Node) { l.Groups = d.ldapGroups(v) }},
	})
	if urlLine == 0 {
		urlLine = k.Line
	}
	switch u, err := url.Parse(l.URL); {
	case l.URL == "":
		d.addf(urlLine, "users.ldap.url is missing (ldaps://dc.school.local)")
	case err != nil || u.Host == "" || (u.Path != "" && u.Path != "/"):
		d.addf(urlLine, "users.ldap.url %q: want ldaps://HOST[:PORT] or ldap://HOST[:PORT]", l.URL)
	case !strings.EqualFold(u.Scheme, "ldaps") && !strings.EqualFold(u.Scheme, "ldap"):
		d.addf(urlLine, "users.ldap.url %q: the scheme must be ldaps or ldap", l.URL)
	case strings.EqualFold(u.Scheme, "ldaps") && l.StartTLS:
		d.addf(startTLSLine, "users.ldap.start_tls is for ldap:// URLs; %s is TLS already", l.URL)
	case !l.Encrypted() && !loopbackHost(u.Hostname()):
		d.addf(urlLine, "users.ldap.url %s: passwords would cross the network unencrypted; use ldaps:// or start_tls: true (plain ldap:// only to a loopback server)", l.URL)
	default:
		if p := u.Port(); p != "" {
			if _, err := net.LookupPort("tcp", p); err != nil {
				d.addf(urlLine, "users.ldap.url %q: bad port %q", l.URL, p)
			}
		}
	}
	if l.BaseDN == "" {
		d.addf(k.Line, "users.ldap.base_dn is missing: where under the directory to look for users")
	}
	if (l.BindDN == "") != (l.BindPasswordFile == "") {
		d.addf(k.Line, "users.ldap: bind_dn and bind_password_file go together (the service account that searches)")
	}
	if !strings.Contains(l.UserFilter, "{user}") {
		if filterLine == 0 {
			filterLine = k.Line
		}
		d.addf(filterLine, "users.ldap.user_filter must contain {user}, where the name signing in goes")
	} else if !strings.HasPrefix(l.UserFilter, "(") || !strings.HasSuffix(l.UserFilter, ")") {
		d.addf(filterLine, "users.ldap.user_filter %q: an LDAP filter is written in parentheses", l.UserFilter)
	}
	d.cfg.Users.LDAP = l
}

// ldapGroups decodes users.ldap.groups: a list of {group: DN, profile: NAME}.
func (d *decoder) ldapGroups(n *yaml.Node) []LDAPGroup {
	nodes, _ := d.list(n, "users.ldap.groups")
	var out []LDAPGroup
	for _, c := range nodes {
		g := LDAPGroup{Line: c.Line}
		d.mapping(c, "users.ldap.groups", []field{
			{"group", func(_, v *yaml.Node) {
				if s, ok := d.str(v, "users.ldap.groups.group"); ok {
					g.Group = strings.TrimSpace(s)
				}
			}},
			{"profile", func(_, v *yaml.Node) {
				if s, ok := d.str(v, "users.ldap.groups.profile"); ok {
					g.Profile = strings.TrimSpace(s)
				}
			}},
		})
		if g.Group == "" || g.Profile == "" {
			d.addf(c.Line, "users.ldap.groups: each entry needs group (a DN) and profile")
			continue
		}
		name, line := g.Profile, g.Line
		d.later = append(d.later, func() { d.checkProfileRef(name, line) })
		out = append(out, g)
	}
	return out
}
