//go:build !unix || aix

package dirlock

import "os"

// lock takes no lock where flock(2) does not exist; see the package doc.
func lock(*os.File) error { return nil }
