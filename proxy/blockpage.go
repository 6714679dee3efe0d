package proxy

import (
	"bytes"
	"errors"
	"html/template"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/policy"
)

// pageData is what a block or error page shows. Host, URL and User come
// from the client and are escaped by html/template.
type pageData struct {
	Status       int
	Title        string
	Lead         string
	Todo         []string // what the reader can do, first thing on the page
	Host         string
	URL          string
	Categories   string
	Rule         string // the short id, for the technician (student#2)
	RuleWords    string // the same for a pupil (rule 2 of the student profile)
	Reason       string
	User         string
	Device       string // the client's address
	Profile      string
	Time         string
	Organisation string
	Contact      string // block_page.contact as written, shown as "Contact: ..."
	Blocked      bool
	SignIn       string // the portal's sign-in page, linked first (portal_required)
}

const defaultContact = "your teacher or the school's IT staff"

// The page puts what to do first, under the title, so that it shows
// without scrolling on a small laptop screen (1366×768); the details a
// technician needs follow.
var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Title}}</title>
<style>
html{font-size:106.25%}
body{margin:0;background:#eef1f5;color:#1d2733;font:1rem/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:42rem;margin:1.25rem auto;background:#fff;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08);overflow:hidden}
header{padding:1.1rem 1.5rem;color:#fff;background:{{if .Blocked}}#b3261e{{else}}#7a5b00{{end}}}
h1{margin:0;font-size:1.5rem;line-height:1.25}
header p{margin:.3rem 0 0;font-size:1.05rem;opacity:.95}
section{padding:.9rem 1.5rem}
.todo{background:#f8fafc;border-bottom:1px solid #e2e8f0}
.todo h2{font-size:1.1rem;margin:0 0 .3rem}
.todo p{margin:.25rem 0}
.contact{font-weight:600}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:0}
dt{font-weight:600;color:#4a5568}
dd{margin:0;overflow-wrap:anywhere}
.id{color:#718096;font-size:.9em}
footer{padding:.6rem 1.5rem;font-size:.85rem;color:#718096;border-top:1px solid #e2e8f0}
@media (max-width:30rem){main{margin:0;border-radius:0}dl{grid-template-columns:1fr}dt{margin-top:.4rem}}
@media (min-width:100rem) and (min-height:60rem){html{font-size:125%}}
</style></head>
<body><main>
<header><h1>{{.Title}}</h1><p>{{.Lead}}</p></header>
<section class="todo"><h2>What you can do</h2>
{{if .SignIn}}<p><a id="signin" href="{{.SignIn}}">Sign in</a> with your school user name and password, then come back to this page.</p>
{{end}}{{range .Todo}}<p>{{.}}</p>
{{end}}{{if .Contact}}<p class="contact">Contact: {{.Contact}}</p>{{end}}</section>
<section><dl>
{{if .Host}}<dt>Site</dt><dd>{{.Host}}</dd>{{end}}
{{if .URL}}<dt>Address</dt><dd>{{.URL}}</dd>{{end}}
{{if .Blocked}}<dt>Category</dt><dd>{{.Categories}}</dd>
<dt>Rule</dt><dd>{{.RuleWords}}{{if ne .RuleWords .Rule}} <span class="id">({{.Rule}})</span>{{end}}</dd>{{end}}
{{if .Reason}}<dt>Reason</dt><dd>{{.Reason}}</dd>{{end}}
<dt>User</dt><dd>{{if .User}}{{.User}}{{else}}not signed in{{end}}</dd>
{{if .Device}}<dt>Device</dt><dd>{{.Device}}</dd>{{end}}
{{if .Profile}}<dt>Profile</dt><dd>{{.Profile}}</dd>{{end}}
<dt>Time</dt><dd>{{.Time}}</dd>
</dl></section>
<footer>{{if .Organisation}}{{.Organisation}} · {{end}}schoolgate web filter · HTTP {{.Status}}</footer>
</main></body></html>
`))

// ruleWords says which rule decided in words a pupil reads; the short id
// stays beside it for the technician.
func ruleWords(rule string) string {
	if profile, n, ok := strings.Cut(rule, "#"); ok && profile != "" {
		if n == "default" {
			return "the default of the " + profile + " profile (no rule matched)"
		}
		if _, err := strconv.Atoi(n); err == nil {
			return "rule " + n + " of the " + profile + " profile"
		}
	}
	if c, ok := strings.CutPrefix(rule, "classifier:"); ok {
		c, _, _ = strings.Cut(c, "=")
		return "the page's content, which reads as " + c
	}
	switch rule {
	case policy.RuleNotAClient:
		return "this device is not one the filter serves"
	case policy.RuleDenyDestinations:
		return "an address no one may reach through the filter"
	case "connect_ports":
		return "a port the school does not open"
	case ruleHostMismatch:
		return "a request for another site than its connection was opened for"
	case rulePortalRequired:
		return "this network needs a sign-in first"
	}
	return rule
}

func deviceOf(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	return ip.Unmap().String()
}

var pageBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// pageFor fills the page for the outcome err of request st.
func pageFor(st *request, err error, bp config.BlockPage, loc *time.Location) pageData {
	d := basePage(st, err, bp, loc)
	review, tell := askWords(d.Contact)
	var (
		be *BlockedError
		ae *AuthError
		ue *UpstreamError
		br *BadRequestError
		hm *HostMismatchError
		si *SignInError
	)
	switch {
	case errors.As(err, &hm):
		d.hostMismatch(st, hm, tell)
	case errors.As(err, &be):
		d.blocked(st, be, review)
	case errors.As(err, &ue):
		d.upstream(ue, tell)
	case errors.As(err, &si):
		d.signIn(st, si, tell)
	case errors.As(err, &ae):
		d.Title = "Sign-in needed"
		d.Lead, d.Todo = signInHelp(ae.Reason, tell)
	case errors.As(err, &br):
		d.Title = "Bad request"
		d.Lead = "The web filter could not understand this request."
		d.Reason = br.Msg
		d.Todo = []string{"Check the address, then try again. If this keeps happening, " + tell + ", with the time shown below."}
	default:
		d.Title = "The web filter is busy"
		d.Lead = "Too many requests are being handled at once."
		d.Todo = []string{"Please try again in a moment: reload the page (F5)."}
	}
	return d
}

// basePage fills what every page shows: the request's details, the
// school's name and contact, and the time in loc (time.Local if nil).
func basePage(st *request, err error, bp config.BlockPage, loc *time.Location) pageData {
	d := pageData{
		Status:       statusOf(err),
		Host:         st.host,
		URL:          st.url,
		User:         st.user,
		Profile:      st.profile,
		Device:       deviceOf(st.ip),
		Organisation: bp.Organisation,
		Contact:      strings.TrimSpace(bp.Contact),
	}
	if _, ok := err.(*AuthError); ok {
		d.User = "" // the name tried is logged, but nobody is signed in
	}
	if loc == nil {
		loc = time.Local
	}
	d.Time = st.start.In(loc).Format("Monday 2 January 2006, 15:04:05 MST")
	return d
}

// askWords says whom to ask for a review and whom to tell of a fault.
// The contact text is shown as written ("Contact: ..."); without one the
// page names who to ask in a sentence.
func askWords(contact string) (review, tell string) {
	if contact != "" {
		return "ask for it to be reviewed", "tell the contact below"
	}
	return "ask " + defaultContact + " to review it", "tell " + defaultContact
}

// refusedBy makes the page a refusal by rule of st's host: its
// categories and the rule, in words for a pupil too.
func (d *pageData) refusedBy(st *request, rule string) {
	d.Blocked = true
	d.Categories = st.cats.String()
	d.Rule = rule
	d.RuleWords = ruleWords(rule)
}

func (d *pageData) hostMismatch(st *request, hm *HostMismatchError, tell string) {
	d.refusedBy(st, ruleHostMismatch)
	d.Title = "This request was refused"
	d.Lead = "The request named another site than the secure connection it came through."
	d.Reason = "the connection was opened for " + hm.Tunnel + " but the request asked for " + hm.Asked
	d.Todo = []string{
		"Open the site by its own address instead.",
		"If this keeps happening, " + tell + ", with the site and the time shown below.",
	}
}

func (d *pageData) blocked(st *request, be *BlockedError, review string) {
	d.refusedBy(st, be.Rule)
	d.Title = "This page is blocked"
	d.Lead = "The school's web filter stopped this request."
	d.Reason = be.Reason
	d.Todo = []string{
		"If you need this page for your work, " + review + ".",
		"Give them the site, the time and the rule shown below.",
	}
}

func (d *pageData) upstream(ue *UpstreamError, tell string) {
	if ue.Kind == kindTimeout {
		d.Title = "The site took too long to answer"
		d.Lead = "The web filter waited for the site, but it did not reply in time."
	} else {
		d.Title = "The site could not be reached"
		d.Lead = "The web filter could not connect to the site. It may be down, or its name may be wrong."
	}
	d.Reason = upstreamReason(ue.Kind)
	d.Todo = []string{
		"Try again in a moment: reload the page (F5).",
		"If this keeps happening, " + tell + ", with the site and the time shown below.",
	}
}

// signIn fills the page of a request from an address that must sign in
// at the portal first: a link to it.
func (d *pageData) signIn(st *request, si *SignInError, tell string) {
	d.refusedBy(st, rulePortalRequired)
	d.Title = "Sign in to use the web"
	d.Lead = "This network needs your school user name and password before you can use the web."
	d.SignIn = si.URL
	d.Todo = []string{"If you cannot sign in, " + tell + "."}
}

// signInHelp says what went wrong with a sign-in and how to try again. A
// wrong password and an unknown user read the same: the page must not
// tell a stranger which user names exist.
func signInHelp(reason, tell string) (lead string, todo []string) {
	again := "Reload this page (F5) and, when your browser asks, type your school user name and password. " +
		"If it does not ask again, close every window of the browser, open it again and go back to the page."
	switch reason {
	case "no credentials":
		return "The web filter needs your school user name and password before you can use the web.",
			[]string{again}
	case "wrong password", "unknown user", "malformed credentials":
		return "The user name or password was not right, so you are not signed in.",
			[]string{"Check the user name, and that Caps Lock is off. " + again,
				"Forgotten your password? " + strings.ToUpper(tell[:1]) + tell[1:] + "."}
	case reasonDirectoryDown:
		return "The school's user directory cannot be reached, so the web filter cannot check your password.",
			[]string{"Wait a few minutes, then reload this page (F5).",
				"If this keeps happening, " + tell + ", with the time shown below."}
	case "another sign-in from this address is being checked":
		return "Another sign-in from this computer is being checked.",
			[]string{"Wait a few seconds, then reload this page (F5)."}
	default:
		return "Your account cannot sign in at the moment.",
			[]string{strings.ToUpper(tell[:1]) + tell[1:] + ", with the time shown below."}
	}
}

func upstreamReason(kind string) string {
	switch kind {
	case kindRefused:
		return "the site refused the connection"
	case kindDNS:
		return "the site's name could not be found"
	case kindTimeout:
		return "the site did not answer in time"
	case kindTLS:
		return "the site's security certificate is not valid"
	case kindReset:
		return "the site closed the connection"
	default:
		return "the connection to the site failed"
	}
}

// renderPage returns the page as bytes (a copy owned by the caller).
func renderPage(d pageData) []byte {
	b := pageBufs.Get().(*bytes.Buffer)
	b.Reset()
	if err := pageTmpl.Execute(b, d); err != nil {
		// The template is fixed and its data plain strings: this cannot
		// happen, but a client must still get a page.
		b.Reset()
		b.WriteString("<!DOCTYPE html><title>schoolgate</title><p>HTTP " + strconv.Itoa(d.Status) + "</p>")
	}
	out := bytes.Clone(b.Bytes())
	pageBufs.Put(b)
	return out
}
