//go:build !unix

package config

import "io/fs"

// ownedByRoot: systems without Unix owners have no root-owned files.
func ownedByRoot(fs.FileInfo) bool { return false }
