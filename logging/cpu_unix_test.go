//go:build unix

package logging

import (
	"syscall"
	"testing"
	"time"
)

// processCPU is the CPU time (user + system) the whole process has used:
// the callers, the writer and syncer goroutines, the runtime and the
// kernel work done for them (wake-ups, writes, fsync).
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
