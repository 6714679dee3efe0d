package directory

import (
	"context"
	"errors"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/schoolgate/schoolgate/config"
)

// wireAD is a fake Active Directory domain controller on a loopback
// port, speaking LDAP on the wire: enough of it for a sign-in with the
// default (Active Directory) user filter. Its root DSE lists the Active
// Directory capability; a base search of an entry with the in-chain
// filter (memberOf:1.2.840.113556.1.4.1941:=G) matches when G is
// anywhere up its chain of groups, or, with refuse set, fails with
// inappropriateMatching (a server that claims more than it does); a base
// search with (objectClass=*) reads an entry's direct memberOf (the walk).
type wireAD struct {
	addr     string
	refuse   bool
	accounts map[string]adAccount // sAMAccountName -> account
	memberOf memberships

	inChain, reads, conns atomic.Int32
	// userOnSvc counts user binds on a connection the service account
	// bound on; emptyBinds binds with an empty password (an anonymous
	// bind to many servers).
	userOnSvc, emptyBinds atomic.Int32
	mu                    sync.Mutex
	filters               []string // user searches, as the server decoded them
}

type adAccount struct {
	dn, password string
	disabled     bool
}

const adSvc, adSvcPassword = "CN=svc-schoolgate,OU=Service,DC=school,DC=local", "svc-pw"

func startWireAD(t *testing.T, refuse bool) *wireAD {
	t.Helper()
	const (
		alice = "CN=Alice Pupil,OU=Pupils,DC=school,DC=local"
		tom   = "CN=Tom Teacher,OU=Staff,DC=school,DC=local"
		dan   = "CN=Dan Left,OU=Pupils,DC=school,DC=local"
		y7    = "CN=Year 7,OU=Groups,DC=school,DC=local"
		pup   = "CN=All Pupils,OU=Groups,DC=school,DC=local"
		tch   = "CN=Teachers,OU=Groups,DC=school,DC=local"
		stf   = "CN=Staff,OU=Groups,DC=school,DC=local"
	)
	f := &wireAD{refuse: refuse,
		accounts: map[string]adAccount{
			"alice": {dn: alice, password: "alice-pw"},
			"tom":   {dn: tom, password: "tom-pw"},
			"dan":   {dn: dan, password: "dan-pw", disabled: true},
		},
		memberOf: map[string][]string{alice: {y7}, y7: {pup}, tom: {tch}, tch: {stf}, dan: {y7}},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f.addr = ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.conns.Add(1)
			go f.serve(c)
		}
	}()
	return f
}

var samRe = regexp.MustCompile(`\(sAMAccountName=([^)]*)\)`)

func (f *wireAD) serve(c net.Conn) {
	defer c.Close()
	svc := false
	for {
		p, err := ber.ReadPacket(c)
		if err != nil || len(p.Children) < 2 {
			return
		}
		id := p.Children[0].Value.(int64)
		op := p.Children[1]
		switch op.Tag {
		case ldap.ApplicationBindRequest:
			dn, pw := op.Children[1].Value.(string), string(op.Children[2].Data.Bytes())
			code := uint64(ldap.LDAPResultInvalidCredentials)
			if pw == "" {
				f.emptyBinds.Add(1)
			}
			if dn == adSvc && pw == adSvcPassword {
				code, svc = ldap.LDAPResultSuccess, true
			} else if svc {
				f.userOnSvc.Add(1)
			}
			for _, a := range f.accounts {
				if strings.EqualFold(a.dn, dn) && pw == a.password && pw != "" {
					code = ldap.LDAPResultSuccess
				}
			}
			c.Write(adResult(id, ldap.ApplicationBindResponse, code).Bytes()) //nolint:errcheck
		case ldap.ApplicationSearchRequest:
			entries, code := f.search(op)
			for _, e := range entries {
				c.Write(adEntry(id, e).Bytes()) //nolint:errcheck
			}
			c.Write(adResult(id, ldap.ApplicationSearchResultDone, code).Bytes()) //nolint:errcheck
		case ldap.ApplicationUnbindRequest:
			return
		}
	}
}

func (f *wireAD) search(op *ber.Packet) ([]*ldap.Entry, uint64) {
	base := op.Children[0].Value.(string)
	filter, err := ldap.DecompileFilter(op.Children[6])
	if err != nil {
		return nil, ldap.LDAPResultProtocolError
	}
	switch {
	case base == "":
		return []*ldap.Entry{ldap.NewEntry("", map[string][]string{
			"supportedCapabilities": {adCapability, "1.2.840.113556.1.4.1670"},
		})}, ldap.LDAPResultSuccess
	case strings.HasPrefix(filter, "(memberOf:"+inChainRule+":="):
		f.inChain.Add(1)
		if f.refuse {
			return nil, ldap.LDAPResultInappropriateMatching
		}
		want := strings.TrimSuffix(strings.TrimPrefix(filter, "(memberOf:"+inChainRule+":="), ")")
		if f.memberOf.reaches(base, normDN(want), 0) {
			return []*ldap.Entry{ldap.NewEntry(base, nil)}, ldap.LDAPResultSuccess
		}
		return nil, ldap.LDAPResultSuccess
	case filter == "(objectClass=*)":
		f.reads.Add(1)
		return []*ldap.Entry{ldap.NewEntry(base, map[string][]string{"memberOf": f.memberOf[base]})}, ldap.LDAPResultSuccess
	}
	// The user search: the default filter, decoded; the account by its
	// sAMAccountName, left out when disabled and the filter asks so.
	f.mu.Lock()
	f.filters = append(f.filters, filter)
	f.mu.Unlock()
	m := samRe.FindStringSubmatch(filter)
	if m == nil {
		return nil, ldap.LDAPResultSuccess
	}
	a, ok := f.accounts[m[1]]
	if !ok || a.disabled && strings.Contains(filter, "(!(userAccountControl:1.2.840.113556.1.4.803:=2))") {
		return nil, ldap.LDAPResultSuccess
	}
	return []*ldap.Entry{ldap.NewEntry(a.dn, map[string][]string{"memberOf": f.memberOf[a.dn]})}, ldap.LDAPResultSuccess
}

func adResult(id int64, tag ber.Tag, code uint64) *ber.Packet {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, ""))
	r := ber.Encode(ber.ClassApplication, ber.TypeConstructed, tag, nil, "")
	r.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, code, ""))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", ""))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", ""))
	p.AppendChild(r)
	return p
}

func adEntry(id int64, e *ldap.Entry) *ber.Packet {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, ""))
	r := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationSearchResultEntry, nil, "")
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, e.DN, ""))
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	for _, a := range e.Attributes {
		pa := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
		pa.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, a.Name, ""))
		vals := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "")
		for _, v := range a.Values {
			vals.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, v, ""))
		}
		pa.AppendChild(vals)
		attrs.AppendChild(pa)
	}
	r.AppendChild(attrs)
	p.AppendChild(r)
	return p
}

// TestWireADInChain signs in against fake domain controllers over LDAP:
// one that takes the in-chain rule (nested membership in one query per
// group, no walk) and one that lists the capability but refuses the rule
// (found at the first sign-in, remembered: the walk from then on). The
// default user filter is the one sent: it finds accounts by
// sAMAccountName and leaves disabled ones out.
func TestWireADInChain(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		name := map[bool]string{false: "takes the rule", true: "refuses the rule"}[refuse]
		t.Run(name, func(t *testing.T) {
			f := startWireAD(t, refuse)
			cfg := schoolConfig(t, "ldap://"+f.addr)
			if err := writeFile(cfg.BindPasswordFile, adSvcPassword+"\n"); err != nil {
				t.Fatal(err)
			}
			cfg.BindDN, cfg.BaseDN, cfg.UserFilter = adSvc, "DC=school,DC=local", ""
			cfg.Groups = []config.LDAPGroup{
				{Group: "cn=staff,ou=groups,dc=school,dc=local", Profile: "staff"},
				{Group: "CN=All Pupils,OU=Groups,DC=school,DC=local", Profile: "pupils"},
			}
			d, _ := newDir(t, cfg)
			ctx := context.Background()
			for _, c := range []struct{ user, pass, profile string }{
				{"alice", "alice-pw", "pupils"}, {"tom", "tom-pw", "staff"},
			} {
				r, err := d.Authenticate(ctx, c.user, c.pass)
				if err != nil || r.Profile != c.profile {
					t.Fatalf("%s: %+v, %v; want %s", c.user, r, err, c.profile)
				}
			}
			var re *RejectedError
			if _, err := d.Authenticate(ctx, "alice", "wrong"); !errors.As(err, &re) {
				t.Errorf("wrong password: %v, want RejectedError", err)
			}
			if _, err := d.Authenticate(ctx, "dan", "dan-pw"); !errors.As(err, &re) {
				t.Errorf("disabled account: %v, want RejectedError", err)
			}
			if _, err := d.Authenticate(ctx, "*", "alice-pw"); !errors.As(err, &re) {
				t.Errorf("a star for a name: %v, want RejectedError", err)
			}
			if _, err := d.Authenticate(ctx, "tom", ""); !errors.As(err, &re) {
				t.Errorf("empty password: %v, want RejectedError", err)
			}
			// The password is checked by a bind of its own connection,
			// never on the service account's; an empty one is never sent.
			if n, e := f.userOnSvc.Load(), f.emptyBinds.Load(); n != 0 || e != 0 {
				t.Errorf("%d user binds on the service account's connection, %d empty-password binds; want none", n, e)
			}
			f.mu.Lock()
			filters := strings.Join(f.filters, "\n")
			f.mu.Unlock()
			if !strings.Contains(filters, `(sAMAccountName=\2a)`) {
				t.Errorf("the star was not escaped in the filters sent:\n%s", filters)
			}
			// alice: 2 groups asked (staff, then pupils); tom: 1.
			switch {
			case !refuse && (d.inChain.Load() != 1 || f.inChain.Load() != 3 || f.reads.Load() != 0):
				t.Errorf("in-chain server: mode %d, %d in-chain searches, %d walk reads; want 1, 3, 0", d.inChain.Load(), f.inChain.Load(), f.reads.Load())
			case refuse && (d.inChain.Load() != 2 || f.inChain.Load() != 1 || f.reads.Load() == 0):
				t.Errorf("refusing server: mode %d, %d in-chain searches, %d walk reads; want 2, 1, >0", d.inChain.Load(), f.inChain.Load(), f.reads.Load())
			}
		})
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
