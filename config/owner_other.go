//go:build !unix

package config

import (
	"io/fs"
	"os"
)

// keepOwner: file ownership is not carried over on this system.
func keepOwner(*os.File, fs.FileInfo) error { return nil }
