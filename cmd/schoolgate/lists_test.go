package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A list downloaded from a URL: serve starts without a copy (it filters
// with the rest), downloads it, swaps it in, and keeps refreshing it under
// load without a request failing or a verdict flipping: casino.test (inline)
// and bet.test (in every version of the list) stay blocked, the site that is
// in no list stays allowed. `lists status` and `lists update` read the same
// copies.
func TestServeListRefreshUnderLoad(t *testing.T) {
	var version atomic.Int64
	var served atomic.Int64
	lists := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		v := version.Add(1)
		var b bytes.Buffer
		b.WriteString("bet.test\n")
		for i := range 2000 {
			fmt.Fprintf(&b, "v%d-%d.example\n", v%3, i)
		}
		w.Header().Set("ETag", fmt.Sprintf(`"%d"`, v))
		w.Write(b.Bytes()) //nolint:errcheck
	}))
	defer lists.Close()

	s := startE2EWith(t, func(s *e2eServer) {
		s.listsExtra = fmt.Sprintf("  - category: gambling\n    url: %s/gambling.txt\n    name: gambling-remote\n", lists.URL)
		s.topExtra = "lists_refresh: 1s\n"
	})
	c := s.client("alice", "alicepw")
	get := func(url string) (int, error) {
		resp, err := c.Get(url)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	// The first download is swapped in.
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, err := get("http://bet.test/")
		if err == nil && code == 403 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bet.test from the downloaded list never blocked (last %d %v):\n%s", code, err, s.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Under load through several refreshes.
	var wrong atomic.Int64
	var firstWrong atomic.Value
	var wg sync.WaitGroup
	stop := time.Now().Add(4 * time.Second)
	before := served.Load()
	for _, want := range []struct {
		url  string
		code int
	}{{"http://bet.test/", 403}, {"http://casino.test/", 403}, {s.up.URL + "/hello", 200}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				code, err := get(want.url)
				if err != nil || code != want.code {
					wrong.Add(1)
					firstWrong.CompareAndSwap(nil, fmt.Sprintf("%s: %d %v", want.url, code, err))
				}
			}
		}()
	}
	wg.Wait()
	if n := wrong.Load(); n != 0 {
		t.Errorf("%d requests failed or flipped during refreshes (first: %v)", n, firstWrong.Load())
	}
	if n := served.Load() - before; n < 2 {
		t.Errorf("%d downloads during 4 s with lists_refresh 1s", n)
	}
	if !strings.Contains(s.stderr.String(), `"lists swapped in"`) {
		t.Errorf("no swap in the program log:\n%s", s.stderr.String())
	}

	code, out := runBin(t, s.cmd.Path, "lists", "status", "-config", s.cfgPath)
	if code != 0 || !strings.Contains(out, "gambling-remote") || !strings.Contains(out, "2001") {
		t.Errorf("lists status: exit %d\n%s", code, out)
	}
	lists.Close()
	code, out = runBin(t, s.cmd.Path, "lists", "update", "-config", s.cfgPath)
	if code != 1 || !strings.Contains(out, "refused (network)") {
		t.Errorf("lists update with the source down: exit %d\n%s", code, out)
	}
}
