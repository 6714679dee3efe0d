package portal

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"strconv"
)

// pageData is what a portal page shows. Everything from the client (the
// return address, the name typed) is escaped by html/template.
type pageData struct {
	Status       int
	Title        string
	Lead         string
	Error        string // why the last sign-in failed, shown above the form
	Notice       string // a quieter note (signed out)
	SignedIn     bool   // show who is signed in and the sign-out form
	User         string // signed in, or the name typed (refilled after a failure)
	Profile      string
	Until        string
	Return       string // the page first wanted (http or https only)
	Token        string // the form's CSRF token
	Device       string
	Organisation string
	Contact      string
}

// style is the pages' only styling, inline (no external resources) and
// allowed by its hash in the Content-Security-Policy. The house style of
// the block page.
const style = `html{font-size:106.25%}
body{margin:0;background:#eef1f5;color:#1d2733;font:1rem/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:32rem;margin:1.25rem auto;background:#fff;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08);overflow:hidden}
header{padding:1.1rem 1.5rem;color:#fff;background:#1f4e8c}
h1{margin:0;font-size:1.5rem;line-height:1.25}
header p{margin:.3rem 0 0;font-size:1.05rem;opacity:.95}
section{padding:.9rem 1.5rem}
label{display:block;font-weight:600;margin:.6rem 0 .2rem}
input[type=text],input[type=password]{box-sizing:border-box;width:100%;padding:.5rem;font:inherit;border:1px solid #a0aec0;border-radius:6px}
input:focus,button:focus{outline:3px solid #f6ad55;outline-offset:1px}
button{margin-top:1rem;padding:.55rem 1.2rem;font:inherit;font-weight:600;color:#fff;background:#1f4e8c;border:0;border-radius:6px;cursor:pointer}
.error{background:#fdecea;color:#8a1c13;border-left:4px solid #b3261e;padding:.6rem .8rem;margin:0 0 .5rem}
.notice{background:#f0f7ee;border-left:4px solid #2f7d32;padding:.6rem .8rem;margin:0 0 .5rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:0}
dt{font-weight:600;color:#4a5568}
dd{margin:0;overflow-wrap:anywhere}
a{color:#1f4e8c}
footer{padding:.6rem 1.5rem;font-size:.85rem;color:#718096;border-top:1px solid #e2e8f0}
@media (max-width:30rem){main{margin:0;border-radius:0}dl{grid-template-columns:1fr}}`

// csp allows the page nothing but its own style: no scripts, images,
// frames or other origins. form-action is left out on purpose: a
// successful sign-in is redirected to the page first wanted, on another
// origin, and browsers apply form-action to that redirect.
var csp = func() string {
	sum := sha256.Sum256([]byte(style))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; frame-ancestors 'none'; base-uri 'none'"
}()

var pageTmpl = template.Must(template.New("portal").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Title}}</title>
<style>` + style + `</style></head>
<body><main>
<header><h1>{{.Title}}</h1><p>{{.Lead}}</p></header>
<section>
{{if .Error}}<p class="error" role="alert" id="error">{{.Error}}</p>{{end}}
{{if .Notice}}<p class="notice" role="status" id="notice">{{.Notice}}</p>{{end}}
{{if .SignedIn}}<dl>
<dt>User</dt><dd id="user">{{.User}}</dd>
{{if .Profile}}<dt>Profile</dt><dd>{{.Profile}}</dd>{{end}}
{{if .Device}}<dt>Device</dt><dd>{{.Device}}</dd>{{end}}
{{if .Until}}<dt>Until</dt><dd>{{.Until}}</dd>{{end}}
</dl>
{{if .Return}}<p><a id="continue" href="{{.Return}}">Continue to {{.Return}}</a></p>{{end}}
<form method="post" action="/signout">
<input type="hidden" name="csrf" value="{{.Token}}">
<button type="submit" id="signout">Sign out</button>
</form>
<p>Sign out before you hand this device to someone else: until then, what it does is recorded under your name.</p>
{{else}}<form method="post" action="/signin">
<input type="hidden" name="csrf" value="{{.Token}}">
<input type="hidden" name="url" value="{{.Return}}">
<label for="user">User name</label>
<input type="text" id="user" name="user" value="{{.User}}" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit" id="signin">Sign in</button>
</form>
{{if .Return}}<p>You will go on to {{.Return}}</p>{{end}}{{end}}
{{if .Contact}}<p>Help: {{.Contact}}</p>{{end}}
</section>
<footer>{{if .Organisation}}{{.Organisation}} · {{end}}schoolgate web filter · HTTP {{.Status}}</footer>
</main></body></html>
`))

// setHeaders sets the headers every portal answer carries: never cached
// (it names who is signed in), never framed, never sniffed.
func setHeaders(h http.Header) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// Our own forms' posts carry a Referer (checked with Origin); the
	// page the user goes on to learns nothing of the portal.
	h.Set("Referrer-Policy", "same-origin")
}

// writePage renders d with status d.Status.
func writePage(w http.ResponseWriter, d pageData) {
	var b bytes.Buffer
	if err := pageTmpl.Execute(&b, d); err != nil {
		b.Reset()
		b.WriteString("<!DOCTYPE html><title>schoolgate</title><p>HTTP " + strconv.Itoa(d.Status) + "</p>")
	}
	h := w.Header()
	setHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(d.Status)
	w.Write(b.Bytes()) //nolint:errcheck // the client left
}
