package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
)

// Outcomes other than "forwarded" are typed errors; statusOf maps each to
// the HTTP status sent to the client, in this one place.

// BlockedError is a request the policy (or a guard with a named system
// rule: not_a_client, deny_destinations, connect_ports) refused.
type BlockedError struct {
	Rule   string
	Reason string
}

func (e *BlockedError) Error() string { return "blocked by " + e.Rule + ": " + e.Reason }

// AuthError is a request without valid proxy credentials.
type AuthError struct {
	Reason string // "no credentials", "wrong password", "unknown user", "malformed credentials"
}

func (e *AuthError) Error() string { return "proxy authentication: " + e.Reason }

// UpstreamError is a failure to reach or hear from the upstream server.
type UpstreamError struct {
	Kind string // one of the upstream kinds (refused, dns, timeout, ...)
	Err  error
}

func (e *UpstreamError) Error() string { return "upstream " + e.Kind + ": " + e.Err.Error() }
func (e *UpstreamError) Unwrap() error { return e.Err }

// BadRequestError is a request the proxy cannot make sense of.
type BadRequestError struct{ Msg string }

func (e *BadRequestError) Error() string { return "bad request: " + e.Msg }

// HostMismatchError is a request inside a tunnel the proxy terminated
// whose Host (or absolute-form authority, or HTTP/2 :authority) names
// another host than the tunnel's: domain fronting, refused with 421
// Misdirected Request (RFC 9110 §15.5.20).
type HostMismatchError struct {
	Tunnel string // the tunnel's authority
	Asked  string // what the request named
}

func (e *HostMismatchError) Error() string {
	return "host mismatch: the request names " + e.Asked + " inside a tunnel to " + e.Tunnel
}

// OverloadError is a request refused because a concurrency limit is reached.
type OverloadError struct{ What string }

func (e *OverloadError) Error() string { return "overloaded: " + e.What }

// clientGoneError is a request whose client went away before the answer.
var errClientGone = errors.New("client went away")

// statusClientGone is logged (never sent) for a client that left first,
// as nginx and squid do.
const statusClientGone = 499

// outcomeOf maps an outcome to the HTTP status sent to the client and,
// for a refusal, the rule logged: the one ladder over the outcome types.
func outcomeOf(err error) (status int, rule string) {
	var (
		be *BlockedError
		ae *AuthError
		ue *UpstreamError
		br *BadRequestError
		oe *OverloadError
		hm *HostMismatchError
		si *SignInError
	)
	switch {
	case err == nil:
		return 200, ""
	case errors.As(err, &hm):
		return http.StatusMisdirectedRequest, ruleHostMismatch
	case errors.As(err, &be):
		return 403, be.Rule
	case errors.As(err, &ae):
		return 407, ruleProxyAuth
	case errors.As(err, &si):
		if si.Tunnel {
			return 403, rulePortalRequired
		}
		return http.StatusSeeOther, rulePortalRequired
	case errors.As(err, &ue):
		if ue.Kind == kindTimeout {
			return 504, ""
		}
		return 502, ""
	case errors.As(err, &br):
		return 400, ruleBadRequest
	case errors.As(err, &oe):
		return 503, ruleOverload
	case errors.Is(err, errClientGone):
		return statusClientGone, ""
	default:
		return 500, ""
	}
}

// statusOf is the HTTP status of an outcome.
func statusOf(err error) int {
	status, _ := outcomeOf(err)
	return status
}

// Rules of the proxy's own refusals.
const (
	ruleProxyAuth  = "proxy_auth"
	ruleBadRequest = "bad_request"
	ruleOverload   = "overload"
)

// deniedDestError is returned by the dialer's guard for an address the
// proxy must never connect to.
type deniedDestError struct{ addr netip.AddrPort }

func (e *deniedDestError) Error() string {
	return fmt.Sprintf("destination %s is not allowed", e.addr)
}

// upstreamOutcome turns a transport or dial error into an outcome.
func upstreamOutcome(ctx context.Context, err error) error {
	var (
		dd   *deniedDestError
		dns  *net.DNSError
		cert *tls.CertificateVerificationError
		ua   x509.UnknownAuthorityError
		hn   x509.HostnameError
		ci   x509.CertificateInvalidError
		ne   net.Error
	)
	switch {
	case errors.As(err, &dd):
		return &BlockedError{Rule: "deny_destinations", Reason: "the destination address is on the proxy's deny list"}
	case ctx != nil && ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		return errClientGone
	case errors.As(err, &dns):
		if dns.IsTimeout {
			return &UpstreamError{Kind: kindTimeout, Err: err}
		}
		return &UpstreamError{Kind: kindDNS, Err: err}
	case errors.As(err, &cert), errors.As(err, &ua), errors.As(err, &hn), errors.As(err, &ci):
		return &UpstreamError{Kind: kindTLS, Err: err}
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return &UpstreamError{Kind: kindRefused, Err: err}
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return &UpstreamError{Kind: kindTimeout, Err: err}
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return &UpstreamError{Kind: kindReset, Err: err}
	default:
		return &UpstreamError{Kind: kindOther, Err: err}
	}
}
