package policy

import (
	"testing"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/config"
)

func TestIntercepts(t *testing.T) {
	gambling := categories.SetOf(categories.Gambling)
	cases := []struct {
		name string
		ic   *config.Intercept
		host string
		cats categories.Set
		want bool
	}{
		{"no interception", nil, "www.bet365.com", gambling, false},
		{"every host", &config.Intercept{}, "example.org", 0, true},
		{"domain itself", &config.Intercept{Domains: []string{"bet365.com"}}, "bet365.com", 0, true},
		{"subdomain", &config.Intercept{Domains: []string{"bet365.com"}}, "www.bet365.com", 0, true},
		{"suffix but not a subdomain", &config.Intercept{Domains: []string{"bet365.com"}}, "notbet365.com", 0, false},
		{"other domain", &config.Intercept{Domains: []string{"bet365.com"}}, "example.org", 0, false},
		{"domain spelled loosely in the config", &config.Intercept{Domains: []string{"Bet365.COM."}}, "www.bet365.com", 0, true},
		{"category", &config.Intercept{Categories: []string{"gambling"}}, "casino.example", gambling, true},
		{"other category", &config.Intercept{Categories: []string{"adult"}}, "casino.example", gambling, false},
		{"unclassified host", &config.Intercept{Categories: []string{"unclassified"}}, "new.example", 0, true},
		{"classified host is not unclassified", &config.Intercept{Categories: []string{"unclassified"}}, "casino.example", gambling, false},
		{"domains or categories", &config.Intercept{Domains: []string{"a.example"}, Categories: []string{"gambling"}}, "casino.example", gambling, true},
		{"empty host", &config.Intercept{}, "", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &Snapshot{Config: &config.Config{Proxy: config.Proxy{Intercept: tc.ic}}}
			if got := s.Intercepts(tc.host, tc.cats); got != tc.want {
				t.Errorf("Intercepts(%q, %v) = %v, want %v", tc.host, tc.cats, got, tc.want)
			}
		})
	}
	var nilSnap *Snapshot
	if nilSnap.Intercepts("example.org", 0) {
		t.Error("a nil snapshot intercepts")
	}
}
