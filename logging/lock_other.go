//go:build !unix

package logging

import "os"

// lockDir does nothing where flock is not available.
func lockDir(dir string) (*os.File, error) { return nil, nil }
