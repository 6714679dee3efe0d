//go:build unix

package testenv

import (
	"syscall"
	"time"
)

// ProcessCPU is the CPU time (user + system) the whole process has used:
// the benchmark's goroutines, the servers it runs, the runtime and the
// kernel work done for them. On a busy shared machine wall-clock ns/op
// swings twofold from run to run; CPU per operation ("cpu-ns/op") much
// less, since time spent waiting for a core is not counted.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
