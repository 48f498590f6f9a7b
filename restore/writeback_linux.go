package restore

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing a range of f to disk
// without waiting for it (sync_file_range SYNC_FILE_RANGE_WRITE). It is
// no durability promise: that is the fdatasync that follows.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE) // a hint; the fdatasync reports errors
}

// datasync is fdatasync(2).
func datasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
