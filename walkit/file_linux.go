package walkit

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// allocate reserves blocks up to size with fallocate, extending the file, and
// falls back to a sparse extension where the file system cannot.
func allocate(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINTR) {
		err = f.Truncate(size)
	}
	return err
}

// datasync is fdatasync(2).
func datasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
