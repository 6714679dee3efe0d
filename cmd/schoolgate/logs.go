package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schoolgate/schoolgate/logging"
)

const logsUsage = `usage: schoolgate logs verify [-config FILE] [-date YYYY-MM-DD | -all] [-dir DIR] [-checkpoints FILE]
       schoolgate logs verify [-checkpoints FILE] FILE...
       schoolgate logs search [-config FILE] [-user U] [-ip ADDR] [-host H] [-category C] [-verdict V]
                              [-from TIME] [-to TIME] [-json | -csv]

Checks that a day's access log is complete and unaltered: every line is
valid JSON, numbered in order (seq) and chained to the one before (hash);
with the .tip sidecar the writer keeps beside the file, lines removed from
the end are caught too. The date is the config's local date (default today);
-all checks every day's log in the folder, oldest first; -dir reads the logs
from another folder than the config's log.dir (e.g. a copy); FILE... checks
the named files instead. Compressed days (access-DATE.jsonl.gz) are read
as they are.

-checkpoints FILE proves each day against the checkpoints the gateway sent
(FILE: the bodies as the webhook or the alerts file received them, one JSON
object a line; alerts in it are skipped): the checkpoints' own chain must be
whole, every line a checkpoint named must be in the file with the hash it
named, and no line may follow the one the gateway's stop checkpoint named.
This catches what the chain alone cannot: lines cut from the end with the
.tip sidecar deleted, and lines appended or rewritten with valid hashes.

'logs search' finds lines: see 'schoolgate logs search -help'.

Exit status: 0 when every file is intact; 1 naming the first bad line, a
gap record (gap: N lines lost at TIME) or a checkpoint that does not hold;
2 for bad usage or a file that cannot be read.

The last hash printed pins the file as it is now: keep it somewhere the
gateway's administrators cannot change (a mail, a ticket) and a later
rewrite of the whole file, hashes and all, is caught by comparing.
`

// runLogs is `schoolgate logs verify`.
func runLogs(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "search" {
		return runLogsSearch(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "verify" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fmt.Fprint(stderr, logsUsage)
			return 0
		}
		fmt.Fprint(stderr, logsUsage)
		return 2
	}
	fs := newFlagSet("logs verify", logsUsage, stderr)
	cfgPath := configFlag(fs, configUsage)
	dateFlag := fs.String("date", "", "the local `DATE` (YYYY-MM-DD) of the log to check (default today)")
	dirFlag := fs.String("dir", "", "read the logs from `DIR` instead of the config's log.dir")
	allFlag := fs.Bool("all", false, "check every day's log in the folder")
	cpFlag := fs.String("checkpoints", "", "prove the days against the checkpoints in `FILE` (one JSON object a line)")
	if err := fs.Parse(args[1:]); err != nil {
		return parseStatus(err)
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
		var err error
		if files, err = daysToVerify(*cfgPath, *dateFlag, *dirFlag, *allFlag); err != nil {
			fmt.Fprintf(stderr, "schoolgate logs verify: %v\n", err)
			return 2
		}
	}
	status := 0
	var cps []logging.Checkpoint
	if *cpFlag != "" {
		var ok bool
		if cps, status, ok = loadCheckpoints(*cpFlag, stderr); !ok {
			return status
		}
	}
	for _, path := range files {
		status = max(status, verifyOne(path, cps, *cpFlag != "", stdout, stderr))
	}
	return status
}

// daysToVerify is the files of -date (default today) or -all in -dir
// (default the config's log.dir).
func daysToVerify(cfgPath, dateFlag, dirFlag string, all bool) ([]string, error) {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("loading config:\n%v", err)
	}
	loc := cfg.Location
	if loc == nil {
		loc = time.Local
	}
	date := time.Now().In(loc)
	if dateFlag != "" {
		date, err = time.ParseInLocation("2006-01-02", dateFlag, loc)
		if err != nil {
			return nil, fmt.Errorf("-date %q: want YYYY-MM-DD", dateFlag)
		}
	}
	dir := cfg.Log.Dir
	if dirFlag != "" {
		dir = dirFlag
	}
	if all {
		return allLogs(dir, loc)
	}
	return []string{logging.PathFor(dir, date)}, nil
}

// loadCheckpoints reads the checkpoints of -checkpoints path and checks
// their own chain. It returns the exit status so far (1 for a broken
// chain), and false when the days cannot be proved against them at all.
func loadCheckpoints(path string, stderr io.Writer) ([]logging.Checkpoint, int, bool) {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(stderr, "schoolgate logs verify: %v\n", err)
		return nil, 2, false
	}
	cps, err := logging.ReadCheckpoints(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(stderr, "schoolgate logs verify: reading %s: %v\n", path, err)
		return nil, 2, false
	}
	if len(cps) == 0 {
		fmt.Fprintf(stderr, "schoolgate logs verify: %s holds no checkpoints\n", path)
		return nil, 1, false
	}
	status := 0
	for _, p := range logging.CheckChain(cps) {
		fmt.Fprintf(stderr, "%s: %s\n", path, p)
		status = 1
	}
	return cps, status, true
}

// verifyOne verifies the day at path (against cps if withCPs) and says
// what it found; it returns the exit status for that day.
func verifyOne(path string, cps []logging.Checkpoint, withCPs bool, stdout, stderr io.Writer) int {
	res, problems, err := verifySettled(path, cps, withCPs)
	var ve *logging.VerifyError
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
	if setAside(path, res, stderr) {
		return 1
	}
	if withCPs && checkpointsFail(path, cps, problems, stderr) {
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
	if withCPs {
		fmt.Fprintf(stdout, "  proved against the checkpoints in the file given\n")
	}
	if res.LastHash != "" {
		fmt.Fprintf(stdout, "  last hash %s\n", res.LastHash)
	}
	if !res.Tip {
		fmt.Fprintf(stdout, "  no %s sidecar: lines removed from the end of the file would not show\n", logging.TipSuffix)
	}
	return 0
}

// verifySettled verifies path (against cps if withCPs). The gateway may
// be writing today's file this very moment: a file that ends mid-line and
// changed in the last seconds is looked at again once its next flush is
// done.
func verifySettled(path string, cps []logging.Checkpoint, withCPs bool) (logging.VerifyResult, []string, error) {
	verify := func() (logging.VerifyResult, []string, error) {
		if withCPs {
			return logging.VerifyAgainst(path, cps)
		}
		r, err := logging.VerifyFile(path)
		return r, nil, err
	}
	res, problems, err := verify()
	var ve *logging.VerifyError
	if errors.As(err, &ve) && ve.Incomplete {
		if fi, serr := os.Stat(path); serr == nil && time.Since(fi.ModTime()) < 5*time.Second {
			time.Sleep(1500 * time.Millisecond)
			res, problems, err = verify()
		}
	}
	return res, problems, err
}

// setAside reports (true) parts of the day the writer found damaged and
// set aside at a restart (a file whose end was not a line of ours, or a
// damaged sidecar): the day is not one intact chain while they are there.
func setAside(path string, res logging.VerifyResult, stderr io.Writer) bool {
	aside, _ := filepath.Glob(path + ".damaged-*")
	tips, _ := filepath.Glob(logging.TipPath(path) + ".damaged-*")
	aside = append(aside, tips...)
	if len(aside) == 0 {
		return false
	}
	fmt.Fprintf(stderr, "%s: %d lines chained, but the writer set aside damaged parts of this day at a restart: %s\n",
		path, res.Lines, strings.Join(aside, ", "))
	return true
}

// checkpointsFail reports (true) the problems proving the day at path
// against cps found, and a day no checkpoint names.
func checkpointsFail(path string, cps []logging.Checkpoint, problems []string, stderr io.Writer) bool {
	named := 0
	base := filepath.Base(strings.TrimSuffix(path, ".gz"))
	for _, c := range cps {
		if c.File == base {
			named++
		}
	}
	if named == 0 {
		problems = append(problems, "no checkpoint names this day: it cannot be proved against them")
	}
	for _, p := range problems {
		fmt.Fprintf(stderr, "%s: checkpoints: %s\n", path, p)
	}
	return len(problems) > 0
}

// allLogs lists the access logs in dir, oldest first.
func allLogs(dir string, loc *time.Location) ([]string, error) {
	days, err := logging.ListDays(dir, loc)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, d := range days {
		files = append(files, d.Path)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no access logs in %s", dir)
	}
	return files, nil
}
