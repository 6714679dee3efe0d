package directory

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/schoolgate/schoolgate/config"
)

// StaleFor is how long past cache_minutes a cached sign-in is honoured
// while the directory cannot be reached: a school day.
const StaleFor = 8 * time.Hour

// inChainRule is Active Directory's LDAP_MATCHING_RULE_IN_CHAIN: it
// matches along the whole chain of member/memberOf links.
const inChainRule = "1.2.840.113556.1.4.1941"

// adCapability is LDAP_CAP_ACTIVE_DIRECTORY_OID, which an Active
// Directory domain controller lists in its root DSE.
const adCapability = "1.2.840.113556.1.4.800"

// Walk bounds: a group graph deeper or wider than this is cut short
// (and cycles are visited once).
const (
	maxDepth  = 8
	maxGroups = 256
)

// RejectedError is a sign-in the directory refused: no such user, a
// disabled account, a wrong or empty password.
type RejectedError struct{ Reason string }

func (e *RejectedError) Error() string { return "directory sign-in refused: " + e.Reason }

// UnavailableError is a sign-in that could not be checked because the
// directory could not be reached or would not answer.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return "directory cannot be reached: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// Result is a sign-in the directory accepted.
type Result struct {
	// Profile is the profile of the first listed group the user is in,
	// "" when none (the caller applies default_profile).
	Profile string
	// Until is when to ask the directory again; before it the result
	// stands without asking.
	Until time.Time
}

// Directory checks sign-ins against one users.ldap configuration. It is
// safe for concurrent use.
type Directory struct {
	cfg      config.LDAP
	password string
	tls      *tls.Config
	addr     string // host:port
	ldaps    bool
	ttl      time.Duration
	timeout  time.Duration
	now      func() time.Time

	secret [32]byte
	cache  *lru.Cache[[32]byte, entry]
	// sf makes concurrent sign-ins with the same credentials ask once.
	sfMu sync.Mutex
	sf   map[[32]byte]*call

	// inChain: 0 not yet known, 1 the server takes the in-chain rule,
	// 2 it does not (walk).
	inChain atomic.Int32

	// downUntil (unix nanoseconds): the directory could not be reached
	// lately, so sign-ins until then are answered as unreachable without
	// waiting for another connect timeout each.
	downUntil atomic.Int64
}

// retryDown is how long after a failure to reach the directory it is
// left alone.
const retryDown = 15 * time.Second

type entry struct {
	profile string
	at      time.Time // when the directory last said yes
}

type call struct {
	done chan struct{}
	res  Result
	err  error
}

// New prepares a Directory for cfg: it reads the service account's
// password and the CA file, but does not connect.
func New(cfg config.LDAP) (*Directory, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("users.ldap.url %q: want ldaps://HOST[:PORT] or ldap://HOST[:PORT]", cfg.URL)
	}
	d := &Directory{
		cfg:     cfg,
		ldaps:   strings.EqualFold(u.Scheme, "ldaps"),
		ttl:     time.Duration(max(cfg.CacheMinutes, 1)) * time.Minute,
		timeout: 5 * time.Second,
		now:     time.Now,
		sf:      make(map[[32]byte]*call),
	}
	if d.ldaps && cfg.StartTLS {
		return nil, fmt.Errorf("users.ldap.start_tls is for ldap:// URLs; %s is TLS already", cfg.URL)
	}
	if !d.ldaps && !cfg.StartTLS && !loopback(u.Hostname()) {
		return nil, fmt.Errorf("users.ldap.url %s: a plain bind would send passwords unencrypted; use ldaps:// or start_tls", cfg.URL)
	}
	port := u.Port()
	if port == "" {
		port = "389"
		if d.ldaps {
			port = "636"
		}
	}
	d.addr = net.JoinHostPort(u.Hostname(), port)
	if cfg.UserFilter == "" {
		d.cfg.UserFilter = config.DefaultLDAPUserFilter
	}
	if cfg.BindPasswordFile != "" {
		b, err := os.ReadFile(cfg.BindPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("reading users.ldap.bind_password_file: %w", err)
		}
		d.password, _, _ = strings.Cut(string(b), "\n")
		d.password = strings.TrimRight(d.password, "\r")
		if d.password == "" {
			return nil, fmt.Errorf("users.ldap.bind_password_file %s is empty", cfg.BindPasswordFile)
		}
	}
	d.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pool, err := cfg.CAPool()
		if err != nil {
			return nil, err
		}
		d.tls.RootCAs = pool
	}
	if _, err := rand.Read(d.secret[:]); err != nil {
		return nil, fmt.Errorf("no randomness for the sign-in cache: %w", err)
	}
	d.cache, _ = lru.New[[32]byte, entry](8192)
	return d, nil
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Config returns the configuration d was made from.
func (d *Directory) Config() config.LDAP { return d.cfg }

func (d *Directory) key(user, pass string) [32]byte {
	h := sha256.New()
	h.Write(d.secret[:])
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(pass))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// Authenticate checks user and pass. It returns a Result, a
// *RejectedError or an *UnavailableError.
func (d *Directory) Authenticate(ctx context.Context, user, pass string) (Result, error) {
	if user == "" || pass == "" {
		// An LDAP bind with an empty password is an "unauthenticated
		// bind" that many servers accept: never send one.
		return Result{}, &RejectedError{Reason: "empty password"}
	}
	k := d.key(user, pass)
	now := d.now()
	e, cached := d.cache.Get(k)
	if cached && now.Sub(e.at) < d.ttl {
		return Result{Profile: e.profile, Until: e.at.Add(d.ttl)}, nil
	}

	d.sfMu.Lock()
	c, running := d.sf[k]
	if !running {
		c = &call{done: make(chan struct{})}
		d.sf[k] = c
	}
	d.sfMu.Unlock()
	if running {
		select {
		case <-c.done:
			return c.res, c.err
		case <-ctx.Done():
			return Result{}, &UnavailableError{Err: ctx.Err()}
		}
	}
	defer func() {
		d.sfMu.Lock()
		delete(d.sf, k)
		d.sfMu.Unlock()
		close(c.done)
	}()

	var (
		profile string
		err     error
	)
	asked := false
	if until := d.downUntil.Load(); until != 0 && now.UnixNano() < until {
		err = &UnavailableError{Err: errors.New("it did not answer a moment ago")}
	} else {
		asked = true
		profile, err = d.ask(ctx, user, pass)
	}
	now = d.now()
	var ue *UnavailableError
	// Only a failure of the directory itself puts the next try off: one
	// answered so without asking must not, or a steady stream of
	// sign-ins would never let it be tried again.
	if asked && errors.As(err, &ue) && ctx.Err() == nil {
		d.downUntil.Store(now.Add(retryDown).UnixNano())
	} else if err == nil {
		d.downUntil.Store(0)
	}
	switch {
	case err == nil:
		d.cache.Add(k, entry{profile: profile, at: now})
		c.res = Result{Profile: profile, Until: now.Add(d.ttl)}
	case errors.As(err, &ue) && cached && now.Sub(e.at) < d.ttl+StaleFor:
		// The directory is away: a sign-in it accepted lately stands,
		// and is asked about again in a minute.
		c.res = Result{Profile: e.profile, Until: now.Add(time.Minute)}
	default:
		if !errors.As(err, &ue) {
			d.cache.Remove(k)
		}
		c.err = err
	}
	return c.res, c.err
}

// dial opens a connection, with TLS as configured: ldaps:// is TLS from
// the first byte, start_tls upgrades a plain connection before anything
// else is sent. Both verify the server's certificate against ca_file (or
// the system's roots) for the host named in the URL. Connecting and the
// TLS handshake together take at most d.timeout (go-ldap's own StartTLS
// handshake has no deadline, so the connection carries one until it is
// done).
func (d *Directory) dial(ctx context.Context) (*ldap.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	var (
		raw net.Conn
		err error
	)
	if d.ldaps {
		raw, err = (&tls.Dialer{Config: d.tls}).DialContext(ctx, "tcp", d.addr)
	} else {
		raw, err = (&net.Dialer{}).DialContext(ctx, "tcp", d.addr)
	}
	if err != nil {
		return nil, &UnavailableError{Err: d.explain(err)}
	}
	conn := ldap.NewConn(raw, d.ldaps)
	conn.Start()
	conn.SetTimeout(d.timeout)
	if d.cfg.StartTLS {
		if deadline, ok := ctx.Deadline(); ok {
			raw.SetDeadline(deadline) //nolint:errcheck // a closed conn fails StartTLS below
		}
		err := conn.StartTLS(d.tls)
		raw.SetDeadline(time.Time{}) //nolint:errcheck
		if err != nil {
			conn.Close()
			return nil, &UnavailableError{Err: d.explain(fmt.Errorf("start_tls: %w", err))}
		}
	}
	if deadline, ok := ctx.Deadline(); ok {
		if t := time.Until(deadline); t > 0 && t < d.timeout {
			conn.SetTimeout(t)
		}
	}
	return conn, nil
}

// explain adds to a failed TLS connection what a technician should look
// at. go-ldap reports a failed StartTLS handshake as text only, so the
// certificate errors are recognised by their x509 wording as well as by
// type.
func (d *Directory) explain(err error) error {
	var (
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		msg     = err.Error()
	)
	ca := "the system's roots (set users.ldap.ca_file to the CA that issued it, e.g. the school's AD CS root)"
	if d.cfg.CAFile != "" {
		ca = "users.ldap.ca_file " + d.cfg.CAFile + " (it must hold the CA that issued the server's certificate)"
	}
	switch {
	case errors.As(err, &unknown) || strings.Contains(msg, "x509: certificate signed by unknown authority"):
		return fmt.Errorf("%w: the server's certificate does not chain to %s", err, ca)
	case errors.As(err, &host) || strings.Contains(msg, "x509: certificate is valid for") || strings.Contains(msg, "x509: cannot validate certificate for"):
		return fmt.Errorf("%w: the certificate is not for the host in users.ldap.url %s (use the name the certificate is issued to)", err, d.cfg.URL)
	case errors.As(err, &invalid) || strings.Contains(msg, "x509: "):
		return fmt.Errorf("%w: the server's certificate was not accepted", err)
	}
	return err
}

// ask asks the directory about user and pass and returns the profile.
func (d *Directory) ask(ctx context.Context, user, pass string) (string, error) {
	svc, err := d.dial(ctx)
	if err != nil {
		return "", err
	}
	defer svc.Close()
	if d.cfg.BindDN != "" {
		if err := svc.Bind(d.cfg.BindDN, d.password); err != nil {
			// A refused service account is the configuration's fault,
			// not the user's: nobody can be checked.
			return "", &UnavailableError{Err: fmt.Errorf("binding as %s: %w", d.cfg.BindDN, err)}
		}
	}
	filter := strings.ReplaceAll(d.cfg.UserFilter, "{user}", ldap.EscapeFilter(user))
	res, err := svc.Search(ldap.NewSearchRequest(d.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, int(d.timeout/time.Second), false, filter, []string{"memberOf"}, nil))
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		return "", &UnavailableError{Err: fmt.Errorf("searching for the user: %w", err)}
	}
	switch {
	case res == nil || len(res.Entries) == 0:
		return "", &RejectedError{Reason: "unknown user (or disabled account)"}
	case len(res.Entries) > 1:
		return "", &RejectedError{Reason: "the name matches several directory entries"}
	}
	u := res.Entries[0]

	// The password is checked on a connection of its own, so the
	// service account's searches never run as the user.
	uc, err := d.dial(ctx)
	if err != nil {
		return "", err
	}
	err = uc.Bind(u.DN, pass)
	uc.Close()
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials):
		return "", &RejectedError{Reason: "wrong password"}
	case err != nil:
		return "", &UnavailableError{Err: fmt.Errorf("binding as the user: %w", err)}
	}
	if len(d.cfg.Groups) == 0 {
		return "", nil
	}
	return d.profileOf(svc, u)
}

// searcher is what group resolution needs of a connection; tests put a
// directory of their own behind it.
type searcher interface {
	Search(*ldap.SearchRequest) (*ldap.SearchResult, error)
}

// profileOf returns the profile of the first listed group u is in.
func (d *Directory) profileOf(s searcher, u *ldap.Entry) (string, error) {
	if d.inChain.Load() == 0 {
		d.inChain.Store(d.detectInChain(s))
	}
	if d.inChain.Load() == 1 {
		p, err := d.profileInChain(s, u.DN)
		if err == nil {
			return p, nil
		}
		var ue *UnavailableError
		if errors.As(err, &ue) {
			return "", err
		}
		// The server refused the rule after all: walk from now on.
		d.inChain.Store(2)
	}
	return d.profileByWalk(s, u)
}

// detectInChain asks the root DSE whether the server is Active Directory,
// whose domain controllers take the in-chain rule: 1 yes, 2 no.
func (d *Directory) detectInChain(s searcher) int32 {
	res, err := s.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, int(d.timeout/time.Second), false, "(objectClass=*)", []string{"supportedCapabilities"}, nil))
	if err != nil || len(res.Entries) == 0 {
		return 2
	}
	for _, c := range res.Entries[0].GetAttributeValues("supportedCapabilities") {
		if c == adCapability {
			return 1
		}
	}
	return 2
}

// profileInChain asks, group by group in order, whether the group has
// userDN somewhere down its chain of members. A server that refuses the
// rule gives a *RejectedError-free plain error (so the caller walks).
func (d *Directory) profileInChain(s searcher, userDN string) (string, error) {
	for _, g := range d.cfg.Groups {
		res, err := s.Search(ldap.NewSearchRequest(userDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
			1, int(d.timeout/time.Second), false,
			"(memberOf:"+inChainRule+":="+ldap.EscapeFilter(g.Group)+")", []string{"1.1"}, nil))
		if err != nil {
			if isNetwork(err) {
				return "", &UnavailableError{Err: err}
			}
			return "", err
		}
		if len(res.Entries) > 0 {
			return g.Profile, nil
		}
	}
	return "", nil
}

// profileByWalk walks up from u's groups, breadth first, reading each
// group's memberOf (or, where the server keeps none, searching for
// groups that list it as a member), and returns the profile of the first
// listed group reached.
func (d *Directory) profileByWalk(s searcher, u *ldap.Entry) (string, error) {
	in := make(map[string]bool) // normalised DNs of the groups found
	frontier, err := d.parents(s, u.DN, u.GetAttributeValues("memberOf"), u.GetAttributeValue("memberOf") != "")
	if err != nil {
		return "", err
	}
	for depth := 0; len(frontier) > 0 && depth < maxDepth && len(in) < maxGroups; depth++ {
		var next []string
		for _, g := range frontier {
			n := normDN(g)
			if in[n] || len(in) >= maxGroups {
				continue
			}
			in[n] = true
			up, err := d.parents(s, g, nil, false)
			if err != nil {
				return "", err
			}
			next = append(next, up...)
		}
		frontier = next
	}
	for _, g := range d.cfg.Groups {
		if in[normDN(g.Group)] {
			return g.Profile, nil
		}
	}
	return "", nil
}

// parents returns the groups dn is a direct member of: known (the
// memberOf values already read) when have is set, else read.
func (d *Directory) parents(s searcher, dn string, known []string, have bool) ([]string, error) {
	if have {
		return known, nil
	}
	res, err := s.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, int(d.timeout/time.Second), false, "(objectClass=*)", []string{"memberOf"}, nil))
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil, &UnavailableError{Err: fmt.Errorf("reading the groups of %s: %w", dn, err)}
	}
	if err == nil && len(res.Entries) > 0 {
		if m := res.Entries[0].GetAttributeValues("memberOf"); len(m) > 0 {
			return m, nil
		}
	}
	// No memberOf: ask which groups list dn as a member.
	res, err = s.Search(ldap.NewSearchRequest(d.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		maxGroups, int(d.timeout/time.Second), false,
		"(|(member="+ldap.EscapeFilter(dn)+")(uniqueMember="+ldap.EscapeFilter(dn)+"))", []string{"1.1"}, nil))
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		return nil, &UnavailableError{Err: fmt.Errorf("finding the groups of %s: %w", dn, err)}
	}
	if res == nil {
		return nil, nil
	}
	out := make([]string, 0, len(res.Entries))
	for _, e := range res.Entries {
		out = append(out, e.DN)
	}
	return out, nil
}

// normDN compares DNs the way directories usually do: case-insensitive,
// spaces after commas ignored.
func normDN(dn string) string {
	if p, err := ldap.ParseDN(dn); err == nil {
		parts := make([]string, 0, len(p.RDNs))
		for _, r := range p.RDNs {
			for _, a := range r.Attributes {
				parts = append(parts, strings.ToLower(a.Type)+"="+strings.ToLower(a.Value))
			}
		}
		return strings.Join(parts, ",")
	}
	return strings.ToLower(dn)
}

func isNetwork(err error) bool {
	return ldap.IsErrorAnyOf(err, ldap.ErrorNetwork, ldap.LDAPResultUnavailable, ldap.LDAPResultBusy, ldap.LDAPResultServerDown, ldap.LDAPResultTimeout)
}
