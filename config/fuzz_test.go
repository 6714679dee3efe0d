package config

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, that a refusal is
// always a list of located problems, and that an accepted config is
// consistent. Seeds: testdata/fuzz/FuzzParse, plus the example and the
// embedded default.
func FuzzParse(f *testing.F) {
	f.Add(embeddedYAML)
	if data, err := os.ReadFile("testdata/many-problems.yaml"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "f.yaml", "/srv")
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error is not a non-empty Problems: %v", err)
			}
			for _, p := range ps {
				if p.Msg == "" || p.File != "f.yaml" || p.Line < 0 {
					t.Fatalf("bad problem %+v", p)
				}
			}
			return
		}
		if cfg.Location == nil {
			t.Fatal("accepted config without Location")
		}
		if _, ok := cfg.Profiles[cfg.DefaultProfile]; !ok {
			t.Fatalf("accepted config whose default_profile %q is not a profile", cfg.DefaultProfile)
		}
		for _, n := range cfg.Networks {
			if _, ok := cfg.Profiles[n.Profile]; !ok || !n.Prefix.IsValid() {
				t.Fatalf("accepted bad network %+v", n)
			}
		}
		for name, p := range cfg.Profiles {
			if p.Default != "allow" && p.Default != "block" {
				t.Fatalf("profile %s has default %q", name, p.Default)
			}
			for _, r := range p.Rules {
				if r.Action != "allow" && r.Action != "block" {
					t.Fatalf("profile %s rule has action %q", name, r.Action)
				}
				for _, s := range append(r.When, r.WhenNot...) {
					if _, ok := cfg.Schedules[s]; !ok {
						t.Fatalf("rule names unknown schedule %q", s)
					}
				}
			}
		}
		for _, s := range cfg.Schedules {
			if s.From < 0 || s.From >= 1440 || s.To < 0 || s.To >= 1440 {
				t.Fatalf("schedule out of range %+v", s)
			}
		}
	})
}

// FuzzParseUsers checks that no users file makes the parser panic and
// that problems always carry a line.
func FuzzParseUsers(f *testing.F) {
	f.Add([]byte("user,profile,password_hash\n# c\nalice,staff," + testHash + "\n"))
	f.Add([]byte("a,\"b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, users, ps := parseUsers(data, "u.csv")
		for _, p := range ps {
			if p.Line < 1 || p.Msg == "" {
				t.Fatalf("bad problem %+v", p)
			}
		}
		n := 0
		for _, l := range lines {
			if l.user != nil {
				n++
			}
		}
		if n != len(users) {
			t.Fatalf("%d user lines, %d users", n, len(users))
		}
	})
}

// FuzzParseUserImport: an MIS export is outside input; every accepted row
// must be a user the users file can hold.
func FuzzParseUserImport(f *testing.F) {
	for _, s := range []string{
		"user,profile,password\nada,student,pw\nbea,staff\n",
		"\ufeffUser,Profile\r\nada,student\r\n# c\r\n\r\n",
		"a,\"b,c\",d\n", "a\"b,c\n", "ada,student,\"x\"\"y\"\n", ",,\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := ParseUserImport(data, "mis.csv")
		if err != nil {
			return
		}
		for _, r := range rows {
			if checkUserName(r.Name) != nil || checkProfileName(r.Profile) != nil || len(r.Password) > 72 || r.Line < 1 {
				t.Fatalf("accepted a bad row %+v", r)
			}
		}
	})
}
