package lists

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/config"
)

// Why a refresh was refused or failed: the reason label of
// schoolgate_lists_refresh_failures_total.
const (
	ReasonNetwork   = "network"     // no connection, reset, DNS
	ReasonTimeout   = "timeout"     // the download took longer than allowed
	ReasonStatus    = "http_status" // an answer other than 200 or 304
	ReasonTooLarge  = "too_large"
	ReasonNotAList  = "not_a_list" // an HTML page, nothing usable, or under half the lines entries
	ReasonTruncated = "truncated"  // a gzip or tar archive that ends early
	ReasonShrank    = "shrank"     // under 70% of the last good copy's entries
	ReasonMD5       = "md5"        // a UT1 archive that does not match its published MD5
	ReasonStore     = "store"      // the copy could not be written to state_dir
)

// Defaults of a Fetcher.
const (
	DefaultTimeout  = 60 * time.Second
	DefaultMaxBytes = 256 << 20
	defaultTries    = 3
	defaultBackoff  = 2 * time.Second
	// shrinkFloor: a download with fewer entries than this share of the
	// last good copy's is refused unless the list says allow_shrink.
	shrinkFloorPercent = 70
)

// Fetcher downloads lists. The zero value uses the defaults.
type Fetcher struct {
	Client   *http.Client  // nil: a client that ignores proxy settings in the environment
	Timeout  time.Duration // one download, headers to last byte (default 60s)
	MaxBytes int64         // largest download accepted (default 256 MiB)
	Tries    int           // attempts for a failure worth retrying (default 3)
	Backoff  time.Duration // wait before the second attempt (default 2s), doubled each time
	Now      func() time.Time

	once sync.Once // sets Client when nil
}

// Result is what one refresh of one list did.
type Result struct {
	Name          string
	Before, After int  // entries of the copy in use before and after
	Changed       bool // a new copy was stored
	NotModified   bool // the server said the copy is current (304)
	Reason        string
	Err           error // why it was refused or failed; the last good copy stays
}

// refusal is an error with its reason, and whether trying again may help.
type refusal struct {
	reason string
	retry  bool
	err    error
}

func (r *refusal) Error() string { return r.err.Error() }

func refuse(reason string, retry bool, format string, args ...any) *refusal {
	return &refusal{reason: reason, retry: retry, err: fmt.Errorf(format, args...)}
}

func (f *Fetcher) defaults() (client *http.Client, timeout time.Duration, maxBytes int64, tries int, backoff time.Duration, now func() time.Time) {
	f.once.Do(func() {
		if f.Client == nil {
			// One client for every download: its idle connections are
			// reused by the next round and closed after a minute and a half.
			f.Client = &http.Client{Transport: &http.Transport{Proxy: nil, ForceAttemptHTTP2: true,
				TLSHandshakeTimeout: 15 * time.Second, ResponseHeaderTimeout: 30 * time.Second,
				IdleConnTimeout: 90 * time.Second, MaxIdleConnsPerHost: 4}}
		}
	})
	client = f.Client
	timeout, maxBytes, tries, backoff, now = f.Timeout, f.MaxBytes, f.Tries, f.Backoff, f.Now
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if tries <= 0 {
		tries = defaultTries
	}
	if backoff <= 0 {
		backoff = defaultBackoff
	}
	if now == nil {
		now = time.Now
	}
	return
}

// Refresh downloads src and, when the download passes the gates, makes it
// the last good copy. A refusal or failure leaves the copy in use as it was
// and is recorded in its meta (last_error) and in the Result.
func (f *Fetcher) Refresh(ctx context.Context, src Source) Result {
	_, _, _, tries, backoff, now := f.defaults()
	meta := ReadMeta(src.Path)
	if meta.URL != src.URL {
		meta = Meta{URL: src.URL, Entries: meta.Entries} // another source: ask unconditionally
	}
	res := Result{Name: src.Name, Before: meta.Entries, After: meta.Entries}
	var err error
	for try := 1; ; try++ {
		err = f.try(ctx, src, &meta, &res)
		var r *refusal
		if err == nil || !errors.As(err, &r) || !r.retry || try >= tries || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	if err == nil {
		return res
	}
	res.Err, res.Reason = err, ReasonNetwork
	var r *refusal
	if errors.As(err, &r) {
		res.Reason = r.reason
	}
	meta.LastError, meta.LastErrorAt, meta.Reason = err.Error(), now(), res.Reason
	if hasCopy(src.Path) || meta.Success.IsZero() {
		_ = writeMeta(src.Path, meta) // best effort: the failure is in the Result and the log
	}
	return res
}

// try is one attempt.
func (f *Fetcher) try(ctx context.Context, src Source, meta *Meta, res *Result) error {
	client, timeout, maxBytes, _, _, now := f.defaults()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.URL, nil)
	if err != nil {
		return refuse(ReasonNetwork, false, "list %s: %v", src.Name, err)
	}
	req.Header.Set("User-Agent", "schoolgate list refresh")
	if hasCopy(src.Path) {
		if meta.ETag != "" {
			req.Header.Set("If-None-Match", meta.ETag)
		}
		if meta.LastModified != "" {
			req.Header.Set("If-Modified-Since", meta.LastModified)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return netRefusal(ctx, src, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && hasCopy(src.Path):
		meta.Success, meta.LastError, meta.Reason = now(), "", ""
		res.NotModified = true
		if err := writeMeta(src.Path, *meta); err != nil {
			return refuse(ReasonStore, false, "list %s: writing its state: %v", src.Name, err)
		}
		return nil
	case resp.StatusCode != http.StatusOK:
		retry := resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
		return refuse(ReasonStatus, retry, "list %s: %s answered %s", src.Name, src.URL, resp.Status)
	case resp.ContentLength > maxBytes:
		return refuse(ReasonTooLarge, false, "list %s: %d bytes is over the limit of %d", src.Name, resp.ContentLength, maxBytes)
	}
	tmp := src.Path + ".download"
	if err := os.MkdirAll(filepath.Dir(tmp), 0o750); err != nil {
		return refuse(ReasonStore, false, "list %s: %v", src.Name, err)
	}
	defer os.Remove(tmp)
	if err := download(ctx, src, resp.Body, tmp, maxBytes); err != nil {
		return err
	}
	var entries int
	if src.UT1 {
		entries, err = f.acceptUT1(ctx, src, tmp, meta.Entries)
	} else {
		entries, err = acceptList(src, tmp, resp.Header.Get("Content-Type"), meta.Entries)
	}
	if err != nil {
		return err
	}
	t := now()
	*meta = Meta{URL: src.URL, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"),
		Success: t, Changed: t, Entries: entries}
	if err := writeMeta(src.Path, *meta); err != nil {
		return refuse(ReasonStore, false, "list %s: writing its state: %v", src.Name, err)
	}
	res.After, res.Changed = entries, true
	return nil
}

// download copies body to tmp, at most maxBytes.
func download(ctx context.Context, src Source, body io.Reader, tmp string, maxBytes int64) error {
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return refuse(ReasonStore, false, "list %s: %v", src.Name, err)
	}
	n, err := io.Copy(out, io.LimitReader(body, maxBytes+1))
	if cerr := out.Close(); err == nil && cerr != nil {
		return refuse(ReasonStore, false, "list %s: %v", src.Name, cerr)
	}
	switch {
	case err != nil:
		return netRefusal(ctx, src, err)
	case n > maxBytes:
		return refuse(ReasonTooLarge, false, "list %s: the download is over the limit of %d bytes", src.Name, maxBytes)
	}
	return nil
}

func netRefusal(ctx context.Context, src Source, err error) *refusal {
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return refuse(ReasonTimeout, true, "list %s: %s did not finish in time", src.Name, src.URL)
	}
	return refuse(ReasonNetwork, true, "list %s: %v", src.Name, err)
}

// acceptList gates a plain list download at tmp and makes it the copy.
func acceptList(src Source, tmp, contentType string, before int) (int, error) {
	if looksHTML(tmp, contentType) {
		return 0, refuse(ReasonNotAList, false, "list %s: the download is a web page, not a list", src.Name)
	}
	added, skipped, err := countEntries(src, tmp)
	if err != nil {
		return 0, err
	}
	if err := gate(src, added, skipped, before); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, src.Path); err != nil {
		return 0, refuse(ReasonStore, false, "list %s: %v", src.Name, err)
	}
	return added, nil
}

// countEntries reads tmp as the gateway will: a statutory list as the
// policy reads it, any other list with the list loader.
func countEntries(src Source, tmp string) (added, skipped int, err error) {
	if src.Statutory {
		l := config.Statutory{Name: src.Name, File: tmp}
		_, st, err := l.Load("")
		if err != nil && st.Entries+st.Skipped > 0 {
			return 0, 0, refuse(ReasonTruncated, true, "list %s: %v", src.Name, err)
		}
		return st.Entries, st.Skipped, nil
	}
	st, err := categories.NewBuilder().LoadFile(tmp, src.Format, categories.Adult)
	if err != nil {
		return 0, 0, refuse(ReasonTruncated, true, "list %s: %v", src.Name, err)
	}
	return st.Added, st.Skipped, nil
}

// gate refuses what is not a list, or shrank.
func gate(src Source, added, skipped, before int) error {
	switch {
	case added == 0:
		return refuse(ReasonNotAList, false, "list %s: the download holds no entries", src.Name)
	case added < skipped:
		return refuse(ReasonNotAList, false, "list %s: only %d of %d lines are entries", src.Name, added, added+skipped)
	case before > 0 && added*100 < before*shrinkFloorPercent && !src.AllowShrink:
		return refuse(ReasonShrank, false, "list %s: %d entries, under %d%% of the last good copy's %d (allow_shrink accepts it)",
			src.Name, added, shrinkFloorPercent, before)
	}
	return nil
}

// looksHTML reports whether a download is a web page: served as one, or
// starting (after any gzip) with markup.
func looksHTML(path, contentType string) bool {
	if strings.HasPrefix(strings.ToLower(contentType), "text/html") {
		return true
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return false
		}
		r = zr
	}
	head := make([]byte, 512)
	n, _ := io.ReadFull(r, head)
	head = bytes.ToLower(bytes.TrimLeft(head[:n], " \t\r\n\ufeff"))
	return bytes.HasPrefix(head, []byte("<!doctype")) || bytes.HasPrefix(head, []byte("<html")) ||
		bytes.HasPrefix(head, []byte("<?xml")) || bytes.HasPrefix(head, []byte("<head")) || bytes.HasPrefix(head, []byte("<body"))
}
