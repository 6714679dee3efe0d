package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/internal/testenv"
)

// soak skips a long test unless SCHOOLGATE_SOAK=1 (make soak).
func soak(t *testing.T) {
	t.Helper()
	if os.Getenv("SCHOOLGATE_SOAK") != "1" {
		t.Skip("a soak test: run it with make soak (SCHOOLGATE_SOAK=1)")
	}
}

// RSS after 20 refreshes of all the public lists in ../shared/lists,
// served from a local HTTP server, stays within 10% of RSS after the
// first, under serve's default GC setting: a swapped-out database's
// memory goes back to the system (blocky's #1770 is the warning).
func TestSoakListRefreshMemory(t *testing.T) {
	soak(t)
	shared := testenv.FindUp(t, "shared/lists")
	if shared == "" {
		t.Skip("shared/lists not found above the package folder")
	}
	files := map[string][]byte{}
	var listsYAML strings.Builder
	add := func(name, category, path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		files["/"+name] = b
		fmt.Fprintf(&listsYAML, "  - {category: %s, url: URL/%s, name: %s}\n", category, name, strings.TrimSuffix(name, ".gz"))
	}
	for name, cat := range map[string]string{"drugs": "drugs", "piracy": "piracy", "torrent": "piracy", "ransomware": "malware",
		"facebook": "social", "tiktok": "social", "twitter": "social", "whatsapp": "chat", "youtube": "streaming",
		"fortnite": "games", "gambling": "gambling"} {
		add("blp-"+name+".txt.gz", cat, filepath.Join(shared, "blocklistproject", name+".txt.gz"))
	}
	for name, cat := range map[string]string{"pornography": "adult", "gambling": "gambling", "social": "social", "snuff": "violence"} {
		add("sinf-"+name+".gz", cat, filepath.Join(shared, "sinfonietta", name+"-hosts.gz"))
	}
	files["/blacklists.tar.gz"] = ut1Tar(t, filepath.Join(shared, "ut1"))
	listsYAML.WriteString("  - {ut1_url: URL/blacklists.tar.gz, name: ut1}\n")

	var round atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		// No validator: every round downloads, and so rebuilds, everything.
		round.Add(1)
		w.Write(b) //nolint:errcheck
	}))
	defer srv.Close()

	s := startE2EWith(t, func(s *e2eServer) {
		s.listsExtra = strings.ReplaceAll(listsYAML.String(), "URL", srv.URL)
		s.topExtra = "lists_refresh: 1s\n"
	})
	rss := func() int64 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
		if err != nil {
			t.Skipf("reading RSS: %v", err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmRSS:") {
				kb, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
				return kb << 10
			}
		}
		t.Skip("no VmRSS")
		return 0
	}
	swaps := func() int { return strings.Count(s.stderr.String(), `"lists swapped in"`) }
	waitSwaps := func(n int) {
		deadline := time.Now().Add(10 * time.Minute)
		for swaps() < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d swaps after 10 minutes", swaps())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitSwaps(1)
	time.Sleep(200 * time.Millisecond)
	first := rss()
	var figures []string
	var second int64
	for n := 2; n <= 20; n++ {
		waitSwaps(n)
		time.Sleep(200 * time.Millisecond)
		r := rss()
		if n == 2 {
			second = r
		}
		figures = append(figures, fmt.Sprintf("%d:%.0f", n, float64(r)/(1<<20)))
	}
	last := rss()
	t.Logf("RSS after the first swap %.1f MiB; then (swap:MiB) %s; last %.1f MiB (%.2f×)",
		float64(first)/(1<<20), strings.Join(figures, " "), float64(last)/(1<<20), float64(last)/float64(first))
	// The first swap still holds the start's garbage; from the second on
	// nothing may creep either (a leak per round shows there).
	if float64(last) > 1.10*float64(first) || float64(last) > 1.10*float64(second) {
		t.Errorf("RSS grew to %d bytes over 20 refreshes, from %d after the first and %d after the second (over 10%%)", last, first, second)
	}
}

// ut1Tar packs a UT1 tree as blacklists.tar.gz does (blacklists/CAT/FILE).
func ut1Tar(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if !strings.Contains(rel, string(filepath.Separator)) {
			return nil // the tree's own notes
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: "blacklists/" + filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(b))}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}
