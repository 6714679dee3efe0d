// Package lists keeps the lists a config downloads (lists[].url,
// lists[].ut1_url, statutory[].url) current: each is fetched on its own
// schedule (lists_refresh, with jitter and an optional time window),
// conditionally (ETag / Last-Modified), bounded in time and size, retried
// with backoff, and gated — a download that is not a list (an HTML error
// page, a truncated gzip, a file where under half the lines are entries),
// that shrank below 70% of the last good copy, or a UT1 archive whose MD5
// does not match is refused, and the last good copy keeps serving. The
// last good copy of each list lives in state_dir/lists, so a gateway that
// boots while the internet is down still filters.
//
// A refresh that changed a copy asks the caller to rebuild (serve builds
// a new snapshot off to the side and swaps it, as a reload does).
//
// Metrics: schoolgate_lists_entries{list},
// schoolgate_lists_last_success_timestamp_seconds{list},
// schoolgate_lists_refresh_failures_total{list,reason},
// schoolgate_lists_refresh_interval_seconds{list}.
package lists
