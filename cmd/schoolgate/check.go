package main

import (
	"fmt"
	"io"
)

func runCheck(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "schoolgate: not implemented yet")
	return 2
}
