//go:build !linux

package main

// processFDBudget: no RLIMIT_NOFILE read here; the shares of a large limit.
func processFDBudget() fdBudget { return newFDBudget(1 << 20) }
