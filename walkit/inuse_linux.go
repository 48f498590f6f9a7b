package walkit

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockHeld asks whether an exclusive lock on f could be taken now, as
// lockFd takes it: F_OFD_GETLK sees OFD and classic record locks, and a
// shared flock probe covers the fallback where the kernel has no OFD locks.
func lockHeld(f *os.File) (bool, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk)
	if err == nil && lk.Type != unix.F_UNLCK {
		return true, nil
	}
	if err != nil && !errors.Is(err, unix.EINVAL) {
		return false, err
	}
	return flockHeld(f)
}
