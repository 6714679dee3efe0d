package proxy

import (
	"bytes"
	"errors"
	"html/template"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/schoolgate/schoolgate/config"
)

// pageData is what a block or error page shows. Host, URL and User come
// from the client and are escaped by html/template.
type pageData struct {
	Status       int
	Title        string
	Lead         string
	Host         string
	URL          string
	Categories   string
	Rule         string
	Reason       string
	User         string
	Device       string // the client's address
	Profile      string
	Time         string
	Organisation string
	Contact      string
	Blocked      bool
}

const defaultContact = "your teacher or the school's IT staff"

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Title}}</title>
<style>
html{font-size:112.5%}
body{margin:0;background:#eef1f5;color:#1d2733;font:1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:40rem;margin:2rem auto;background:#fff;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08);overflow:hidden}
header{padding:1.5rem 1.75rem;color:#fff;background:{{if .Blocked}}#b3261e{{else}}#7a5b00{{end}}}
h1{margin:0;font-size:1.6rem;line-height:1.25}
header p{margin:.4rem 0 0;font-size:1.05rem;opacity:.95}
section{padding:1.25rem 1.75rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.45rem 1rem;margin:0}
dt{font-weight:600;color:#4a5568}
dd{margin:0;overflow-wrap:anywhere}
.help{border-top:1px solid #e2e8f0;background:#f8fafc}
.help h2{font-size:1.1rem;margin:0 0 .35rem}
.help p{margin:.2rem 0}
footer{padding:.75rem 1.75rem;font-size:.85rem;color:#718096;border-top:1px solid #e2e8f0}
@media (max-width:30rem){main{margin:0;border-radius:0}dl{grid-template-columns:1fr}dt{margin-top:.4rem}}
@media (min-width:80rem){html{font-size:137.5%}}
</style></head>
<body><main>
<header><h1>{{.Title}}</h1><p>{{.Lead}}</p></header>
<section><dl>
{{if .Host}}<dt>Site</dt><dd>{{.Host}}</dd>{{end}}
{{if .URL}}<dt>Address</dt><dd>{{.URL}}</dd>{{end}}
{{if .Blocked}}<dt>Category</dt><dd>{{.Categories}}</dd>
<dt>Rule</dt><dd>{{.Rule}}</dd>{{end}}
{{if .Reason}}<dt>Reason</dt><dd>{{.Reason}}</dd>{{end}}
<dt>User</dt><dd>{{if .User}}{{.User}}{{else}}not signed in{{end}}</dd>
{{if .Device}}<dt>Device</dt><dd>{{.Device}}</dd>{{end}}
{{if .Profile}}<dt>Profile</dt><dd>{{.Profile}}</dd>{{end}}
<dt>Time</dt><dd>{{.Time}}</dd>
</dl></section>
<section class="help"><h2>{{if .Blocked}}Think this is a mistake?{{else}}Need help?{{end}}</h2>
<p>{{if .Blocked}}If you need this page for your work, ask {{.Contact}} to review it.{{else}}If this keeps happening, tell {{.Contact}}.{{end}}
Please give them the site, the time and the rule shown above.</p></section>
<footer>{{if .Organisation}}{{.Organisation}} · {{end}}schoolgate web filter · HTTP {{.Status}}</footer>
</main></body></html>
`))

func deviceOf(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	return ip.Unmap().String()
}

var pageBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// pageFor fills the page for the outcome err of request st.
func pageFor(st *request, err error, bp config.BlockPage, loc *time.Location) pageData {
	d := pageData{
		Status:       statusOf(err),
		Host:         st.host,
		URL:          st.url,
		User:         st.user,
		Profile:      st.profile,
		Device:       deviceOf(st.ip),
		Organisation: bp.Organisation,
		Contact:      bp.Contact,
	}
	if d.Contact == "" {
		d.Contact = defaultContact
	}
	if loc == nil {
		loc = time.Local
	}
	d.Time = st.start.In(loc).Format("Monday 2 January 2006, 15:04:05 MST")
	var (
		be *BlockedError
		ue *UpstreamError
		br *BadRequestError
	)
	switch {
	case errors.As(err, &be):
		d.Blocked = true
		d.Title = "This page is blocked"
		d.Lead = "The school's web filter stopped this request."
		d.Categories = st.cats.String()
		d.Rule = be.Rule
		d.Reason = be.Reason
	case errors.As(err, &ue):
		if ue.Kind == kindTimeout {
			d.Title = "The site took too long to answer"
			d.Lead = "The web filter waited for the site, but it did not reply in time. Try again in a moment."
		} else {
			d.Title = "The site could not be reached"
			d.Lead = "The web filter could not connect to the site. It may be down, or its name may be wrong."
		}
		d.Reason = upstreamReason(ue.Kind)
	case d.Status == 407:
		d.Title = "Sign-in needed"
		d.Lead = "The web filter needs your school user name and password."
	case errors.As(err, &br):
		d.Title = "Bad request"
		d.Lead = "The web filter could not understand this request."
		d.Reason = br.Msg
	default:
		d.Title = "The web filter is busy"
		d.Lead = "Please try again in a moment."
	}
	return d
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
