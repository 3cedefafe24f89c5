//go:build unix

package config

import (
	"io/fs"
	"syscall"
)

// ownedByRoot says whether root (uid 0) owns the file.
func ownedByRoot(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0
}
