package main

import "syscall"

// processFDBudget is the budget for this process's RLIMIT_NOFILE.
func processFDBudget() fdBudget {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == 0 || lim.Cur > 1<<20 {
		return newFDBudget(1 << 20)
	}
	return newFDBudget(int(lim.Cur))
}
