package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/internal/atomicfile"
	"github.com/schoolgate/schoolgate/logging"
	"github.com/schoolgate/schoolgate/report"
)

// reportFlags are `schoolgate report`'s flags after parsing.
type reportFlags struct {
	date, from, to, out string
	week                bool
}

func runReport(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := configFlag(fs, configUsage)
	var f reportFlags
	fs.StringVar(&f.date, "date", "", "day to report on, YYYY-MM-DD (default: yesterday in the config's timezone)")
	fs.BoolVar(&f.week, "week", false, "report on the 7 days ending with -date")
	fs.StringVar(&f.from, "from", "", "first day of a period, YYYY-MM-DD (with -to)")
	fs.StringVar(&f.to, "to", "", "last day of a period, YYYY-MM-DD (default: -from)")
	fs.StringVar(&f.out, "out", "reports", "folder to write report-DATE.html and report-DATE.csv to (created if missing)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: schoolgate report [-config FILE] [-date YYYY-MM-DD [-week] | -from YYYY-MM-DD -to YYYY-MM-DD] [-out DIR]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return parseStatus(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "schoolgate report: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "schoolgate report: %v\n", err)
		return 1
	}
	return reportFor(cfg, f, time.Now(), stdout, stderr)
}

// reportFor runs the report for cfg; now decides what "yesterday" is.
func reportFor(cfg *config.Config, f reportFlags, now time.Time, stdout, stderr io.Writer) int {
	loc := cfg.Location
	if loc == nil {
		loc = time.Local
	}
	from, to, err := reportPeriod(f, now.In(loc), loc)
	if err != nil {
		fmt.Fprintf(stderr, "schoolgate report: %v\n", err)
		return 2
	}
	opts := report.Options{
		Dir: cfg.Log.Dir, From: from, To: to, Location: loc,
		Title: cfg.Proxy.BlockPage.Organisation,
	}
	if s, ok := cfg.Schedules[config.SchoolHoursSchedule]; ok {
		opts.SchoolHours = []config.Schedule{s}
	}
	r, err := report.Run(opts)
	if err != nil {
		fmt.Fprintf(stderr, "schoolgate report: %v\n", err)
		return 1
	}
	// No log for any day of the period: nothing to report, and a cron job
	// must notice (a gateway that stopped, or logs to another folder).
	if r.DaysRead == 0 {
		what := "for " + from.Format(time.DateOnly)
		if !from.Equal(to) {
			what = fmt.Sprintf("for any day from %s to %s", from.Format(time.DateOnly), to.Format(time.DateOnly))
		}
		fmt.Fprintf(stderr, "schoolgate report: no access log %s in %s (looked for %s); nothing written. Was the gateway running, and is log.dir right?\n",
			what, cfg.Log.Dir, filepath.Base(logging.PathFor(cfg.Log.Dir, from)))
		return 1
	}
	name := "report-" + from.Format(time.DateOnly)
	if !from.Equal(to) {
		name += "_to_" + to.Format(time.DateOnly)
	}
	if err := os.MkdirAll(f.out, 0o750); err != nil {
		fmt.Fprintf(stderr, "schoolgate report: creating %s: %v\n", f.out, err)
		return 1
	}
	htmlPath := filepath.Join(f.out, name+".html")
	csvPath := filepath.Join(f.out, name+".csv")
	if err := writeFileAtomic(htmlPath, r.WriteHTML); err != nil {
		fmt.Fprintf(stderr, "schoolgate report: %v\n", err)
		return 1
	}
	if err := writeFileAtomic(csvPath, r.WriteCSV); err != nil {
		fmt.Fprintf(stderr, "schoolgate report: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n%s\n", htmlPath, csvPath)
	fmt.Fprintf(stdout, "%d requests, %d blocked, %d incident attempts on serious categories\n",
		r.Requests, r.Blocked, r.IncidentAttempts)
	if r.SignInPrompts+r.OnPurpose+r.Tunnels > 0 {
		fmt.Fprintf(stdout, "counted apart: %d sign-in prompts, %d DNS answers given on purpose, %d intercepted tunnels\n",
			r.SignInPrompts, r.OnPurpose, r.Tunnels)
	}
	if r.Malformed > 0 {
		fmt.Fprintf(stderr, "schoolgate report: skipped %d malformed lines (first at %s); run `schoolgate logs verify`\n",
			r.Malformed, r.MalformedAt[0])
	}
	if len(r.MissingDays) > 0 {
		fmt.Fprintf(stderr, "schoolgate report: no access log for %s in %s\n", strings.Join(r.MissingDays, ", "), cfg.Log.Dir)
	}
	return 0
}

// reportPeriod turns the flags into the first and last day (inclusive).
func reportPeriod(f reportFlags, now time.Time, loc *time.Location) (from, to time.Time, err error) {
	parse := func(flag, s string) (time.Time, error) {
		t, err := time.ParseInLocation(time.DateOnly, s, loc)
		if err != nil {
			return time.Time{}, fmt.Errorf("-%s %q: want a date like 2026-11-20", flag, s)
		}
		return t, nil
	}
	if f.from != "" || f.to != "" {
		if f.date != "" || f.week {
			return from, to, errors.New("use -date (with -week) or -from/-to, not both")
		}
		if f.from == "" {
			return from, to, errors.New("-to needs -from")
		}
		if from, err = parse("from", f.from); err != nil {
			return from, to, err
		}
		to = from
		if f.to != "" {
			if to, err = parse("to", f.to); err != nil {
				return from, to, err
			}
		}
		if to.Before(from) {
			return from, to, fmt.Errorf("-to %s is before -from %s", f.to, f.from)
		}
		return from, to, nil
	}
	if f.date != "" {
		if to, err = parse("date", f.date); err != nil {
			return from, to, err
		}
	} else {
		y, m, d := now.Date()
		to = time.Date(y, m, d-1, 0, 0, 0, 0, loc)
	}
	from = to
	if f.week {
		from = to.AddDate(0, 0, -6)
	}
	return from, to, nil
}

// writeFileAtomic writes path through a temporary file in the same folder,
// so a reader never sees half a report.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	if err := atomicfile.Write(path, 0o640, write); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
