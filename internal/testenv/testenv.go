// Package testenv holds what several packages' tests need: from their
// surroundings, the repository's example config (docs/example.yaml) and
// the shared/ folder beside the repository (the public lists), found by
// walking up from the package; and helpers more than one package's tests
// had copied (the benchmark page, reading a JSON-lines file, finding Chromium).
package testenv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// FindUp returns the path of rel in the nearest ancestor of the working
// directory (a test's package folder) that holds it, or "" when none does.
func FindUp(tb testing.TB, rel string) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// ExampleConfig returns the path of the repository's example config
// (docs/example.yaml), the one the reference documents.
func ExampleConfig(tb testing.TB) string {
	tb.Helper()
	p := FindUp(tb, filepath.Join("docs", "example.yaml"))
	if p == "" {
		tb.Fatal("docs/example.yaml not found above the package folder")
	}
	return p
}

// CleanPage is a realistic clean page for benchmarks of page scoring:
// about 40 KiB of a school's news, markup-heavy (most tags have
// attributes, as on real sites). The proxy's and the classifier's
// benchmarks read the same page, so their figures compare.
func CleanPage() []byte {
	var b bytes.Buffer
	b.WriteString(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Year 9 trip to the Science Museum</title>
<meta name="description" content="News from the school: trips, sport and the library."><link rel="stylesheet" href="/s.css">
<script>window.dataLayer=[];function g(){dataLayer.push(arguments)}</script></head><body><nav><a href="/">Home</a> <a href="/news">News</a></nav><main>`)
	for b.Len() < 40<<10 {
		b.WriteString(`<article class="post"><h2>Science Museum trip</h2><p>Year 9 pupils visited the Science Museum on Tuesday. ` +
			`They saw the <a href="/apollo">Apollo 10</a> capsule, built circuits in the workshop and talked to researchers about climate. ` +
			`The library has new books on space; the football team plays at home on Saturday.</p><img src="/p.jpg" alt="pupils"></article>`)
	}
	b.WriteString(`</main><footer>School office: 01234 567890</footer></body></html>`)
	return b.Bytes()
}

// ReadJSONLines decodes each line of the file at path (an access log, an
// alerts file) as a T; a line that is not one fails the test.
func ReadJSONLines[T any](tb testing.TB, path string) []T {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			tb.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("reading %s: %v", path, err)
	}
	return out
}

// ServeConns serves each connection ln accepts with handle, in a
// goroutine of its own, closing it after; ln is closed when the test
// ends.
func ServeConns(tb testing.TB, ln net.Listener, handle func(net.Conn)) {
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}

// ReadFile is the content of the file at path; a file that cannot be
// read fails the test.
func ReadFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Chromium returns the installed Chromium (or Chrome) for the browser
// tests, or skips the test with a clear message when there is none.
func Chromium(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	tb.Skip("no chromium installed: the browser test is skipped (apt install chromium)")
	return ""
}

// WaitFor polls cond until it holds, failing the test when it does not
// within 10 s (what names it in the failure): long enough for a loaded
// machine, where a test must not time its waits closely.
func WaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
