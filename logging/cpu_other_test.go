//go:build !unix

package logging

import (
	"testing"
	"time"
)

// processCPU: getrusage is not there; the CPU figures of the benchmarks
// read 0 on this system.
func processCPU(*testing.B) time.Duration { return 0 }
