//go:build unix

package walkit

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// flockHeld reports whether another file holds an exclusive flock on f, by
// taking a shared one without waiting and dropping it at once.
func flockHeld(f *os.File) (bool, error) {
	err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return false, unix.Flock(int(f.Fd()), unix.LOCK_UN)
}
