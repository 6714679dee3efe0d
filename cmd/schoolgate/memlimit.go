package main

import (
	"bufio"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// memLimitShare is the part of the cgroup's memory limit given to the Go
// heap as its soft limit (GOMEMLIMIT): the rest is for stacks, the
// binary, page cache charged to the service and what the runtime cannot
// return at once.
const memLimitShare = 0.9

// tuneMemory sets the Go memory limit from the service's cgroup (the
// unit's MemoryHigh=/MemoryMax=) unless GOMEMLIMIT says otherwise: near the
// limit the collector works harder instead of letting a list refresh
// push the gateway into the OOM killer.
func tuneMemory(logger *zap.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	limit, from := cgroupMemoryLimit("/sys/fs/cgroup", "/proc/self/cgroup")
	if limit <= 0 {
		return
	}
	soft := int64(float64(limit) * memLimitShare)
	debug.SetMemoryLimit(soft)
	logger.Info("memory limit from the cgroup", zap.String("cgroup_file", from),
		zap.Int64("cgroup_limit_bytes", limit), zap.Int64("go_memory_limit_bytes", soft))
}

// cgroupMemoryLimit is the lowest memory.high or memory.max (cgroup v2) of
// the process's cgroup and its parents below root, and the file it came
// from; 0 when none is set or the files are not there.
func cgroupMemoryLimit(root, selfCgroup string) (int64, string) {
	path := ownCgroup(selfCgroup)
	if path == "" {
		return 0, ""
	}
	var (
		best int64
		from string
	)
	for dir := filepath.Join(root, path); strings.HasPrefix(dir, root) && dir != root; dir = filepath.Dir(dir) {
		for _, name := range []string{"memory.high", "memory.max"} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				continue
			}
			s := strings.TrimSpace(string(b))
			if s == "max" {
				continue
			}
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n <= 0 || n == math.MaxInt64 {
				continue
			}
			if best == 0 || n < best {
				best, from = n, filepath.Join(dir, name)
			}
		}
	}
	return best, from
}

// ownCgroup is the cgroup v2 path ("0::/system.slice/x.service") named in
// /proc/self/cgroup; "" on cgroup v1 or when unreadable.
func ownCgroup(selfCgroup string) string {
	f, err := os.Open(selfCgroup)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			return filepath.Clean("/" + p)
		}
	}
	return ""
}
