package main

import (
	"errors"
	"fmt"
	"syscall"
)

// listenError is a listener that could not bind: it names the setting to
// change, since "address already in use" alone does not say which of the
// three listeners, nor where its address comes from.
type listenError struct {
	setting string // listen.proxy, listen.dns, listen.admin, listen.transparent_*
	addr    string
	err     error
}

func (e *listenError) Error() string {
	switch {
	case errors.Is(e.err, syscall.EADDRINUSE):
		return fmt.Sprintf("%s %s: address already in use - set %s in the config to another port (or stop what holds it: ss -lntup | grep %s)",
			e.setting, e.addr, e.setting, portOf(e.addr))
	case errors.Is(e.err, syscall.EACCES):
		return fmt.Sprintf("%s %s: permission denied - a port below 1024 needs root or CAP_NET_BIND_SERVICE; or set %s in the config to a port above 1023",
			e.setting, e.addr, e.setting)
	case errors.Is(e.err, syscall.EADDRNOTAVAIL):
		return fmt.Sprintf("%s %s: no such address on this machine - set %s in the config to one of its addresses",
			e.setting, e.addr, e.setting)
	}
	return fmt.Sprintf("%s %s: %v", e.setting, e.addr, e.err)
}

func (e *listenError) Unwrap() error { return e.err }

func portOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return ":" + addr[i+1:]
		}
	}
	return addr
}
