package logging

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/categories"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestGolden pins the line format and the chain: files written by this
// version must stay verifiable, byte for byte, by every later one (a
// school may need last year's logs as evidence after an upgrade).
func TestGolden(t *testing.T) {
	day := time.Date(2026, 11, 23, 8, 30, 0, 0, london)
	entries := []Entry{
		{Time: day, Src: "proxy", User: "alice", IP: "10.10.1.7", Profile: "student", Method: "CONNECT",
			Host: "www.bet365.com:443", Categories: categories.SetOf(categories.Gambling), Verdict: "block",
			Rule: "student#2", HTTPStatus: 403, Bytes: 0, Duration: 312 * time.Microsecond},
		{Time: day.Add(1500 * time.Millisecond), Src: "dns", IP: "10.10.1.7", Profile: "student", Method: "HTTPS",
			Host: "www.bbc.co.uk", Categories: categories.SetOf(categories.Streaming), Verdict: "allow",
			Rule: "student#default", Rcode: "NOERROR", Bytes: 143, Duration: 18 * time.Millisecond},
		{Time: day.Add(2 * time.Second), Src: "proxy", User: "bob\"\n", IP: "10.20.0.5", Profile: "staff", Method: "GET",
			Host: "example.org", URL: "http://example.org/a?q=\u00e9t\u00e9&x=<b>", Verdict: "allow", Rule: "staff#default",
			HTTPStatus: 200, Bytes: 1256, Duration: 1234567 * time.Nanosecond},
		{Time: day.Add(3 * time.Second), Src: "dns", IP: "10.10.1.9", Profile: "student", Method: "A",
			Host: "nosuch.invalid", Verdict: "allow", Rule: "student#default", Rcode: "NXDOMAIN", Bytes: 98},
	}
	dir := t.TempDir()
	w := openTest(t, dir, day, nil)
	for i := range entries {
		w.Log(&entries[i])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	name := FileName(day)
	for _, f := range []string{name, name + TipSuffix} {
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", f)
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s:\n got %s\nwant %s", f, golden, got, want)
		}
	}
	mustVerify(t, filepath.Join("testdata", name), len(entries))
}
