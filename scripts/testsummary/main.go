// Command testsummary reads `go test -json` on stdin and prints what a
// plain `go test` prints (each package's result, and the output of failed
// tests, as they come), then which tests skipped and why: a test that
// needs a missing binary or root skips with a message, and `make test`
// should say so rather than pass quietly.
//
// It never decides the exit status: the Makefile keeps go test's.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

type skip struct {
	pkg, test, why string
}

func main() {
	if err := summarize(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "testsummary: %v\n", err)
		os.Exit(1)
	}
}

// summarize copies the plain go test output of the events in r to w and
// ends with the skipped tests.
func summarize(r io.Reader, w io.Writer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	out := map[[2]string][]string{} // output of a running test
	var skips []skip
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			// Not an event (a build error printed as text): as it is.
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		k := [2]string{e.Package, e.Test}
		switch {
		case e.Action == "build-output":
			io.WriteString(w, e.Output) //nolint:errcheck // a compile error
		case e.Test == "":
			// The package's own lines: "ok  pkg 1.2s", "FAIL", build
			// output. A bare "PASS" is what -v adds; go test without it
			// does not print it.
			if e.Action == "output" && e.Output != "PASS\n" {
				io.WriteString(w, e.Output) //nolint:errcheck
			}
		case e.Action == "output":
			out[k] = append(out[k], e.Output)
		case e.Action == "fail":
			for _, o := range out[k] {
				if !strings.HasPrefix(o, "=== ") {
					io.WriteString(w, o) //nolint:errcheck
				}
			}
			delete(out, k)
		case e.Action == "skip":
			skips = append(skips, skip{e.Package, e.Test, skipReason(out[k])})
			delete(out, k)
		case e.Action == "pass":
			delete(out, k)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(skips) == 0 {
		fmt.Fprintln(w, "\nNo test skipped.")
		return nil
	}
	fmt.Fprintf(w, "\n%d %s skipped (install what they name, or run as root, to run them):\n", len(skips), plural(len(skips), "test", "tests"))
	for _, s := range skips {
		fmt.Fprintf(w, "  %s %s: %s\n", shortPkg(s.pkg), s.test, s.why)
	}
	return nil
}

// skipReason is the message a skipped test gave: its output without the
// === and --- lines, the file:line prefix kept (it says where to look).
func skipReason(lines []string) string {
	var msg []string
	for _, o := range lines {
		t := strings.TrimSpace(o)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		msg = append(msg, t)
	}
	if len(msg) == 0 {
		return "(no reason given)"
	}
	s := strings.Join(msg, " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func shortPkg(p string) string {
	return strings.TrimPrefix(p, "github.com/schoolgate/schoolgate/")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
