package logging

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/categories"
)

// genDay writes a chained day of n lines from `users` users (user0000 …)
// spread over the day, with its .tip, as the writer would; fast enough to
// make 30 days of a million lines for the benchmark.
func genDay(tb testing.TB, dir string, date time.Time, n, users int) {
	tb.Helper()
	path := PathFor(dir, date)
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	le := newLineEncoder()
	var prev []byte
	var sum [hashHex]byte
	var buf []byte
	step := 24 * time.Hour / time.Duration(n+1)
	hosts := []string{"www.bbc.co.uk", "www.google.com", "www.bet365.com", "classroom.google.com", "www.youtube.com"}
	for i := 1; i <= n; i++ {
		e := Entry{Time: date.Add(time.Duration(i) * step), Src: "proxy", User: fmt.Sprintf("user%04d", (i*7919)%users),
			IP: fmt.Sprintf("10.10.%d.%d", i%8, i%250+1), Profile: "student", Method: "GET", Host: hosts[i%len(hosts)],
			Verdict: "allow", Rule: "student#default", HTTPStatus: 200, Bytes: int64(i % 5000), Duration: time.Millisecond}
		e.URL = "https://" + e.Host + "/page/" + fmt.Sprint(i%1000)
		if e.Host == "www.bet365.com" {
			e.Categories, e.Verdict, e.Rule, e.HTTPStatus = categories.SetOf(categories.Gambling), "block", "student#2", 403
		}
		buf, sum = le.appendLine(buf[:0], &e, int64(i), prev)
		prev = sum[:]
		bw.Write(buf)
	}
	if err := bw.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	if n > 0 {
		if err := writeTip(path, int64(n), sum); err != nil {
			tb.Fatal(err)
		}
	}
}

func TestSearchAcrossDaysIndexedAndCompressed(t *testing.T) {
	dir := t.TempDir()
	today := time.Date(2026, 11, 30, 0, 0, 0, 0, london)
	for d := 10; d >= 0; d-- {
		genDay(t, dir, today.AddDate(0, 0, -d), 2000, 50)
	}
	// Days older than a week are compressed (and indexed on the way).
	names, err := CompressOld(dir, london, today, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 3 {
		t.Fatalf("compressed %v, want the 3 days older than a week", names)
	}
	old := PathFor(dir, today.AddDate(0, 0, -10))
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatalf("the plain file is still there: %v", err)
	}
	if _, err := os.Stat(old + ".gz"); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, old, 2000)       // by its .jsonl name, through the .gz
	mustVerify(t, old+".gz", 2000) // and by its own

	// user0003 over the last ten days, from the compressed days to today.
	var got []*Line
	checks, err := Search(dir, london, Query{User: "user0003", From: today.AddDate(0, 0, -10)}, today.Add(12*time.Hour),
		func(l *Line) { got = append(got, l) })
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 11 {
		t.Fatalf("%d days checked, want 11", len(checks))
	}
	for _, c := range checks {
		if c.Problem != "" || c.Lines != 2000 {
			t.Fatalf("day %v: %+v", c.Date, c)
		}
		if c.Date.Before(today) != (c.Indexed != "") {
			t.Fatalf("day %v: indexed %q (closed days through their index, today read whole)", c.Date, c.Indexed)
		}
	}
	if len(got) != 11*40 {
		t.Fatalf("%d lines for user0003, want 440", len(got))
	}
	for i, l := range got {
		if l.User != "user0003" || i > 0 && l.TS.Before(got[i-1].TS) || !strings.Contains(string(l.Raw), `"hash":"`) {
			t.Fatalf("line %d: %+v", i, l)
		}
	}
	for _, d := range []int{10, 5, 1} {
		if _, err := os.Stat(IndexPath(PathFor(dir, today.AddDate(0, 0, -d)))); err != nil {
			t.Fatalf("no index beside day -%d: %v", d, err)
		}
	}

	// Filters combine; -host takes subdomains.
	want := 0
	for _, l := range got {
		if l.Host == "www.bet365.com" && !l.TS.Before(today.AddDate(0, 0, -2)) && l.TS.Before(today) {
			want++
		}
	}
	if want == 0 {
		t.Fatal("the generator gave user0003 no blocked lines")
	}
	got = got[:0]
	if _, err := Search(dir, london, Query{User: "user0003", Host: "bet365.com", Verdict: "block", Category: "gambling",
		From: today.AddDate(0, 0, -2), To: today}, today.Add(12*time.Hour), func(l *Line) { got = append(got, l) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != want {
		t.Fatalf("%d blocked gambling lines for user0003 on two days, want %d", len(got), want)
	}

	// A day edited after it was indexed: the index is stale, rebuilt, and
	// the search says the day does not verify.
	day3 := PathFor(dir, today.AddDate(0, 0, -3))
	b, _ := os.ReadFile(day3)
	os.WriteFile(day3, []byte(strings.Replace(string(b), "www.bet365.com", "www.bet366.com", 1)), 0o640)
	checks, err = Search(dir, london, Query{IP: "10.10.1.2", From: today.AddDate(0, 0, -3), To: today.AddDate(0, 0, -2)},
		today.Add(12*time.Hour), func(*Line) {})
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 1 || !strings.Contains(checks[0].Problem, "hash does not match") {
		t.Fatalf("edited day: %+v", checks)
	}
}

func TestWriterCompressesOldDays(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, london)
	genDay(t, dir, now.AddDate(0, 0, -9), 100, 5)
	genDay(t, dir, now.AddDate(0, 0, -2), 100, 5)
	w := openTest(t, dir, now, nil)
	// At the next day change the day now 8 days old goes too.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(PathFor(dir, now.AddDate(0, 0, -9))); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the day older than a week was not compressed at Open")
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.clock.Set(now.AddDate(0, 0, 6))
	w.Log(sample(1, now.AddDate(0, 0, 6)))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(PathFor(dir, now.AddDate(0, 0, -2))); os.IsNotExist(err) {
			break // compressed, indexed, and the plain file removed
		}
		if time.Now().After(deadline) {
			t.Fatal("the day that turned 8 days old was not compressed at the day change")
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	days, err := ListDays(dir, london)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range days {
		names = append(names, filepath.Base(d.Path))
	}
	if got := strings.Join(names, " "); got != "access-2026-11-21.jsonl.gz access-2026-11-28.jsonl.gz access-2026-11-30.jsonl access-2026-12-06.jsonl" {
		t.Fatalf("days = %s", got)
	}
}
