package logging

import (
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/internal/testenv"
)

// processCPU is testenv.ProcessCPU: the CPU time of the whole process,
// the callers, the writer and syncer goroutines, the runtime and the
// kernel work done for them (wake-ups, writes, fsync).
func processCPU(*testing.B) time.Duration { return testenv.ProcessCPU() }
