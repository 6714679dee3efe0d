// Package proxy is schoolgate's explicit HTTP/HTTPS forward proxy, built on
// goproxy, deciding with the policy engine and writing the access log.
//
// Every request is handled in stages that fill one request struct, logged
// once when the request ends (one access-log line per request, CONNECT
// tunnels included, logged when the tunnel closes):
//
//  1. who: the client address; with users.require_auth, Proxy-Authorization
//     Basic checked against the users file (bcrypt once, then a cache keyed
//     by a keyed hash and valid only while the user's hash is unchanged;
//     wrong passwords remembered for a minute the same way); 407 otherwise.
//     A bcrypt runs in one of GOMAXPROCS slots and, per client address,
//     one at a time (others from that address wait up to 3 s, then 407),
//     so one machine flooding wrong passwords cannot hold back another's
//     first sign-in by more than about one bcrypt.
//  2. what and whether: policy.Engine.Decide on the host and, for plain
//     HTTP, the path and query — the only decision path. Non-clients get
//     not_a_client; a CONNECT to a port outside proxy.connect_ports gets
//     connect_ports.
//  3. forwarding: plain HTTP through goproxy with a verifying transport
//     (no proxy from the environment, Accept-Encoding kept, hop-by-hop and
//     Proxy-* headers removed, Via added); CONNECT here, relayed with
//     splice(2) between the two TCP connections, with idle deadlines and a
//     concurrency cap. The tunnel's first bytes are read for a TLS
//     ClientHello (reassembled when fragmented over handshake records): an
//     SNI naming another host that the policy blocks (domain fronting, or a
//     CONNECT to a bare address) cuts the tunnel; so does any other TLS
//     record before the ClientHello (rule tls_malformed: a server may skip
//     an alert and serve the name behind it) and, on Options.TLSPorts (443),
//     bytes that are not TLS at all (rule tls_required). Other connect_ports
//     may carry other protocols. A cut tunnel's log line has status 200 (the
//     client had its "200 Connection established"), verdict block, the
//     rule, and the SNI host when the SNI was the reason.
//  4. guards: the dialer refuses deny_destinations, the admin listener and
//     the proxy itself on the resolved address, so a name pointing at
//     127.0.0.1 or 169.254.169.254 is refused too; header size and
//     read-header, idle and upstream timeouts; a request body that brings
//     no byte for BodyIdleTimeout closes its connection (logged 499); caps
//     on client connections in all and per address (MaxConnsPerClient), a
//     connection past one answered 503 at once, counted, and logged at most
//     every 10 s. A bad port (0, 0443, 99999) or a host such as "-" is 400.
//
// Outcomes are typed (BlockedError, AuthError, UpstreamError,
// BadRequestError, OverloadError, HostMismatchError) and mapped to a status in statusOf; the
// client gets an HTML page (block page, 502/504 page) from blockpage.go.
//
// A CONNECT is relayed by the kernel (tunnel.go) or terminated and read as
// HTTP (terminate.go), each request inside decided and logged like plain
// HTTP. Terminated are: every CONNECT to port 80 (plain HTTP, whatever
// connect_ports says: browsers tunnel ws:// so, and a blind tunnel would
// reach any Host); with proxy.intercept, CONNECTs to the hosts (or
// categories) it names (policy.Snapshot.Intercepts, which `schoolgate
// check` asks too), with TLS and a certificate minted from the school's CA
// (intercept.go), HTTP/2 or HTTP/1.1 to the browser and HTTP/2 to upstreams
// that offer it; and, when that CA is loaded, any other blocked CONNECT, only
// to answer each request with the block page (a browser never shows a
// CONNECT's answer). A relayed tunnel on a port that need not be TLS whose
// first line is an HTTP request is detached and read as port 80's is. An intercepted or port-80 CONNECT is logged as allowed
// with rule "intercept" (the tunnel is not a visit; the report leaves it
// out of the sites), the requests inside with their own rules; a
// block-page tunnel is one line, the CONNECT's, blocked with status 403 and
// the URL of the first page shown. Non-clients, deny_destinations and connect_ports
// are still refused at the CONNECT; without a CA a blocked CONNECT gets 403.
//
// Host, SNI and CONNECT authority agree, or the request is refused: inside
// a terminated tunnel each request's Host (absolute-form authority, HTTP/2
// :authority) must be the tunnel's host and port, else 421 with rule
// host_mismatch, and the upstream gets exactly the authority decided on; an
// intercepted tunnel's ClientHello must name the CONNECT host, and so must a
// relayed one's, unless the CONNECT names an IP address (then the
// ClientHello's name is decided on, and refused if intercepted). Plain
// HTTP is decided on the absolute URL, whose host net/http puts in r.Host.
//
// SafeSearch (safesearch.go): when the decision carries an engine's lock
// (policy.Decision.SafeSearch: a profile with safe_search, a Google, Bing,
// DuckDuckGo or YouTube host), a CONNECT is dialled to the engine's
// SafeSearch name instead of the host, and a readable request (plain HTTP,
// or inside a terminated tunnel) goes through a transport that dials that
// name (pooled apart from the ordinary one) with the engine's parameter or
// header put on after the client's are removed. The log line says
// "safe_search":true.
//
// What a ClientHello hides is decided too (hello.go): a relayed tunnel to an
// IP address whose hello names no server resolving to it is decided with
// the pseudo-category ip-literal, a hello whose ECH extension can hide the
// name with ech (policy.Hidden; a browser's GREASE ECH naming the host is
// not); an intercepted tunnel to an address without SNI decides each
// request inside as ip-literal. A tunnel to an address whose hello names a
// SafeSearch engine is cut (rule safe_search). Paths are decided on every
// reading an origin may serve (policy: %2F decoded as well as kept), and
// the log's url shows the reading decided on.
//
// A logged or shown URL never carries credentials (http://user:pw@host/:
// dropped, and not forwarded either) nor the scheme's default port.
//
// Content classification (classify.go, package categories/classify): for
// an allowed request whose host no list names, the response to a GET, if
// it is HTML, has its first 64 KiB sniffed (gzip and deflate decoded; br and
// zstd are not asked for) and scored. With clear evidence
// (classify.ClearEvidence: the profile's content_threshold plus a margin)
// in a category it blocks, the block page replaces it (rule
// classifier:CATEGORY=SCORE); between the threshold and clear evidence the
// page is allowed and logged as a near miss (classified "unsure:…");
// otherwise the sniffed prefix is replayed and the rest streamed untouched.
// A page with clear evidence is remembered (bounded, content.remember_hours,
// journal in the log folder) in the policy engine as that page only, and
// never when it was asked for with a query or its category is in the
// request's own input (path, Referer, cookies): a page may echo its
// visitor. A host is remembered as a whole only when pages of several
// visitors agree (classify.HostPages, classify.HostVisitors); its later
// requests and DNS queries are then blocked without rescoring, with the
// rule classifier-memory:NOTE, which the report and the alerts never
// count as the person's incident. Once a host's first pages scored clean, one
// page in 32 is scored: scoring a page costs about twice what proxying it
// does (most of it in the x/net/html tokenizer).
// (Host names are read by the policy, with content.host_names, so the
// proxy, the DNS filter and `check` agree on them.)
//
// Transparent gateway mode (transparent.go) serves what the gateway's
// firewall redirects (ServeTransparentHTTP, ServeTransparentHTTPS): the
// original destination from SO_ORIGINAL_DST, HTTP through servePlain,
// HTTPS decided on the ClientHello and relayed like a CONNECT; the
// destination must be an address of the name decided on (host_mismatch).
//
// # Metrics
//
//	schoolgate_proxy_requests_total{verdict,profile}        requests and CONNECTs
//	schoolgate_proxy_requests_by_category_total{category}   once per category of the host
//	schoolgate_proxy_blocked_by_category_total{category}    blocked, once per category
//	schoolgate_proxy_request_duration_seconds               histogram (tunnels: their life)
//	schoolgate_proxy_active_connections                     client connections open
//	schoolgate_proxy_active_tunnels                         CONNECT tunnels open
//	schoolgate_proxy_relayed_bytes_total{direction}         tunnel bytes, upstream/downstream
//	schoolgate_proxy_auth_failures_total                    407s
//	schoolgate_proxy_upstream_errors_total{kind}            refused, dns, timeout, tls, denied, reset, other
//	schoolgate_proxy_overload_refusals_total                CONNECTs refused at the tunnel cap
//	schoolgate_proxy_connections_refused_total{reason}      connections answered 503: max_connections, per_client, non_client
//	schoolgate_proxy_safesearch_total{engine}               sent to an engine's SafeSearch servers: google, bing, duckduckgo, youtube
//	schoolgate_proxy_classified_pages_total{result}         HTML pages of unlisted hosts: clean, unsure, blocked, classified, unscorable, sampled_out
//	schoolgate_proxy_classified_pages_not_remembered_total  pages with clear evidence not remembered: a query, or the category in the request's input
//	schoolgate_proxy_classify_seconds                       histogram: sniffing and scoring a page
//	schoolgate_transparent_connections_total{verdict}       redirected HTTPS connections and HTTP requests (transparent.go)
//	schoolgate_transparent_host_mismatch_total              redirected, refused: the destination is not the name's
//	schoolgate_transparent_no_sni_total                     redirected HTTPS without SNI (ip-literal)
//
// Verdict-cache hits and misses are the policy package's metrics.
package proxy
