package main

import (
	"fmt"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
)

// service tells systemd (Type=notify) where serve is: READY=1 once the
// lists are loaded and every listener is bound, RELOADING=1 and READY=1
// around a SIGHUP reload, STOPPING=1 on the way out, and WATCHDOG=1 from
// the signal loop, so a loop that stops turning gets the service
// restarted. Outside systemd (no NOTIFY_SOCKET) every call does nothing.
type service struct {
	logger *zap.Logger
	tick   *time.Ticker // nil: no watchdog asked for
}

func newService(logger *zap.Logger) *service {
	s := &service{logger: logger}
	// systemd kills the service when a whole WatchdogSec passes without a
	// ping; pinging at half of it leaves room for a slow turn of the loop.
	if d, err := daemon.SdWatchdogEnabled(false); err != nil {
		logger.Warn("systemd watchdog settings unreadable; not feeding it", zap.Error(err))
	} else if d > 0 {
		s.tick = time.NewTicker(d / 2)
	}
	return s
}

// watchdog is the channel the signal loop waits on to feed the watchdog;
// nil (never ready) when there is none.
func (s *service) watchdog() <-chan time.Time {
	if s.tick == nil {
		return nil
	}
	return s.tick.C
}

func (s *service) ready(status string) { s.notify("READY=1\nSTATUS=" + status) }

// reloading announces a reload. systemd 253 and later want the
// CLOCK_MONOTONIC time with it, to tell this reload from an earlier one.
func (s *service) reloading() {
	msg := "RELOADING=1\nSTATUS=reloading"
	if us, ok := monotonicUsec(); ok {
		msg += fmt.Sprintf("\nMONOTONIC_USEC=%d", us)
	}
	s.notify(msg)
}

func (s *service) alive() { s.notify(daemon.SdNotifyWatchdog) }

func (s *service) stopping() {
	if s.tick != nil {
		s.tick.Stop()
	}
	s.notify("STOPPING=1\nSTATUS=stopping")
}

func (s *service) notify(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		s.logger.Warn("telling systemd the state", zap.Error(err))
	}
}
