//go:build unix && !linux

package walkit

import "os"

// lockHeld probes the flock that lockFd takes where there are no OFD locks.
func lockHeld(f *os.File) (bool, error) { return flockHeld(f) }
