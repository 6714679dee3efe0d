package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// drop becomes the user for good. Since Go 1.16 these calls change every
// thread of the process, not only the caller's. With real, effective and
// saved ids all leaving 0, the kernel clears the capability sets too; both
// are checked afterwards rather than trusted.
func (ra *runAs) drop() error {
	if err := syscall.Setgroups(ra.groups); err != nil {
		return fmt.Errorf("run_as %q: setting groups: %w", ra.name, err)
	}
	if err := syscall.Setresgid(ra.gid, ra.gid, ra.gid); err != nil {
		return fmt.Errorf("run_as %q: setting gid %d: %w", ra.name, ra.gid, err)
	}
	if err := syscall.Setresuid(ra.uid, ra.uid, ra.uid); err != nil {
		return fmt.Errorf("run_as %q: setting uid %d: %w", ra.name, ra.uid, err)
	}
	if syscall.Setresuid(0, 0, 0) == nil {
		return fmt.Errorf("run_as %q: root could be taken back after the switch", ra.name)
	}
	if caps, err := permittedCaps(); err != nil {
		return fmt.Errorf("run_as %q: %w", ra.name, err)
	} else if caps != "0000000000000000" {
		return fmt.Errorf("run_as %q: capabilities %s survived the switch (securebits?)", ra.name, caps)
	}
	return nil
}

// permittedCaps is the CapPrm line of /proc/self/status.
func permittedCaps() (string, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapPrm:"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no CapPrm in /proc/self/status")
}
