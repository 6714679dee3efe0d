package config

import (
	"fmt"
	"net/netip"
	"time"
)

// Config is one parsed and validated configuration. It is immutable once
// returned by Load: the policy compiles it into a snapshot.
type Config struct {
	// Path is the file the config was read from ("" for the embedded default);
	// Dir is its folder, against which relative paths were resolved.
	Path string `yaml:"-"`
	Dir  string `yaml:"-"`

	// RunAs is the user `serve` switches to, for good, once its listeners
	// are bound when it was started as root ("" stays as started).
	RunAs     string `yaml:"run_as"`
	RunAsLine int    `yaml:"-"`

	// StateDir holds what the gateway keeps between runs that is not
	// evidence: the last good copy of each downloaded list, the last log
	// checkpoint sent, the identity table (default "state", relative to
	// the config file's folder).
	StateDir     string `yaml:"state_dir"`
	StateDirLine int    `yaml:"-"`

	Timezone string         `yaml:"timezone"`
	Location *time.Location `yaml:"-"` // from Timezone

	Listen         Listen              `yaml:"listen"`
	Admin          Admin               `yaml:"admin"`
	Identity       Identity            `yaml:"-"` // identity.go
	Portal         Portal              `yaml:"-"` // portal.go
	Clients        []netip.Prefix      `yaml:"clients"`
	Proxy          Proxy               `yaml:"proxy"`
	DNS            DNS                 `yaml:"dns"`
	Users          Users               `yaml:"users"`
	Networks       []Network           `yaml:"-"` // from the `networks:` mapping, in file order
	DefaultProfile string              `yaml:"default_profile"`
	Schedules      map[string]Schedule `yaml:"schedules"`
	Lists          []List              `yaml:"lists"`
	Profiles       map[string]Profile  `yaml:"profiles"`
	Log            Log                 `yaml:"log"`
	Cache          Cache               `yaml:"cache"`
	Alerts         Alerts              `yaml:"alerts"`
	Content        Content             `yaml:"content"`
	Statutory      []Statutory         `yaml:"statutory"`
	ListsRefresh   Refresh             `yaml:"lists_refresh"`

	// unusable are parts of the config that serve would run without
	// (list entries it skips): `config check` refuses them (Check), Load
	// does not, so that a running school keeps starting.
	unusable Problems
}

// Listen holds the listener addresses; "" turns a listener off.
type Listen struct {
	Proxy string `yaml:"proxy"`
	DNS   string `yaml:"dns"`
	Admin string `yaml:"admin"`
	// TransparentHTTP and TransparentHTTPS receive the TCP port 80 and
	// 443 traffic the gateway's firewall redirects (schoolgate firewall).
	TransparentHTTP  string `yaml:"transparent_http"`
	TransparentHTTPS string `yaml:"transparent_https"`
}

// Admin guards the admin listener.
type Admin struct {
	// Allow lists who may use the admin listener (/metrics, /healthz);
	// the PAC file (/proxy.pac, /wpad.dat) is served to anyone, as
	// browsers fetch it.
	Allow []netip.Prefix `yaml:"allow"`
}

// Proxy holds the web proxy's guards.
type Proxy struct {
	ConnectPorts     []int          `yaml:"connect_ports"`
	DenyDestinations []netip.Prefix `yaml:"deny_destinations"`
	// DenyDestinationsSet is true when the config lists deny_destinations
	// itself: then that list alone decides; absent, the gateway's own
	// addresses are refused too.
	DenyDestinationsSet bool       `yaml:"-"`
	MaxConnections      int        `yaml:"max_connections"` // concurrent client connections
	BlockPage           BlockPage  `yaml:"block_page"`
	Intercept           *Intercept `yaml:"intercept"` // nil: HTTPS is filtered by host only
}

// BlockPage is what the block page tells a user about asking for a review.
type BlockPage struct {
	Organisation string `yaml:"organisation"` // the school's name
	Contact      string `yaml:"contact"`      // e.g. "the IT office, room 12, or it@school.example"
}

// Intercept turns on TLS interception with the school's own CA, so that
// HTTPS is decided on the full URL. Only hosts matching Domains or
// Categories are intercepted; naming neither intercepts every host.
type Intercept struct {
	CACert     string   `yaml:"ca_cert"` // PEM, path relative to the config file
	CAKey      string   `yaml:"ca_key"`
	Domains    []string `yaml:"domains"`
	Categories []string `yaml:"categories"`
	// Lines of the ca_cert, ca_key and domains keys, for problems.
	CACertLine, CAKeyLine, DomainsLine int `yaml:"-"`
}

// DNS holds the DNS filter's settings.
type DNS struct {
	Upstreams     []string `yaml:"upstreams"`      // host:port, tried in order
	BlockedAnswer string   `yaml:"blocked_answer"` // "nxdomain" or "null"
	RateLimit     int      `yaml:"rate_limit"`     // queries per second per client address
	// Forward sends the school's own zones (the AD domain, its reverse
	// zones) to the school's servers instead of dns.upstreams, in the
	// order of the file; the most specific zone wins.
	Forward []Forward `yaml:"forward"`
	// TrustedForwarders are the school's own DNS servers: exempt from
	// rate_limit, and their EDNS Client Subnet option names the client.
	TrustedForwarders     []netip.Prefix `yaml:"trusted_forwarders"`
	TrustedForwardersLine int            `yaml:"-"` // for problems`
}

// Forward is one zone of dns.forward and the servers that answer for it.
type Forward struct {
	Zone    string   // lower case, no trailing dot ("school.local", "10.in-addr.arpa")
	Servers []string // ip:port, tried in order
	Line    int
}

// Users names the users file (resolved to an absolute path) and whether
// the proxy demands credentials.
type Users struct {
	File        string `yaml:"file"`
	RequireAuth bool   `yaml:"require_auth"`
	FileLine    int    `yaml:"-"` // line of users.file, for problems with the file
	// LDAP signs in names the users file does not hold against a
	// directory (nil: none).
	LDAP *LDAP `yaml:"-"`
}

// Network maps a source prefix to a profile.
type Network struct {
	Prefix  netip.Prefix
	Profile string
	Line    int
}

// Schedule is a weekly window in local time. From is inclusive, To
// exclusive; To at or before From means the window closes the next day.
// Days names the days on which a window opens.
type Schedule struct {
	Days []time.Weekday
	From Clock
	To   Clock
	Line int
}

// Clock is a time of day as minutes after midnight (0..1439).
type Clock int

// String returns the clock as "HH:MM".
func (c Clock) String() string {
	return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60)
}

// List is one entry of `lists:`. Exactly one source is set: inline
// Domains/URLs, a File (with Format: "domains", "hosts", "adblock" or ""
// for auto-detection), or a UT1/squidGuard tree.
type List struct {
	Category string   `yaml:"category"`
	Domains  []string `yaml:"domains"`
	URLs     []string `yaml:"urls"`
	File     string   `yaml:"file"`
	Format   string   `yaml:"format"`
	UT1      string   `yaml:"ut1"`
	// URL is a list downloaded and kept current (plain domains, hosts,
	// AdBlock, gzip, as File is read); UT1URL a UT1 blacklists.tar.gz,
	// checked against the MD5 published at UT1MD5URL when given. Their
	// last good copy lives in state_dir/lists (CopyPath).
	URL       string `yaml:"url"`
	UT1URL    string `yaml:"ut1_url"`
	UT1MD5URL string `yaml:"ut1_md5_url"`
	// Name names a downloaded list (its copy's file, its metrics label);
	// derived from the category and the URL's host when absent.
	Name string `yaml:"name"`
	// Refresh overrides lists_refresh for this list (0: the default).
	Refresh time.Duration `yaml:"refresh"`
	// AllowShrink accepts a download with under 70% of the last good
	// copy's entries (refused by default: a list that shrank is usually
	// a broken one).
	AllowShrink bool `yaml:"allow_shrink"`
	Line        int  `yaml:"-"`
}

// Profile is a named policy: ordered rules, first match wins, else Default.
type Profile struct {
	SafeSearch bool `yaml:"safe_search"`
	// YouTubeRestrict is YouTube's restricted mode under safe_search:
	// "strict" (the default) or "moderate".
	YouTubeRestrict string `yaml:"youtube_restrict"`
	Rules           []Rule `yaml:"rules"`
	Default         string `yaml:"default"` // "allow" or "block"
	// ContentThreshold is how sure the content classifier must be (0..1)
	// before it puts an unlisted page in a category; lower is stricter.
	// 0 means the classifier's default.
	ContentThreshold float64 `yaml:"content_threshold"`
}

// Rule is one rule of a profile. A rule naming neither Categories nor
// Domains matches every request (subject to When/WhenNot).
type Rule struct {
	Action     string   `yaml:"action"` // "allow" or "block"
	Categories []string `yaml:"categories"`
	Domains    []string `yaml:"domains"`
	When       []string `yaml:"when"`     // schedule names: holds if any is open
	WhenNot    []string `yaml:"when_not"` // schedule names: holds if none is open
	Line       int      `yaml:"-"`
}

// Content configures the content classifier (package categories/classify):
// the proxy scores HTML pages of hosts no list names (and, with HostNames,
// the policy reads the words of unknown host names), and blocks what a
// profile's rules block once a category scores over the profile's
// content_threshold.
type Content struct {
	// Enabled turns the classifier on (default true).
	Enabled bool `yaml:"enabled"`
	// HostNames puts a host no list names into a category when its name
	// alone reads confidently as one ("best-online-casino.example"). Off by
	// default: a name is little evidence, and without it a host nothing
	// matches is unclassified, as the contract says, until its pages are
	// scored.
	HostNames bool `yaml:"host_names"`
	// PhraseFiles are extra phrase lists added to the embedded ones: lines
	// "WEIGHT PHRASE" (a negative weight is context that counts against),
	// each file named after its category or starting "category: NAME".
	PhraseFiles []string `yaml:"phrase_files"`
	// PhraseLines are the config lines of PhraseFiles' entries.
	PhraseLines []int `yaml:"-"`
	// RememberHours is how long a classified host stays classified (default 6).
	RememberHours int `yaml:"remember_hours"`
}

// Log configures the access log.
type Log struct {
	Dir           string `yaml:"dir"`
	RetentionDays int    `yaml:"retention_days"`
	DirLine       int    `yaml:"-"` // 0 when absent
	// CheckpointMinutes is how often the day's head goes out as a
	// checkpoint (to the alert sinks); also at every start and stop.
	CheckpointMinutes int `yaml:"checkpoint_minutes"`
}

// Cache sizes the verdict and DNS caches (entries).
type Cache struct {
	Verdicts int `yaml:"verdicts"`
	DNS      int `yaml:"dns"`
}

// Alerts sends safeguarding alerts for blocked attempts on the named
// categories, batched per user, to a webhook and/or an append-only file.
type Alerts struct {
	Categories   []string `yaml:"categories"`
	Webhook      string   `yaml:"webhook"`       // URL that receives a JSON POST
	File         string   `yaml:"file"`          // JSON lines, appended
	BatchSeconds int      `yaml:"batch_seconds"` // how long to gather attempts into one alert
}
