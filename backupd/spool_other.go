//go:build !linux

package backupd

import "os"

// preallocate is a no-op where fallocate is not available.
func preallocate(*os.File, int64) {}
