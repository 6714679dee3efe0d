package config

import (
	"net/netip"
	"time"
)

// SchoolHoursSchedule is the schedule the report reads as the school day
// (activity outside it is "out of hours"), and DefaultSchoolHours what the
// report assumes when a config does not define it.
const SchoolHoursSchedule = "school-hours"

// DefaultSchoolHours is weekdays 08:00–16:00.
var DefaultSchoolHours = Schedule{
	Days: []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday},
	From: 8 * 60, To: 16 * 60,
}

// Default returns a Config holding every default; decoding a file starts
// from it, so a key that is absent keeps the value given here. It is the
// one place where defaults live.
func Default() *Config {
	return &Config{
		Timezone: "UTC",
		StateDir: "state",
		Listen: Listen{
			Proxy: "127.0.0.1:3128",
			DNS:   "127.0.0.1:5300",
			Admin: "127.0.0.1:9090",
		},
		// The admin listener answers /metrics and /healthz to loopback
		// only unless admin.allow says otherwise; the PAC file to anyone.
		Admin: Admin{Allow: []netip.Prefix{
			netip.MustParsePrefix("127.0.0.0/8"),
			netip.MustParsePrefix("::1/128"),
		}},
		// Loopback only: a config that forgets `clients` must not make an
		// open proxy or resolver.
		Clients: []netip.Prefix{
			netip.MustParsePrefix("127.0.0.0/8"),
			netip.MustParsePrefix("::1/128"),
		},
		Proxy: Proxy{
			ConnectPorts: []int{443},
			// Link-local holds the cloud metadata endpoints
			// (169.254.169.254); nothing a pupil needs lives there, nor on
			// the gateway's own loopback (its admin listener, a database).
			// With the key absent the proxy also refuses the gateway's own
			// addresses (DenyDestinationsSet).
			DenyDestinations: []netip.Prefix{
				netip.MustParsePrefix("127.0.0.0/8"),
				netip.MustParsePrefix("::1/128"),
				netip.MustParsePrefix("169.254.0.0/16"),
				netip.MustParsePrefix("fe80::/10"),
			},
			MaxConnections: 4096,
		},
		DNS: DNS{
			Upstreams:     []string{"9.9.9.9:53", "1.1.1.1:53"},
			BlockedAnswer: "nxdomain",
			RateLimit:     200,
		},
		Schedules: map[string]Schedule{},
		Profiles:  map[string]Profile{},
		Log: Log{
			Dir:               "logs",
			RetentionDays:     183,
			CheckpointMinutes: 5,
		},
		Cache: Cache{
			Verdicts: 100000,
			DNS:      50000,
		},
		Alerts: Alerts{
			BatchSeconds: 60,
		},
		ListsRefresh: Refresh{Every: DefaultListsRefresh},
		Portal:       Portal{IdleMinutes: DefaultPortalIdleMinutes},
		Content: Content{
			Enabled:       true,
			RememberHours: 6,
		},
	}
}

// defaultProfile is what a profile holds before its keys are decoded.
func defaultProfile() Profile {
	return Profile{Default: "allow", YouTubeRestrict: "strict"}
}
