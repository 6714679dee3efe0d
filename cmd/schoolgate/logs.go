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

	"github.com/schoolgate/schoolgate/logging"
)

const logsUsage = `usage: schoolgate logs verify [-config FILE] [-date YYYY-MM-DD | -all] [-dir DIR]
       schoolgate logs verify FILE...

Checks that a day's access log is complete and unaltered: every line is
valid JSON, numbered in order (seq) and chained to the one before (hash);
with the .tip sidecar the writer keeps beside the file, lines removed from
the end are caught too. The date is the config's local date (default today);
-all checks every day's log in the folder, oldest first; -dir reads the logs
from another folder than the config's log.dir (e.g. a copy); FILE... checks
the named files instead.

Exit status: 0 when every file is intact; 1 naming the first bad line;
2 for bad usage or a file that cannot be read.

The last hash printed pins the file as it is now: keep it somewhere the
gateway's administrators cannot change (a mail, a ticket) and a later
rewrite of the whole file, hashes and all, is caught by comparing.
`

// runLogs is `schoolgate logs verify`.
func runLogs(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "verify" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fmt.Fprint(stderr, logsUsage)
			return 0
		}
		fmt.Fprint(stderr, logsUsage)
		return 2
	}
	fs := flag.NewFlagSet("logs verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, logsUsage) }
	cfgPath := configFlag(fs, "config `FILE` (default: the embedded default)")
	dateFlag := fs.String("date", "", "the local `DATE` (YYYY-MM-DD) of the log to check (default today)")
	dirFlag := fs.String("dir", "", "read the logs from `DIR` instead of the config's log.dir")
	allFlag := fs.Bool("all", false, "check every day's log in the folder")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	files := fs.Args()
	if len(files) > 0 && (*cfgPath != "" || *dateFlag != "" || *dirFlag != "" || *allFlag) {
		fmt.Fprintln(stderr, "schoolgate logs verify: give FILE... or -config/-date/-all/-dir, not both")
		return 2
	}
	if *allFlag && *dateFlag != "" {
		fmt.Fprintln(stderr, "schoolgate logs verify: give -date or -all, not both")
		return 2
	}
	if len(files) == 0 {
		cfg, err := loadConfig(*cfgPath)
		if err != nil {
			fmt.Fprintf(stderr, "schoolgate logs verify: loading config:\n%v\n", err)
			return 2
		}
		loc := cfg.Location
		if loc == nil {
			loc = time.Local
		}
		date := time.Now().In(loc)
		if *dateFlag != "" {
			date, err = time.ParseInLocation("2006-01-02", *dateFlag, loc)
			if err != nil {
				fmt.Fprintf(stderr, "schoolgate logs verify: -date %q: want YYYY-MM-DD\n", *dateFlag)
				return 2
			}
		}
		dir := cfg.Log.Dir
		if *dirFlag != "" {
			dir = *dirFlag
		}
		files = []string{logging.PathFor(dir, date)}
		if *allFlag {
			if files, err = allLogs(dir, loc); err != nil {
				fmt.Fprintf(stderr, "schoolgate logs verify: %v\n", err)
				return 2
			}
		}
	}
	status := 0
	for _, path := range files {
		status = max(status, verifyOne(path, stdout, stderr))
	}
	return status
}

func verifyOne(path string, stdout, stderr io.Writer) int {
	res, err := logging.VerifyFile(path)
	var ve *logging.VerifyError
	if errors.As(err, &ve) && ve.Incomplete {
		// The gateway may be writing today's file this very moment: look
		// again once its next flush is done.
		if fi, serr := os.Stat(path); serr == nil && time.Since(fi.ModTime()) < 5*time.Second {
			time.Sleep(1500 * time.Millisecond)
			res, err = logging.VerifyFile(path)
		}
	}
	switch {
	case errors.As(err, &ve):
		fmt.Fprintf(stderr, "%s: %v\n", path, ve)
		return 1
	case errors.Is(err, os.ErrNotExist):
		fmt.Fprintf(stderr, "schoolgate logs verify: %s: no such file (no access log for that day in that folder)\n", path)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "schoolgate logs verify: %v\n", err)
		return 2
	}
	// Parts of the day the writer found damaged and set aside at a restart
	// (a file whose end was not a line of ours, or a damaged sidecar): the
	// day is not one intact chain while they are there.
	aside, _ := filepath.Glob(path + ".damaged-*")
	tips, _ := filepath.Glob(logging.TipPath(path) + ".damaged-*")
	aside = append(aside, tips...)
	if len(aside) > 0 {
		fmt.Fprintf(stderr, "%s: %d lines chained, but the writer set aside damaged parts of this day at a restart: %s\n",
			path, res.Lines, strings.Join(aside, ", "))
		return 1
	}
	if len(res.Gaps) > 0 {
		// The chain is whole, but the writer recorded that lines are
		// missing from it: the day is not complete.
		for _, g := range res.Gaps {
			fmt.Fprintf(stderr, "%s: %v\n", path, g)
		}
		fmt.Fprintf(stderr, "%s: %d lines chained, but the day is not complete (%d gap records)\n", path, res.Lines, len(res.Gaps))
		return 1
	}
	fmt.Fprintf(stdout, "%s: %d lines, chain intact\n", path, res.Lines)
	if res.LastHash != "" {
		fmt.Fprintf(stdout, "  last hash %s\n", res.LastHash)
	}
	if !res.Tip {
		fmt.Fprintf(stdout, "  no %s sidecar: lines removed from the end of the file would not show\n", logging.TipSuffix)
	}
	return 0
}

// allLogs lists the access logs in dir, oldest first.
func allLogs(dir string, loc *time.Location) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, de := range ents { // ReadDir sorts by name, and the names sort by date
		if _, ok := logging.ParseFileName(de.Name(), loc); ok && de.Type().IsRegular() {
			files = append(files, filepath.Join(dir, de.Name()))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no access logs in %s", dir)
	}
	return files, nil
}
