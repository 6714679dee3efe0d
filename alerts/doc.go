// Package alerts sends safeguarding alerts: blocked attempts on the
// categories named in the config's `alerts:` section (by default the
// report's incident categories) reach a person within seconds, through a
// webhook (a JSON POST that Slack, Teams and most ticket systems accept:
// a `text` line plus structured fields) and/or an append-only file of
// JSON lines (mode 0640).
//
// Batching, per user and device address: the first attempt opens a batch,
// which is sent once attempts pause for min(batch_seconds, 5 s) — a burst
// of retries makes one alert — or at the latest batch_seconds after the
// first attempt, so a pupil retrying without pause still gets reported.
// Attempts in the batch_seconds after an alert was sent are gathered into
// one follow-up alert ("a further N attempts"), sent when that window
// ends. batch_seconds defaults to 60.
//
// Observe is called from the access-log writer's goroutine (logging
// Options.OnEntry) and never blocks: attempts go through a bounded queue
// to one batcher goroutine, alerts through a bounded queue per sink to
// that sink's worker, which retries failures (network errors, HTTP 5xx,
// 408, 429) with exponential backoff from 1 s, six tries in all; other
// 4xx answers are not retried. Anything that does not fit a queue, or
// is given up, is counted and logged, never waited for.
//
// Metrics: schoolgate_alerts_sent_total{sink}, schoolgate_alerts_failures_total{sink}
// (each failed try), schoolgate_alerts_dropped_total.
package alerts
