// Package dnsfilter is schoolgate's filtering DNS resolver, built on
// miekg/dns, deciding with the policy engine and writing the access log.
//
// It listens on listen.dns over UDP (one SO_REUSEPORT socket per CPU on
// Linux) and TCP. On a specific IPv4 address each UDP socket has a read
// loop of its own (udp.go) instead of miekg's server: it reads batches
// with recvmmsg, runs the chain inline on plain queries parsed straight
// from the wire (no goroutine, no dns.Msg), and sends the batch's answers
// with one sendmmsg; a query that must wait (a cache miss, a SafeSearch
// lookup) continues from that stage on a worker goroutine (kept for the
// next one, so its stack need not grow each time), and anything else
// (EDNS options other than cookie or padding, odd names, garbage) gets
// miekg's handling. Wildcard binds use miekg's server. TCP has a loop of
// its own too (tcp.go): each query of a connection runs on its own
// goroutine, so pipelined queries are answered as they complete (RFC 7766
// §6.2.1.1), with connections closed after 10 s idle. Every
// query goes through one ordered chain of stages (see chain in chain.go):
//
//	parse → acl → ratelimit → sanity → identity → portal → canary → forward → policy → block
//	→ safesearch → any → resolve (cache, else upstreams + ECH rewrite)
//
// Decisions: DNS carries no credentials, so the user is the one the
// identity table holds for the source address (a proxy sign-in, RADIUS,
// the logon API), and their profile decides (policy.Snapshot.ProfileOf:
// the users file's, the source's, the network's, default_profile). The
// verdict is policy.Engine.Decide on the
// normalised question name, the same call the proxy makes; an answer
// whose CNAME chain leads to a blocked name is blocked too (CNAME
// cloaking), with the target's rule and categories in the log line.
//
// Answers:
//   - blocked names, for every query type: dns.blocked_answer nxdomain
//     (NXDOMAIN with an SOA, TTL 60, so clients cache it briefly) or null
//     (A 0.0.0.0, AAAA ::, NODATA with an SOA for other types), plus the
//     RFC 8914 Extended DNS Error 15 "Blocked" when the query had EDNS;
//   - use-application-dns.net: NXDOMAIN always (turns Firefox's DoH off);
//   - SafeSearch for profiles with safe_search: Google (every country
//     domain, bare and www), Bing, DuckDuckGo and YouTube's documented
//     names get a CNAME to the provider's enforcement name plus that
//     name's addresses; YouTube uses restrict.youtube.com (strict);
//   - ANY: a single HINFO "RFC8482" record (RFC 8482), from the name's A
//     lookup: a name that does not exist stays NXDOMAIN, an alias gets
//     its CNAME;
//   - errors carry an OPT record when the query had one (RFC 6891 §7);
//     EDNS version > 0 gets BADVERS, two OPTs or one off the root
//     FORMERR; CHAOS queries and AXFR/IXFR are REFUSED (rule
//     not_served), other meta-types FORMERR, never forwarded;
//   - HTTPS/SVCB answers lose their ech parameter (and "ech" in
//     mandatory), so browsers send a readable SNI to the proxy, and with
//     it the RRSIGs that covered the record and the AD bit.
//
// Upstreams (dns.upstreams) are tried in order: the first has 400 ms to
// answer alone, then the next is asked as well (and so on), while each
// one asked keeps waiting for its own answer for 2.5 s, so a slow answer
// (a far, uncached name) is used and counts against nobody; an error,
// SERVFAIL or REFUSED moves on at once, and SERVFAIL goes to the client
// only when every upstream has had its 2.5 s. TCP when the answer is
// truncated or bigger than the 1232 bytes we advertised; an answer that
// does not match the question is an error; an upstream silent for the
// whole 2.5 s is skipped for 15 s and then probed by one query. Query IDs
// are random; each query goes out on a connected UDP socket taken at
// random from at least 8 (RFC 5452: the source port is not predictable
// from one query to the next), each socket used for at most 16 queries
// one at a time and never after a failure, which saves most of the CPU
// of opening one per query. Concurrent misses for one name share one
// upstream query. Upstream answers are scrubbed of records outside the
// question's name and CNAME chain (RFC 5452 §6), AA cleared and RA set.
// Reload applies a new upstream list (purging the cache), cache size,
// blocked_answer and rate_limit; a bad DNS section keeps the old.
//
// The cache (cache.dns entries, 16 LRU shards) stores answers in wire
// form keyed by name, type, class, DO and CD, for the answer's TTL (at
// most 1 h; at least 10 s inside the cache, while clients still get the
// real remaining TTL, down to 0), negative answers for the SOA minimum
// (RFC 2308); a hit is a copy with the query's ID, flags and spelling of
// the name and decremented TTLs. The policy stage looks the answer up
// (resolve then uses what it found): a cached answer carries the last
// verdict on its name (policy.Memo), so a hit needs no verdict cache
// lookup when the snapshot, profile and open schedules are the same.
// Answers leave truncated to the client's UDP size (512 without EDNS; at
// most 1232, the DNS flag day 2020 size).
//
// The school's own zones (dns.forward: the AD domain, its reverse zones)
// go to the school's servers instead of the upstreams, the most specific
// zone first; they are never decided on (rule forward) and their answers
// are cached for their TTL exactly, without the 10 s floor. Servers in
// dns.trusted_forwarders (the school's DCs, forwarding to us) are exempt
// from the rate limit, and their EDNS Client Subnet option names the
// client: a /32 or /128 its address (policy, user, log, and a rate-limit
// bucket of its own), a shorter prefix its network (profile only); the
// answer echoes the option with the whole prefix as scope. ECS from
// anyone else is ignored.
//
// Abuse: only `clients` are answered; a stranger gets a header-only
// REFUSED (never bigger than its query) and a log line, at most once a
// second per address, the rest is dropped. Clients are held to
// dns.rate_limit queries a second (token bucket per address, burst of one
// second; 0 turns it off); over it, the first query of each second is
// REFUSED and logged (rule rate_limited), the rest dropped and only
// counted. Responses are ignored; unparseable packets are dropped or get
// FORMERR from miekg and are counted.
//
// Metrics (all schoolgate_dnsfilter_*):
//
//	queries_total{verdict,qtype,rcode}   queries answered (qtype and rcode from fixed sets, else "other")
//	upstream_duration_seconds{upstream}  successful upstream tries
//	upstream_errors_total{upstream,kind} kind: timeout, network, mismatch, rcode
//	cache_hits_total, cache_misses_total, cache_entries
//	safesearch_rewrites_total{provider}  google, bing, duckduckgo, youtube
//	rate_limited_total                   queries refused or dropped over dns.rate_limit
//	malformed_total                      packets that did not parse
//	request_duration_seconds             query in to answer out
package dnsfilter
