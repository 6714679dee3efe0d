package identity

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
)

// The logon API: POST /api/identity on the admin listener, for Windows
// logon and logoff scripts (deploy/windows/schoolgate-logon.ps1).
const (
	APIPath         = "/api/identity"
	SignatureHeader = "X-Schoolgate-Signature"
	// APIMaxBody bounds a request body: a user name, an address, an
	// action and a time.
	APIMaxBody = 4 << 10
	// APISkew is how far ts may be from the gateway's clock.
	APISkew = 5 * time.Minute
	// APILogonTTL is how long a logon names its address when no logoff
	// comes (a machine switched off at the wall).
	APILogonTTL = 12 * time.Hour
)

// APIOptions configure the logon API.
type APIOptions struct {
	Secret []byte // the HMAC-SHA256 key (identity.api_secret_file)
	// IsClient reports whether an address may be named (`clients`).
	IsClient func(netip.Addr) bool
	// Trusted reports whether a sender may name an address other than
	// its own (admin.allow: a server forwarding logon events).
	Trusted    func(netip.Addr) bool
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// apiRequest is the body of POST /api/identity.
type apiRequest struct {
	User   string `json:"user"`
	IP     string `json:"ip"`
	Action string `json:"action"`
	TS     *int64 `json:"ts"`
}

type api struct {
	t      *Table
	o      APIOptions
	result *prometheus.CounterVec
	mu     sync.Mutex
	seen   map[[sha256.Size]byte]time.Time // signatures used, for replays
}

// APIHandler returns the handler of POST /api/identity: a body signed
// with HMAC-SHA256 (SignatureHeader: "sha256=" and the lowercase hex of
// the MAC of the raw body) whose ts is within APISkew of now signs a user
// on at an address ("logon") or off ("logoff"). Anything else changes
// nothing: 401 for a missing or wrong signature, a ts too far off, or a
// body already used; 400 for a bad body; 403 for an address that is not
// a client's, or not the sender's own when the sender is not Trusted.
func (t *Table) APIHandler(o APIOptions) (http.Handler, error) {
	if len(o.Secret) == 0 {
		return nil, errors.New("the logon API needs a secret")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &api{t: t, o: o, seen: make(map[[sha256.Size]byte]time.Time),
		result: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "schoolgate_identity_api_requests_total",
			Help: "Logon API requests by result (ok, unauthorized, forbidden, bad_request).",
		}, []string{"result"})}
	for _, r := range []string{"ok", "unauthorized", "forbidden", "bad_request"} {
		a.result.WithLabelValues(r)
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(a.result); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (a *api) fail(w http.ResponseWriter, status int, result, msg string) {
	a.result.WithLabelValues(result).Inc()
	http.Error(w, msg, status)
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		a.fail(w, http.StatusMethodNotAllowed, "bad_request", "POST only")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, APIMaxBody))
	if err != nil {
		a.fail(w, http.StatusRequestEntityTooLarge, "bad_request", "body too large or unreadable")
		return
	}
	sig, ok := a.verify(r.Header.Get(SignatureHeader), body)
	if !ok {
		a.fail(w, http.StatusUnauthorized, "unauthorized", "missing or wrong "+SignatureHeader)
		return
	}
	// The body is authentic from here on: what it says can be trusted
	// to be what the script meant, and errors can be specific.
	var req apiRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		a.fail(w, http.StatusBadRequest, "bad_request", "reading the body: "+err.Error())
		return
	}
	now := a.o.Now()
	if req.TS == nil {
		a.fail(w, http.StatusBadRequest, "bad_request", "ts is missing")
		return
	}
	ts := time.Unix(*req.TS, 0)
	if d := now.Sub(ts); d > APISkew || d < -APISkew {
		a.fail(w, http.StatusUnauthorized, "unauthorized", "ts is more than 5 minutes from the gateway's clock")
		return
	}
	user := strings.TrimSpace(req.User)
	if msg := checkUser(user); msg != "" {
		a.fail(w, http.StatusBadRequest, "bad_request", msg)
		return
	}
	ip, err := netip.ParseAddr(strings.TrimSpace(req.IP))
	if err != nil {
		a.fail(w, http.StatusBadRequest, "bad_request", "ip is not an IP address")
		return
	}
	ip = canon(ip)
	if req.Action != "logon" && req.Action != "logoff" {
		a.fail(w, http.StatusBadRequest, "bad_request", `action must be "logon" or "logoff"`)
		return
	}
	if a.o.IsClient != nil && !a.o.IsClient(ip) {
		a.fail(w, http.StatusForbidden, "forbidden", "ip is not in clients")
		return
	}
	if from, err := netip.ParseAddrPort(r.RemoteAddr); err == nil && canon(from.Addr()) != ip &&
		(a.o.Trusted == nil || !a.o.Trusted(canon(from.Addr()))) {
		a.fail(w, http.StatusForbidden, "forbidden", "ip is not the sender's address (only admin.allow may name others)")
		return
	}
	if !a.firstUse(sig, now) {
		a.fail(w, http.StatusUnauthorized, "unauthorized", "this body was already used")
		return
	}
	switch req.Action {
	case "logon":
		since := now
		if e, ok := a.t.Lookup(ip, now); ok && e.User == user && e.Source == SourceAPI {
			since = e.Since
		}
		a.t.Set(ip, Entry{User: user, Source: SourceAPI, Since: since, Until: now.Add(APILogonTTL)})
	case "logoff":
		a.t.Remove(ip, user)
	}
	a.result.WithLabelValues("ok").Inc()
	w.WriteHeader(http.StatusNoContent)
}

// verify checks the signature header against body in constant time and
// returns the MAC.
func (a *api) verify(header string, body []byte) ([sha256.Size]byte, bool) {
	var got [sha256.Size]byte
	h, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(h) != hex.EncodedLen(sha256.Size) || strings.ToLower(h) != h {
		return got, false
	}
	if _, err := hex.Decode(got[:], []byte(h)); err != nil {
		return got, false
	}
	m := hmac.New(sha256.New, a.o.Secret)
	m.Write(body)
	return got, hmac.Equal(m.Sum(nil), got[:])
}

// firstUse records sig and reports whether it was new: a body captured
// on the network cannot be sent again while its ts is still accepted.
func (a *api) firstUse(sig [sha256.Size]byte, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, dup := a.seen[sig]; dup {
		return false
	}
	if len(a.seen) >= 1<<14 {
		for k, t := range a.seen {
			if now.Sub(t) > 2*APISkew {
				delete(a.seen, k)
			}
		}
	}
	if len(a.seen) >= 1<<14 {
		return false // a flood of signed bodies: refuse rather than grow
	}
	a.seen[sig] = now
	return true
}

// checkUser says what is wrong with a user name, "" when nothing.
func checkUser(u string) string {
	switch {
	case u == "":
		return "user is empty"
	case len(u) > 128:
		return "user is longer than 128 bytes"
	case strings.IndexFunc(u, unicode.IsControl) >= 0:
		return "user has a control character"
	}
	return ""
}
