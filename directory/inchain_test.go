package directory

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/schoolgate/schoolgate/config"
)

// fakeAD answers the searches group resolution makes the way a domain
// controller does: its root DSE names the Active Directory capability,
// and a base search of a user with (memberOf:1.2.840.113556.1.4.1941:=G)
// matches when G is anywhere up the user's chain of groups. With refuse
// set it lists the capability but refuses the rule (as a server that
// claims more than it does), and answers memberOf reads for the walk.
type fakeAD struct {
	memberOf memberships
	refuse   bool
	inChain  atomic.Int32 // in-chain searches seen
	reads    atomic.Int32 // memberOf reads seen
}

func (f *fakeAD) Search(r *ldap.SearchRequest) (*ldap.SearchResult, error) {
	switch {
	case r.BaseDN == "":
		return &ldap.SearchResult{Entries: []*ldap.Entry{ldap.NewEntry("", map[string][]string{
			"supportedCapabilities": {"1.2.840.113556.1.4.800", "1.2.840.113556.1.4.1670"},
		})}}, nil
	case strings.HasPrefix(r.Filter, "(memberOf:"+inChainRule+":="):
		f.inChain.Add(1)
		if f.refuse {
			return nil, ldap.NewError(ldap.LDAPResultInappropriateMatching, nil)
		}
		want := strings.TrimSuffix(strings.TrimPrefix(r.Filter, "(memberOf:"+inChainRule+":="), ")")
		if f.memberOf.reaches(r.BaseDN, normDN(want), 0) {
			return &ldap.SearchResult{Entries: []*ldap.Entry{ldap.NewEntry(r.BaseDN, nil)}}, nil
		}
		return &ldap.SearchResult{}, nil
	case r.Filter == "(objectClass=*)":
		f.reads.Add(1)
		return &ldap.SearchResult{Entries: []*ldap.Entry{ldap.NewEntry(r.BaseDN, map[string][]string{"memberOf": f.memberOf[r.BaseDN]})}}, nil
	}
	return &ldap.SearchResult{}, nil
}

// memberships is a fake directory's memberOf values: entry DN -> the
// groups it is directly in.
type memberships map[string][]string

// reaches reports whether dn is in group, directly or through nested
// groups (at most 20 deep).
func (m memberships) reaches(dn, group string, depth int) bool {
	if depth > 20 {
		return false
	}
	for _, g := range m[dn] {
		if normDN(g) == group || m.reaches(g, group, depth+1) {
			return true
		}
	}
	return false
}

func TestInChainAndFallback(t *testing.T) {
	const (
		alice = "CN=Alice,OU=Pupils,DC=school,DC=local"
		y7    = "CN=Year 7,OU=Groups,DC=school,DC=local"
		all   = "CN=All Pupils,OU=Groups,DC=school,DC=local"
		loop  = "CN=Loop,OU=Groups,DC=school,DC=local"
	)
	graph := map[string][]string{
		alice: {y7},
		y7:    {all, loop},
		loop:  {y7}, // a cycle: visited once
	}
	cfg := config.LDAP{URL: "ldaps://dc.school.local", BaseDN: "DC=school,DC=local", Groups: []config.LDAPGroup{
		{Group: "cn=Staff,ou=groups,dc=school,dc=local", Profile: "staff"},
		{Group: "cn=all pupils,ou=groups,dc=school,dc=local", Profile: "pupils"},
	}}
	user := ldap.NewEntry(alice, map[string][]string{"memberOf": graph[alice]})
	for _, refuse := range []bool{false, true} {
		name := map[bool]string{false: "takes the rule", true: "refuses the rule"}[refuse]
		t.Run(name, func(t *testing.T) {
			d, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			f := &fakeAD{memberOf: graph, refuse: refuse}
			for i := 0; i < 2; i++ {
				p, err := d.profileOf(f, user)
				if err != nil || p != "pupils" {
					t.Fatalf("sign-in %d: profile %q, %v; want pupils", i+1, p, err)
				}
			}
			switch {
			case !refuse && (d.inChain.Load() != 1 || f.reads.Load() != 0 || f.inChain.Load() != 4):
				t.Errorf("in-chain server: mode %d, %d walk reads, %d in-chain searches; want 1, 0, 4", d.inChain.Load(), f.reads.Load(), f.inChain.Load())
			case refuse && (d.inChain.Load() != 2 || f.inChain.Load() != 1 || f.reads.Load() == 0):
				// Refused once, then remembered: the second sign-in walks
				// without trying the rule again.
				t.Errorf("refusing server: mode %d, %d in-chain searches, %d walk reads; want 2, 1, >0", d.inChain.Load(), f.inChain.Load(), f.reads.Load())
			}
		})
	}
}
