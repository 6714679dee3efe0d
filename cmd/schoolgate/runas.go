package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/config"
)

// runAs is the unprivileged user serve becomes once its listeners are
// bound (config key run_as), for a start as root outside systemd: binding
// :53, :80 and :443 needs root or CAP_NET_BIND_SERVICE, serving does not.
// Under the packaged unit systemd starts serve as that user already, with
// the one capability, and run_as has nothing left to do.
type runAs struct {
	name     string
	uid, gid int
	groups   []int
}

// prepareRunAs checks run_as before anything is opened. It returns nil when
// there is nothing to switch (not root, or already that user). Started as
// root without run_as it warns; with run_as it hands the access-log and
// state folders to that user, who writes there after the switch (the next
// day's log, checkpoints, downloaded lists).
func prepareRunAs(cfg *config.Config, logger *zap.Logger) (*runAs, error) {
	root := os.Geteuid() == 0
	if cfg.RunAs == "" {
		if root {
			logger.Warn("running with root privileges: set run_as in the config (run_as: schoolgate) " +
				"to switch to an unprivileged user once the listeners are bound")
		}
		return nil, nil
	}
	ra, err := lookupRunAs(cfg.RunAs)
	if err != nil {
		return nil, err
	}
	switch {
	case ra.uid == 0:
		return nil, fmt.Errorf("run_as %q: that is root; name an unprivileged user such as schoolgate", ra.name)
	case ra.uid == os.Geteuid():
		return nil, nil // systemd's User= did it already
	case !root:
		return nil, fmt.Errorf("run_as %q: only root can switch users, and this is uid %d; start as root or as %s",
			ra.name, os.Geteuid(), ra.name)
	}
	for _, dir := range []string{cfg.Log.Dir, cfg.StateDir} {
		if err := ra.own(dir); err != nil {
			return nil, err
		}
	}
	if err := ra.own(cfg.StateDir); err != nil { // the last log checkpoint sent
		return nil, err
	}
	return ra, nil
}

func lookupRunAs(name string) (*runAs, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("run_as %q: %w", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("run_as %q: %w", name, err)
	}
	ra := &runAs{name: name, uid: uid, gid: gid, groups: []int{gid}}
	// The user's other groups, as login would give them (setpriv
	// --init-groups): a group-readable CA key or list folder stays readable.
	if ids, err := u.GroupIds(); err == nil {
		for _, s := range ids {
			if g, err := strconv.Atoi(s); err == nil && g != gid {
				ra.groups = append(ra.groups, g)
			}
		}
	}
	return ra, nil
}

// own creates dir if needed and gives it, and what is in it, to the user.
func (ra *runAs) own(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("creating %s for run_as %q: %w", dir, ra.name, err)
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil // never follow a link out of the folder
		}
		return os.Lchown(path, ra.uid, ra.gid)
	})
	if err != nil {
		return fmt.Errorf("giving %s to run_as %q: %w", dir, ra.name, err)
	}
	return nil
}
