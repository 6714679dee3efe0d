// Package identity is the one table of who is signed in where: client
// address → user, the profile a source named (if any), where the name
// came from (proxy-auth, portal, radius, api) and until when.
//
// The proxy writes proxy sign-ins into it and reads it for requests that
// carry no credentials; the DNS filter reads it so that one person's DNS
// lines carry the same user and are decided with the same profile as
// their web lines. RADIUS accounting (radius.go), the logon API (api.go)
// and the sign-in page (package portal) write it for devices that never
// sign in to the proxy. Traffic renews an entry of a source with an idle
// time (SetIdle: the portal's) through Touch, which the proxy and the DNS
// filter call instead of Lookup.
//
// The table is bounded (Options.Max) and kept in state_dir/identity.json,
// written atomically shortly after it changes, and loaded at start, so a
// restart keeps who is signed in and `schoolgate check -ip` can read it.
//
// Metrics:
//
//	schoolgate_identity_entries{source}            gauge: live entries by source
//	schoolgate_identity_radius_packets_total{result} counter: accounting packets (ok, bad_authenticator, stranger, malformed, ignored)
//	schoolgate_identity_api_requests_total{result}   counter: logon API requests (ok, unauthorized, bad_request)
package identity
