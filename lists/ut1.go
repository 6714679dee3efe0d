package lists

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/md5" //nolint:gosec // UT1 publishes MD5; it checks for a damaged or mismatched archive
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/schoolgate/schoolgate/categories"
)

// maxExtractFactor bounds what a UT1 archive may unpack to, as a multiple
// of the download limit: the UT1 archive is text and packs about 4:1.
const maxExtractFactor = 8

// acceptUT1 checks the UT1 archive at tmp against its published MD5,
// unpacks it beside the copy, gates what it holds and makes it the copy.
func (f *Fetcher) acceptUT1(ctx context.Context, src Source, tmp string, before int) (int, error) {
	if src.MD5URL != "" {
		if err := f.checkMD5(ctx, src, tmp); err != nil {
			return 0, err
		}
	}
	_, _, maxBytes, _, _, _ := f.defaults()
	staging := src.Path + ".new"
	os.RemoveAll(staging)
	defer os.RemoveAll(staging)
	if err := untar(src, tmp, staging, maxBytes*maxExtractFactor); err != nil {
		return 0, err
	}
	root := ut1Root(staging)
	st, err := categories.NewBuilder().LoadUT1(root)
	if err != nil {
		return 0, refuse(ReasonNotAList, false, "list %s: %v", src.Name, err)
	}
	if err := gate(src, st.Added, st.Skipped, before); err != nil {
		return 0, err
	}
	old := src.Path + ".old"
	os.RemoveAll(old)
	if hasCopy(src.Path) {
		if err := os.Rename(src.Path, old); err != nil {
			return 0, refuse(ReasonStore, false, "list %s: %v", src.Name, err)
		}
	}
	if err := os.Rename(root, src.Path); err != nil {
		os.Rename(old, src.Path) //nolint:errcheck // put the last good copy back
		return 0, refuse(ReasonStore, false, "list %s: %v", src.Name, err)
	}
	os.RemoveAll(old)
	return st.Added, nil
}

// checkMD5 compares the archive with the MD5 published for it (the first
// 32 hex digits of the answer, as md5sum writes them).
func (f *Fetcher) checkMD5(ctx context.Context, src Source, archive string) error {
	client, timeout, _, _, _, _ := f.defaults()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.MD5URL, nil)
	if err != nil {
		return refuse(ReasonMD5, false, "list %s: %v", src.Name, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return netRefusal(ctx, src, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return refuse(ReasonStatus, true, "list %s: %s answered %s", src.Name, src.MD5URL, resp.Status)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	want := strings.ToLower(strings.TrimSpace(string(b)))
	if i := strings.IndexAny(want, " \t\r\n"); i >= 0 {
		want = want[:i]
	}
	if len(want) != 32 {
		return refuse(ReasonMD5, false, "list %s: %s does not hold an MD5", src.Name, src.MD5URL)
	}
	fh, err := os.Open(archive)
	if err != nil {
		return refuse(ReasonStore, false, "list %s: %v", src.Name, err)
	}
	defer fh.Close()
	h := md5.New() //nolint:gosec // see the import
	if _, err := io.Copy(h, fh); err != nil {
		return refuse(ReasonStore, false, "list %s: %v", src.Name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return refuse(ReasonMD5, true, "list %s: the archive's MD5 is %s, the published one %s", src.Name, got, want)
	}
	return nil
}

// untar unpacks the gzipped tar at archive into dir: folders and regular
// files only, every name inside dir, at most limit bytes in all.
func untar(src Source, archive, dir string, limit int64) error {
	fh, err := os.Open(archive)
	if err != nil {
		return refuse(ReasonStore, false, "list %s: %v", src.Name, err)
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		return refuse(ReasonNotAList, false, "list %s: the download is not a gzip archive: %v", src.Name, err)
	}
	tr := tar.NewReader(zr)
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return refuse(ReasonTruncated, true, "list %s: reading the archive: %v", src.Name, err)
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) {
			return refuse(ReasonNotAList, false, "list %s: the archive names %q, outside its folder", src.Name, h.Name)
		}
		path := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o750); err != nil {
				return refuse(ReasonStore, false, "list %s: %v", src.Name, err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
				return refuse(ReasonStore, false, "list %s: %v", src.Name, err)
			}
			out, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
			if err != nil {
				return refuse(ReasonStore, false, "list %s: %v", src.Name, err)
			}
			n, err := io.Copy(out, io.LimitReader(tr, limit-total+1))
			out.Close()
			total += n
			if total > limit {
				return refuse(ReasonTooLarge, false, "list %s: the archive unpacks to over %d bytes", src.Name, limit)
			}
			if err != nil {
				return refuse(ReasonTruncated, true, "list %s: reading the archive: %v", src.Name, err)
			}
		default:
			// Links and devices have no place in a list archive.
		}
	}
}

// ut1Root is the folder holding the categories: the archive's single top
// folder (blacklists/) when it has one.
func ut1Root(dir string) string {
	ents, err := os.ReadDir(dir)
	if err == nil && len(ents) == 1 && ents[0].IsDir() {
		if _, ok := categories.MapUT1(ents[0].Name()); !ok {
			return filepath.Join(dir, ents[0].Name())
		}
	}
	return dir
}
