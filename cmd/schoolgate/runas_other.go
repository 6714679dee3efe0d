//go:build !linux

package main

import "fmt"

// drop: switching every thread's user is done here only on Linux.
func (ra *runAs) drop() error {
	return fmt.Errorf("run_as %q: switching users is supported on Linux only", ra.name)
}
