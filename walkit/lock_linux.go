package walkit

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockFd takes an exclusive lock on the whole file: an open-file-description
// lock (F_OFD_SETLK), which two opens in one process cannot share, falling
// back to flock where the kernel has no OFD locks.
func lockFd(f *os.File, wait bool) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	cmd := unix.F_OFD_SETLK
	if wait {
		cmd = unix.F_OFD_SETLKW
	}
	err := unix.FcntlFlock(f.Fd(), cmd, &lk)
	if errors.Is(err, unix.EINVAL) {
		return flockFd(f, wait)
	}
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return ErrLocked
	}
	return err
}
