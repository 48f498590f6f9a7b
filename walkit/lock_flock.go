//go:build unix

package walkit

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// flockFd takes an exclusive flock on the file.
func flockFd(f *os.File, wait bool) error {
	how := unix.LOCK_EX
	if !wait {
		how |= unix.LOCK_NB
	}
	err := unix.Flock(int(f.Fd()), how)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return ErrLocked
	}
	return err
}
