//go:build linux && (amd64 || arm64 || 386 || arm || riscv64 || ppc64le || ppc64 || s390x || loong64)

package dnsfilter

import "syscall"

const reusePortSupported = true

// soReusePort is SO_REUSEPORT on these Linux architectures (the syscall
// package does not name it).
const soReusePort = 0xf

// reusePortControl sets SO_REUSEPORT so that one UDP socket per core can
// share the address and the kernel spreads queries over them.
func reusePortControl(_, _ string, c syscall.RawConn) error {
	var opErr error
	err := c.Control(func(fd uintptr) {
		opErr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1)
	})
	if err != nil {
		return err
	}
	return opErr
}
