//go:build unix && !linux

package walkit

import "os"

// allocate extends the file to size; without fallocate the extension is sparse.
func allocate(f *os.File, size int64) error { return f.Truncate(size) }

// datasync syncs the file where there is no fdatasync.
func datasync(f *os.File) error { return f.Sync() }
