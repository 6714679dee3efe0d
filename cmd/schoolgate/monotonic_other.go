//go:build !linux

package main

// monotonicUsec: systemd runs only on Linux.
func monotonicUsec() (int64, bool) { return 0, false }
