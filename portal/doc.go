// Package portal is the sign-in page for devices that cannot do proxy
// sign-in: BYOD, guests, and traffic the gateway's firewall redirects
// (transparent mode), which carries no credentials.
//
// A client in portal.networks that the identity table does not name is
// sent here by the proxy (plain HTTP: a redirect; HTTPS: the block page
// with a sign-in link). The user name and password are checked exactly as
// a proxy sign-in is (the users file, then users.ldap, with the same
// limits on failed sign-ins: proxy.Proxy.Authenticate), and a success
// names the client's address in the identity table (source "portal")
// until portal.idle_minutes pass without traffic from it, or the end of
// the day. The forms carry a token bound to a cookie and are refused from
// another origin; the pages load nothing from elsewhere.
//
// The proxy answers requests for portal.hostname itself, by handing them
// to this package (ServeHTTP, ServeConn), so that the portal sees the
// client's own address and not the proxy's.
//
// Metrics:
//
//	schoolgate_portal_signins_total{result}  counter: sign-in attempts (ok, failed, limited, unavailable, refused)
//	schoolgate_portal_signouts_total         counter: sign-outs
package portal
