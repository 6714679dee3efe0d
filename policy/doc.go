// Package policy decides: who (user → profile, else source network, else
// default_profile), what (host and URL → categories) and when (schedules in
// the config's timezone) → allow or block, with the rule and a reason.
//
// Snapshot.Decide is the one decision function of schoolgate, used by the
// proxy, the DNS filter and `schoolgate check`. It is pure: no I/O, no
// logging, no clock. Build (or Compile, given a database) turns a config
// into an immutable Snapshot; Engine holds the snapshot in force behind an
// atomic pointer, swaps it on reload, and puts a sharded verdict cache in
// front of Decide.
//
// The verdict cache is keyed on (snapshot generation, profile, the set of
// the profile's schedules open at the request time, host, and the path only
// when the database has URL entries under the host), so neither a reload nor
// a schedule boundary can serve a stale verdict. The not_a_client and
// deny_destinations checks run before the cache. Engine.DecideMemo also
// keeps the verdict in a caller's Memo (the DNS filter's cached answer)
// with its whole key and snapshot, and answers from it, as a cache hit,
// only for the same key in the same snapshot.
//
// Metrics (registered on the Registerer given to NewEngine):
//
//	schoolgate_policy_verdict_cache_hits_total    counter  decisions served from the cache
//	schoolgate_policy_verdict_cache_misses_total  counter  decisions computed and cached
//	schoolgate_policy_verdict_cache_entries       gauge    entries in the cache
//	schoolgate_policy_decisions_total{verdict}    counter  decisions by verdict (allow, block)
package policy
