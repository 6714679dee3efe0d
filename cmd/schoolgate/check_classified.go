package main

import (
	"fmt"
	"io"
	"time"

	"github.com/schoolgate/schoolgate/categories/classify"
	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/policy"
)

// loadClassified reads what the server's content classifier learned (its
// journal in the log folder), so that check explains a host the server
// blocks because of a page it classified. A journal that cannot be read
// is reported and ignored: check still explains the lists' verdict.
func loadClassified(cfg *config.Config, now time.Time, stderr io.Writer) *classify.Memory {
	if cfg.Log.Dir == "" {
		return nil
	}
	m, err := classify.LoadMemory(classify.JournalPath(cfg.Log.Dir), now)
	if err != nil {
		fmt.Fprintf(stderr, "schoolgate check: %v (classified hosts not shown)\n", err)
		return nil
	}
	if m.Len() == 0 {
		return nil
	}
	return m
}

// decide is the server's decision: the policy, with the classified hosts
// the way the running engine has them (policy.Engine.SetRemembered).
func (c *checker) decide(a policy.Args) policy.Decision {
	if c.classified == nil {
		return c.snap.Decide(a)
	}
	e := policy.NewEngine(c.snap, 0, nil)
	e.SetRemembered(c.classified)
	return e.Decide(a)
}
