// Package logging writes the access log: one JSON line per proxied request,
// refused CONNECT and DNS query, a file per local day, each line chained to
// the one before by a SHA-256 hash so that `schoolgate logs verify` detects a
// removed, reordered or edited line.
//
// # Files
//
// LOGDIR/access-YYYY-MM-DD.jsonl, named by the local date (Options.Location)
// of each entry's time: every entry goes to its own day's file, so the file
// switches at local midnight. Files are created 0640 in a 0750 directory.
// Beside each file, access-YYYY-MM-DD.jsonl.tip holds {"seq":N,"hash":"…"} of
// the last line the writer has synced to disk. Retention deletes the files
// whose date is more than RetentionDays days before today (and their
// sidecars) at Open and once a day; nothing else in the directory is touched.
// FileName, PathFor and ParseFileName give the names to other packages.
//
// # Line format (docs/contract.md §4)
//
//	{"ts":"2026-11-23T09:15:02.123Z","src":"proxy","user":"alice","ip":"10.10.1.7",
//	 "profile":"student","method":"GET","host":"www.bet365.com","url":"http://www.bet365.com/",
//	 "categories":["gambling"],"verdict":"block","rule":"student#2","status":403,
//	 "bytes":2345,"ms":0.42,"seq":17,"hash":"<64 hex digits>"}
//
// in that order, on one line. ts is UTC with milliseconds; categories is
// sorted, [] when none; status is the HTTP status as a number for src proxy
// and the DNS rcode name as a string for src dns; ms has at most 3 decimals.
// An optional "classified" string (the content classifier's note) comes
// after ms when set, then an optional "safe_search":true when an engine's
// SafeSearch lock was applied, then an optional "mode":"transparent" for
// traffic the gateway's firewall redirected; seq and hash are always last.
// The line is the bytes zap's JSON encoder writes for these typed fields (no
// level, caller, message or stack), written by a purpose-built appender
// (encode.go, tested against zap) because zap's generic field handling was
// most of a DNS cache hit's logging cost. Quotes, control characters and
// invalid UTF-8 in attacker-chosen fields (host, url, user) are escaped, so
// a field can never break a line.
//
// # The chain
//
// Let P be a line's text up to `,"hash":` — that is `{"ts":…,"seq":N`.
// Its hash is the lowercase hex SHA-256 of the previous line's hash (its 64
// hex digits; empty for line 1), a newline, and P. seq is the 1-based line
// number. Both restart in every file. Verification works on the raw bytes,
// never on re-encoded JSON.
//
// # What Verify proves, and what it cannot
//
// Verify reads the file line by line and reports the first line that is not
// valid JSON, lacks a trailing newline (a cut file), has the wrong seq (a
// line removed, inserted or moved) or the wrong hash (a line edited, or one
// before it removed or reordered). With the .tip sidecar present it also
// catches lines removed from the end, which the chain alone cannot see, and
// a rewrite that did not also rewrite the sidecar.
//
// The chain has no secret key: it proves the file is what the writer wrote
// against accidents and against edits made with a text editor or a script
// that does not know the scheme. Someone with write access to the log
// directory who knows the scheme can rewrite a file from the edited line on,
// recompute every hash and rewrite the sidecar. To make that detectable,
// keep the last hash somewhere they cannot reach: `schoolgate logs verify`
// prints it, and a nightly copy of it (an e-mail, a ticket, a print-out) pins
// the day's file as it was. A day's file deleted together with its sidecar
// shows only as a missing day (`logs verify -all` lists the days present).
// Verify of today's file while the gateway runs may
// report an incomplete last line that the writer is still writing; the
// sidecar lags the file by up to a second, which Verify accepts.
//
// # Writing
//
// Log copies the entry into a queue (a slice under a mutex) and returns; one
// goroutine takes the queued entries in batches (woken once per 128 entries,
// otherwise every 50 ms: a wake-up per line cost more CPU than encoding it),
// encodes, chains and buffers the lines and writes them out when 64 KiB are
// buffered and at least every second; a second goroutine then fsyncs the file
// and rewrites the sidecar, so that a slow disk does not stop the queue from
// draining. A crash loses at most the last second and Close loses nothing. A
// full queue makes Log wait rather than drop the line. Failed
// writes keep the lines in memory (up to Options.MaxBuffered bytes) and retry
// every second; beyond that lines are dropped and counted, and the program
// log says so. On Open, and when a day's file is opened again after a
// restart, the chain continues from the file's last complete line; an
// incomplete last line left by a crash is cut off first (with a warning),
// and a file whose end is not a chained line is renamed
// access-DATE.jsonl.damaged-TIME and a new chain started (with an error). If
// the sidecar records more lines than the file still holds (lines cut from
// the end while the gateway was stopped), the chain goes on from the
// sidecar's seq and hash, so the gap stays visible to Verify at the first
// new line instead of being papered over (and the program log says so).
//
// # Old days, indexes and search
//
// At Open and at each local day change, a goroutine beside the writer
// compresses the days older than a week (access-DATE.jsonl.gz, built
// whole then renamed into place; the .tip stays), indexing each first
// (index.go: access-DATE.jsonl.idx, each user's lines as logged and the
// day's verification when built). OpenDay, Verify and the report read a
// compressed day as they read a plain one; Search reads closed days
// through their index (building it on first use) and today's file whole.
// Retention deletes a day's .gz and index with it.
//
// # Checkpoints
//
// With Options.StateDir or OnCheckpoint set, the head (file, seq, hash) of
// each day written since the last checkpoint goes out as a Checkpoint at
// Open, every CheckpointInterval and at Close, each chained to the one
// before. The last one is kept in StateDir; Open compares the log with it
// and writes a checkpoint_mismatch record (and says "checkpoint mismatch")
// when the log does not end where it said. VerifyAgainst and CheckChain
// prove a day against the checkpoints as received (checkpoint.go).
//
// # Sessions
//
// Begin registers a request whose line is written when it ends (a tunnel,
// a WebSocket, a download); Session.End logs the final line. Every
// FlushInterval, once the lines before it are synced, the sessions open for
// a second or more are written to LOGDIR/open-sessions.journal (replaced
// atomically); Open writes a line marked "ended":"crash" for each session
// a crashed run left there, and Close writes the still-open ones marked
// "ended":"stop".
//
// # Gap records
//
// Lines that could not be written (the retry buffer full, or still
// unwritten at Close) are counted; a chained record of the writer's own
// (src "log", rule "gap", "lost":N, "note", ts = when the loss began) is
// written as soon as the file takes writes again. What Close could not
// write is counted in the gap marker (LOGDIR/lost-lines.marker, allocated
// at Open and rewritten in place so that a full disk can still take it),
// and the next Open writes the gap record. Verify lists these records in
// VerifyResult.Gaps; the day is not complete while there are any.
//
// # Metrics
//
//	schoolgate_logging_lines_total              lines chained and buffered
//	schoolgate_logging_bytes_total              bytes of those lines
//	schoolgate_logging_queue_length             entries waiting for the writer goroutine
//	schoolgate_logging_queue_full_total         times Log waited because the queue was full
//	schoolgate_logging_write_errors_total       failed opens, writes, syncs and sidecar writes
//	schoolgate_logging_dropped_lines_total      lines lost (retry buffer full, logged after Close)
//	schoolgate_logging_flush_duration_seconds   time to fsync a file and rewrite its sidecar, per sync
package logging
