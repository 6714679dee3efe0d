//go:build !unix

package testenv

import "time"

// ProcessCPU: getrusage is not there; the CPU figures of the benchmarks
// read 0 on this system.
func ProcessCPU() time.Duration { return 0 }
