//go:build unix && !linux

package walkit

import "os"

// lockFd takes an exclusive flock on the file where there are no OFD locks.
func lockFd(f *os.File, wait bool) error { return flockFd(f, wait) }
