package lists

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5" //nolint:gosec // as UT1 publishes it
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/categories"
)

// listServer serves whatever the test puts at a path, counts requests and
// answers conditional ones as a real server does.
type listServer struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string]served
	hits  atomic.Int64
}

type served struct {
	body        []byte
	etag        string
	contentType string
	delay       time.Duration // before the headers
	stall       bool          // send the headers and part of the body, then hang
	status      int
}

func newListServer(t *testing.T) *listServer {
	t.Helper()
	s := &listServer{files: map[string]served{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		f, ok := s.files[r.URL.Path]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		if f.delay > 0 {
			select {
			case <-time.After(f.delay):
			case <-r.Context().Done():
				return
			}
		}
		if f.status != 0 {
			w.WriteHeader(f.status)
			w.Write(f.body) //nolint:errcheck
			return
		}
		if f.etag != "" {
			w.Header().Set("ETag", f.etag)
			if r.Header.Get("If-None-Match") == f.etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		if f.contentType != "" {
			w.Header().Set("Content-Type", f.contentType)
		}
		if f.stall {
			w.Header().Set("Content-Length", fmt.Sprint(len(f.body)*2))
			w.Write(f.body) //nolint:errcheck
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		w.Write(f.body) //nolint:errcheck
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *listServer) put(path string, f served) {
	s.mu.Lock()
	s.files[path] = f
	s.mu.Unlock()
}

func domains(n int, prefix string) []byte {
	var b bytes.Buffer
	b.WriteString("# a test list\n")
	for i := range n {
		fmt.Fprintf(&b, "%s%d.example\n", prefix, i)
	}
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b) //nolint:errcheck
	zw.Close()
	return out.Bytes()
}

func fastFetcher() *Fetcher {
	return &Fetcher{Timeout: 2 * time.Second, Backoff: 10 * time.Millisecond, Tries: 2}
}

func TestRefreshGates(t *testing.T) {
	srv := newListServer(t)
	dir := t.TempDir()
	src := Source{Name: "gambling-test", URL: srv.URL + "/list.txt", Every: time.Hour, Path: filepath.Join(dir, "gambling-test.list")}
	f := fastFetcher()
	ctx := context.Background()

	// A first good copy, then a conditional refresh that the server
	// answers 304.
	srv.put("/list.txt", served{body: domains(1000, "bet"), etag: `"v1"`})
	if res := f.Refresh(ctx, src); res.Err != nil || !res.Changed || res.After != 1000 {
		t.Fatalf("first download: %+v", res)
	}
	hits := srv.hits.Load()
	if res := f.Refresh(ctx, src); res.Err != nil || !res.NotModified || res.Changed || res.After != 1000 {
		t.Fatalf("second download: %+v, want 304 not modified", res)
	}
	if srv.hits.Load() != hits+1 {
		t.Errorf("a 304 took %d requests", srv.hits.Load()-hits)
	}

	// Each bad download is refused with its reason, and the copy stays.
	big := make([]byte, 3<<20)
	cases := []struct {
		name   string
		f      served
		reason string
		tweak  func(*Fetcher, *Source)
	}{
		{"an HTML error page served as a list", served{body: []byte("<!DOCTYPE html><html><body><h1>Service unavailable</h1></body></html>")}, ReasonNotAList, nil},
		{"HTML by its content type", served{body: []byte("maintenance\nback soon\n"), contentType: "text/html; charset=utf-8"}, ReasonNotAList, nil},
		{"a truncated gzip", served{body: gz(domains(1000, "bet"))[:2000]}, ReasonTruncated, nil},
		{"under half the lines entries", served{body: []byte("one.example\nthis is not\nan entry at\nall, really\n")}, ReasonNotAList, nil},
		{"a list that shrank", served{body: domains(500, "bet"), etag: `"v2"`}, ReasonShrank, nil},
		{"a server error", served{status: 503, body: []byte("busy")}, ReasonStatus, nil},
		{"a huge response", served{body: big}, ReasonTooLarge, func(f *Fetcher, _ *Source) { f.MaxBytes = 1 << 20 }},
		{"a slow server", served{body: domains(1000, "bet"), delay: 3 * time.Second}, ReasonTimeout, func(f *Fetcher, _ *Source) { f.Timeout = 300 * time.Millisecond }},
		{"a stalled body", served{body: domains(1000, "bet"), stall: true}, ReasonTimeout, func(f *Fetcher, _ *Source) { f.Timeout = 300 * time.Millisecond }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv.put("/list.txt", c.f)
			f, s := fastFetcher(), src
			if c.tweak != nil {
				c.tweak(f, &s)
			}
			res := f.Refresh(ctx, s)
			if res.Err == nil || res.Reason != c.reason {
				t.Fatalf("got %+v, want refused for %s", res, c.reason)
			}
			if res.After != 1000 {
				t.Errorf("entries after a refusal: %d, want the last good copy's 1000", res.After)
			}
			st, err := categories.NewBuilder().LoadFile(src.Path, "", categories.Gambling)
			if err != nil || st.Added != 1000 {
				t.Errorf("the copy after a refusal: %+v, %v; want the last good one", st, err)
			}
			if m := ReadMeta(src.Path); m.Reason != c.reason || m.LastError == "" {
				t.Errorf("meta %+v, want the refusal recorded", m)
			}
		})
	}

	// allow_shrink accepts the smaller list; a gzip list is read as served.
	srv.put("/list.txt", served{body: domains(500, "bet")})
	s := src
	s.AllowShrink = true
	if res := f.Refresh(ctx, s); res.Err != nil || res.After != 500 {
		t.Fatalf("allow_shrink: %+v", res)
	}
	srv.put("/list.txt", served{body: gz(domains(600, "bet"))})
	if res := f.Refresh(ctx, src); res.Err != nil || res.After != 600 || ReadMeta(src.Path).LastError != "" {
		t.Fatalf("gzip: %+v", res)
	}
}

// utArchive builds a UT1 blacklists.tar.gz with two categories.
func ut1Archive(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	add := func(name string, body []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(body) //nolint:errcheck
	}
	tw.WriteHeader(&tar.Header{Name: "blacklists/", Mode: 0o755, Typeflag: tar.TypeDir}) //nolint:errcheck
	add("blacklists/gambling/domains", domains(n, "casino"))
	add("blacklists/gambling/urls", []byte("casino-news.example/poker/\n"))
	add("blacklists/adult/domains", domains(n, "adult"))
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestRefreshUT1(t *testing.T) {
	srv := newListServer(t)
	dir := t.TempDir()
	src := Source{Name: "ut1-test", URL: srv.URL + "/blacklists.tar.gz", MD5URL: srv.URL + "/MD5SUM", UT1: true,
		Every: time.Hour, Path: filepath.Join(dir, "ut1-test.ut1")}
	archive := ut1Archive(t, 200)
	sum := md5.Sum(archive) //nolint:gosec
	srv.put("/blacklists.tar.gz", served{body: archive})
	srv.put("/MD5SUM", served{body: []byte(hex.EncodeToString(sum[:]) + "  blacklists.tar.gz\n")})
	f := fastFetcher()
	res := f.Refresh(context.Background(), src)
	if res.Err != nil || res.After != 401 {
		t.Fatalf("good archive: %+v, want 401 entries", res)
	}
	db := categories.NewBuilder()
	if st, err := db.LoadUT1(src.Path); err != nil || st.Added != 401 {
		t.Fatalf("the unpacked copy: %+v, %v", st, err)
	}

	// A bad MD5 is refused; the copy stays.
	srv.put("/blacklists.tar.gz", served{body: ut1Archive(t, 300)})
	res = f.Refresh(context.Background(), src)
	if res.Err == nil || res.Reason != ReasonMD5 || res.After != 401 {
		t.Fatalf("bad MD5: %+v", res)
	}
	if st, err := categories.NewBuilder().LoadUT1(src.Path); err != nil || st.Added != 401 {
		t.Errorf("the copy after a bad MD5: %+v, %v", st, err)
	}
	// An archive with a name outside its folder is refused.
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "../escape", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg}) //nolint:errcheck
	tw.Write([]byte("x"))                                                                       //nolint:errcheck
	tw.Close()
	zw.Close()
	src.MD5URL = ""
	srv.put("/blacklists.tar.gz", served{body: buf.Bytes()})
	if res := f.Refresh(context.Background(), src); res.Err == nil || res.Reason != ReasonNotAList {
		t.Fatalf("escaping archive: %+v", res)
	}
	if _, err := os.Stat(filepath.Join(dir, "escape")); err == nil {
		t.Error("the archive wrote outside its folder")
	}
}

// A refresh round stops within its deadline however the sources stall.
func TestRefreshAllBounded(t *testing.T) {
	srv := newListServer(t)
	for i := range 4 {
		srv.put(fmt.Sprintf("/l%d.txt", i), served{body: domains(10, "x"), stall: true})
	}
	dir := t.TempDir()
	f := &Fetcher{Timeout: 200 * time.Millisecond, Tries: 3, Backoff: 50 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	for i := range 4 {
		s := Source{Name: fmt.Sprintf("l%d", i), URL: fmt.Sprintf("%s/l%d.txt", srv.URL, i), Path: filepath.Join(dir, fmt.Sprint(i))}
		if res := f.Refresh(ctx, s); res.Err == nil {
			t.Errorf("%s: a stalled download was accepted", s.Name)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a round of stalled sources took %v, past its deadline", d)
	}
}
