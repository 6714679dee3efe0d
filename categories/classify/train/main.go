// Command train fits the content classifier's model on the training part
// of the evaluation set and writes categories/classify/model.txt:
//
//	go run ./categories/classify/train        # from the repository root
//
// It reads testdata/train and testdata/pages (never testdata/heldout),
// scores each page with the embedded phrase lists, fits an L2-regularised
// logistic regression per category (the strength chosen by 5-fold
// cross-validation) and prints the cross-validated figures. Training is
// deterministic: the same pages and lists give the same file.
//
//	go run ./categories/classify/train -ngrams 0.01
//
// runs the n-gram experiment instead (see docs/classifier.md) and writes
// nothing.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/schoolgate/schoolgate/categories/classify"
)

func main() {
	dir := flag.String("dir", "categories/classify", "the classify package's folder")
	out := flag.String("out", "", "where to write the model (default DIR/model.txt)")
	ngrams := flag.Float64("ngrams", 0, "run the n-gram experiment with this L2 strength instead (e.g. 0.01): train a model that also weighs hashed word n-grams, print its figures beside the model in use, write nothing")
	flag.Parse()
	if *out == "" {
		*out = filepath.Join(*dir, "model.txt")
	}
	var pages []classify.TrainPage
	for _, part := range []string{"train", "pages"} {
		ps, err := readPart(filepath.Join(*dir, "testdata", part))
		if err != nil {
			fmt.Fprintln(os.Stderr, "train:", err)
			os.Exit(1)
		}
		pages = append(pages, ps...)
	}
	c, err := classify.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(1)
	}
	if *ngrams > 0 {
		held, err := readPart(filepath.Join(*dir, "testdata", "heldout"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "train:", err)
			os.Exit(1)
		}
		rep, err := c.NgramExperiment(pages, held, *ngrams)
		if err != nil {
			fmt.Fprintln(os.Stderr, "train:", err)
			os.Exit(1)
		}
		fmt.Print(rep)
		return
	}
	model, rep, err := c.Train(pages, classify.TrainOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, model, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(1)
	}
	fmt.Printf("%d training pages; wrote %s\n%s", len(pages), *out, rep)
}

// readPart reads a part's labels.txt ("FILE LABEL [LANG]") and its pages.
func readPart(dir string) ([]classify.TrainPage, error) {
	lb, err := os.ReadFile(filepath.Join(dir, "labels.txt"))
	if err != nil {
		return nil, err
	}
	var out []classify.TrainPage
	sc := bufio.NewScanner(bytes.NewReader(lb))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("%s/labels.txt:%d: want FILE LABEL", dir, n)
		}
		b, err := os.ReadFile(filepath.Join(dir, f[0]))
		if err != nil {
			return nil, err
		}
		out = append(out, classify.TrainPage{Name: f[0], Label: f[1], HTML: b})
	}
	return out, sc.Err()
}
