package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/schoolgate/schoolgate/lists"
)

const listsUsage = `usage: schoolgate lists update [-config FILE]
       schoolgate lists status [-config FILE]

The lists a config downloads (lists[].url, lists[].ut1_url, statutory[].url)
keep their last good copy in state_dir/lists; serve refreshes them on their
schedule (lists_refresh) and swaps them in as a reload does.

update   refreshes every downloaded list now; see 'schoolgate lists update -help'.
status   prints each downloaded list's source, age, entries and last error.
`

const listsUpdateUsage = `usage: schoolgate lists update [-config FILE]

Refreshes every downloaded list of the config now (lists[].url, ut1_url,
statutory[].url), whatever its schedule, and prints per list the entries
before and after, or what was refused and why; the last good copy of a
refused list stays in state_dir/lists. It ends within 5 minutes even if
every source stalls. A running serve uses the new copies at its next refresh
round, or at once on SIGHUP (systemctl reload schoolgate).

Exit status: 0 when every list was fetched or is current; 1 when any was
refused or failed (or the config cannot be loaded); 2 for bad usage.
`

const listsStatusUsage = `usage: schoolgate lists status [-config FILE]

Prints each downloaded list of the config: its name, the age of its last
good download, its entries, its source and its last error (from
state_dir/lists). It downloads nothing.

Exit status: 0, 1 when the config cannot be loaded, 2 for bad usage.
`

// listsUpdateDeadline bounds `lists update` as a whole.
const listsUpdateDeadline = 5 * time.Minute

func runLists(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, listsUsage)
		return 2
	}
	switch args[0] {
	case "update", "status":
	default:
		fmt.Fprintf(stderr, "schoolgate lists: unknown subcommand %q\n%s", args[0], listsUsage)
		return 2
	}
	fs := newFlagSet("lists "+args[0], helpTexts["lists "+args[0]], stderr)
	cfgPath := configFlag(fs, configUsage)
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "schoolgate lists %s: unexpected argument %q\n", args[0], fs.Arg(0))
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "schoolgate lists: %v\n", err)
		return 1
	}
	srcs := lists.Sources(cfg)
	if len(srcs) == 0 {
		fmt.Fprintln(stdout, "no downloaded lists in this config (lists[].url, lists[].ut1_url, statutory[].url)")
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	if args[0] == "status" {
		fmt.Fprintln(tw, "LIST\tAGE\tENTRIES\tSOURCE\tLAST ERROR")
		now := time.Now()
		for _, s := range srcs {
			m := lists.ReadMeta(s.Path)
			age := "never downloaded"
			if !m.Success.IsZero() {
				age = now.Sub(m.Success).Round(time.Second).String()
			}
			lastErr := "-"
			if m.LastError != "" {
				lastErr = m.LastErrorAt.Format(time.RFC3339) + " " + m.LastError
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", s.Name, age, m.Entries, s.URL, lastErr)
		}
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), listsUpdateDeadline)
	defer cancel()
	r := lists.NewRefresher(&lists.Fetcher{}, nil, nil, nil)
	status := 0
	fmt.Fprintln(tw, "LIST\tBEFORE\tAFTER\tRESULT")
	for _, res := range r.RefreshAll(ctx, cfg) {
		what := "updated"
		switch {
		case res.Err != nil:
			what, status = "refused ("+res.Reason+"): "+res.Err.Error(), 1
		case res.NotModified:
			what = "unchanged (not modified)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", res.Name, res.Before, res.After, what)
	}
	return status
}
