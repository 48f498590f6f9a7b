package fsync

import (
	"os"

	"golang.org/x/sys/unix"
)

// StartWriteback asks the kernel to start writing a range of f to disk
// without waiting for it (sync_file_range SYNC_FILE_RANGE_WRITE); n == 0
// is to the end of the file. It is no durability promise: that is the
// fdatasync that follows, which then has less left to wait for.
func StartWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE) // a hint; the fdatasync reports errors
}

// Data is fdatasync(2): f's data, and the metadata needed to read it back.
func Data(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
