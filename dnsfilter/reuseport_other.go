//go:build !(linux && (amd64 || arm64 || 386 || arm || riscv64 || ppc64le || ppc64 || s390x || loong64))

package dnsfilter

import "syscall"

const reusePortSupported = false

func reusePortControl(_, _ string, _ syscall.RawConn) error { return nil }
