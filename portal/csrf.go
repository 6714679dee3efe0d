package portal

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
)

// The forms are safe from cross-site request forgery three ways: a
// random cookie (SameSite=Strict, HttpOnly) that only this portal sets,
// a token in the form that is the HMAC of that cookie under a key of this
// process (a page elsewhere can read neither), and a check that Origin
// (else Referer), when the browser sends one, is the portal itself.

const cookieName = "schoolgate_portal"

// tokenFor is the form token bound to the cookie value v.
func (s *Server) tokenFor(v string) string {
	m := hmac.New(sha256.New, s.secret[:])
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil))
}

// cookieValue is the client's portal cookie, when it is one we could
// have set (43 characters of unpadded base64url: 32 random bytes).
func cookieValue(r *http.Request) (string, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil || len(c.Value) != 43 {
		return "", false
	}
	if _, err := base64.RawURLEncoding.DecodeString(c.Value); err != nil {
		return "", false
	}
	return c.Value, true
}

// ensureToken returns the form token for the client's cookie, setting a
// new cookie when it has none.
func (s *Server) ensureToken(w http.ResponseWriter, r *http.Request) string {
	if v, ok := cookieValue(r); ok {
		return s.tokenFor(v)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "" // no form can be sent; crypto/rand does not fail on Linux
	}
	v := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: v, Path: "/", HttpOnly: true, Secure: s.useTLS,
		SameSite: http.SameSiteStrictMode})
	return s.tokenFor(v)
}

// sameOrigin reports whether origin (scheme://host[:port]) is the portal
// as r reached it.
func (s *Server) sameOrigin(origin string, r *http.Request, hostname string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return u.Scheme == scheme && strings.EqualFold(u.Host, r.Host) && strings.EqualFold(u.Hostname(), hostname)
}

// formAllowed checks a POST's origin and token; a refused form gets the
// sign-in page again (403, with a fresh token) and changes nothing.
func (s *Server) formAllowed(w http.ResponseWriter, r *http.Request, rq *request) bool {
	host := rq.snap.Config.Portal.Hostname
	ok := true
	if o := r.Header.Get("Origin"); o != "" {
		ok = s.sameOrigin(o, r, host)
	} else if ref := r.Header.Get("Referer"); ref != "" {
		ok = s.sameOrigin(ref, r, host)
	}
	if ok {
		v, have := cookieValue(r)
		ok = have && hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(s.tokenFor(v)))
	}
	if ok {
		return true
	}
	if r.URL.Path == "/signin" {
		s.m.signins(resultRefused)
	}
	rq.token = s.ensureToken(w, r)
	d := s.basePage(rq)
	s.fillSignedIn(&d, rq)
	d.Status = http.StatusForbidden
	d.Error = "This form had expired, or did not come from this page, so nothing was done. Try again on this page."
	writePage(w, d)
	return false
}
