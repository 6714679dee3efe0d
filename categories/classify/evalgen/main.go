// Command evalgen renders the classifier's evaluation pages from their
// page specs: testdata/eval/PART/*.txt → testdata/PART/*.html and
// testdata/PART/labels.txt, for PART train and heldout.
//
//	go run ./categories/classify/evalgen            # from the repository root
//
// A spec holds the words of each page, written one page at a time (title,
// navigation, headings, paragraphs, lists, forms, tables, links); this
// program only wraps them in HTML. The wrapping varies with the page (one
// of several layouts, picked by a hash of the page's name: plain
// document, site with header and sidebar, forum table, landing page with
// hero and cookie banner, article with footnotes), with scripts, styles,
// JSON-LD and icons that a scorer must skip, so that pages differ in
// structure as well as in words. The output is deterministic; the
// classify tests check that the committed pages match it.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/schoolgate/schoolgate/categories/classify/evalgen/spec"
)

func main() {
	dir := flag.String("dir", "categories/classify/testdata", "the testdata folder")
	flag.Parse()
	for _, part := range spec.Parts {
		pages, err := spec.LoadPart(filepath.Join(*dir, "eval", part))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := spec.WritePart(filepath.Join(*dir, part), pages); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%s: %d pages\n", part, len(pages))
	}
}
