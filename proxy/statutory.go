package proxy

import (
	"strings"

	"github.com/schoolgate/schoolgate/policy"
)

// statutoryWording is the page a statutory list's block shows, in the form
// the list's publisher recommends: no category, no rule, no detail that
// would say more about the list than that this page is on it.
var statutoryWording = map[string]string{
	"iwf":   "Access has been denied by your internet access provider because this page may contain indecent images of children as identified by the Internet Watch Foundation.",
	"ctiru": "Access has been denied by your internet access provider because this page may contain unlawful terrorist content as identified by the Counter Terrorism Internet Referral Unit.",
}

// statutoryPage is the 403 page for a block by rule (statutory:NAME).
func statutoryPage(rule string) []byte {
	name := strings.TrimPrefix(rule, policy.RuleStatutoryPrefix)
	text, ok := statutoryWording[name]
	if !ok {
		text = "Access has been denied by your internet access provider because this page is on a list that the law requires it to block."
	}
	return []byte(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Access denied</title>
<style>body{margin:0;background:#fff;color:#1d2733;font:1.1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:40rem;margin:3rem auto;padding:0 1.5rem}h1{font-size:1.6rem}</style></head>
<body><main><h1>Access denied</h1><p>` + text + `</p></main></body></html>
`)
}
