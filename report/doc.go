// Package report turns the access log (docs/contract.md §4) into what the
// people responsible read: `schoolgate report` writes report-DATE.html, a
// self-contained page (inline CSS and SVG, nothing fetched, printable) and
// report-DATE.csv, one row per user. Sign-in prompts (407), DNS answers
// given on purpose (use-application-dns.net) and intercepted tunnels are
// counted apart, never as visits or blocks.
//
// The log is read streaming, line by line, with a hand-written decoder for
// its flat JSON objects; state is bounded whatever the log holds: users
// (200,000), devices, incident groups (20,000), search terms (5,000), and
// the top hosts are counted with the Space-Saving algorithm in 5,000 slots,
// so a flood of attacker-chosen host names cannot exhaust memory. Malformed
// lines are skipped and counted (the first five are named in the report).
//
// Incidents are blocked attempts on the serious categories (Serious),
// grouped per local day, user, device address and host, in the layout of
// an eSafety incident log: date and time, name, device, details, action
// taken and an empty follow-up column for the printed copy. A group is
// "repeated" when three attempts fall within ten minutes and "out of hours"
// when any attempt falls outside the school-hours schedule (weekdays
// 08:00–16:00 when the config has none).
//
// In the CSV, traffic without a user (e.g. DNS queries from a device no
// one has logged in on) gets one row per device address, with the user
// column "(unknown) ADDRESS". Times are local, "2006-01-02 15:04:05".
// Cells starting with = + - @ get a leading apostrophe so that a
// spreadsheet does not run them as formulas.
//
// The package exports no metrics: it runs as a command, not in the server.
package report
