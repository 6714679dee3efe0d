package main

import (
	"bufio"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
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

// cgroupMemoryLimit is the lowest memory limit of the process's cgroup and
// its parents, and the file it came from; 0 when none is set or the files
// are not there. cgroup v2 (Debian 11 and later): memory.high and
// memory.max below root; v1: the memory controller's memory.limit_in_bytes
// (systemd maps MemoryMax= there; v1 has no MemoryHigh=).
func cgroupMemoryLimit(root, selfCgroup string) (int64, string) {
	v2, v1 := ownCgroup(selfCgroup)
	var (
		best int64
		from string
	)
	consider := func(path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			return
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return
		}
		n, err := strconv.ParseInt(s, 10, 64)
		// v1 writes "no limit" as the largest page-aligned count.
		if err != nil || n <= 0 || n >= math.MaxInt64/2 {
			return
		}
		if best == 0 || n < best {
			best, from = n, path
		}
	}
	if v2 != "" {
		for dir := filepath.Join(root, v2); strings.HasPrefix(dir, root) && dir != root; dir = filepath.Dir(dir) {
			consider(filepath.Join(dir, "memory.high"))
			consider(filepath.Join(dir, "memory.max"))
		}
	}
	if v1 != "" {
		mem := filepath.Join(root, "memory")
		for dir := filepath.Join(mem, v1); strings.HasPrefix(dir, mem); dir = filepath.Dir(dir) {
			consider(filepath.Join(dir, "memory.limit_in_bytes"))
			if dir == mem {
				break
			}
		}
	}
	return best, from
}

// ownCgroup reads /proc/self/cgroup: the cgroup v2 path (line "0::/x") and
// the v1 memory controller's path (line "N:memory:/x"), "" where absent.
func ownCgroup(selfCgroup string) (v2, v1 string) {
	f, err := os.Open(selfCgroup)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = filepath.Clean("/" + parts[2])
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			v1 = filepath.Clean("/" + parts[2])
		}
	}
	return v2, v1
}
