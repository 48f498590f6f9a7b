package walkit

import (
	"fmt"
	"os"
)

// InUse reports whether another open file holds the lock of one of the
// WAL's segments: a running member (etcd or lifeboat) locks every segment
// from its snapshot on, the tail always among them. It takes no lock
// itself (it asks the kernel whether one could be taken), opens the
// segments read-only, and so works on a WAL it may not write. A member
// that starts while InUse runs is not seen.
func InUse(dir string) (bool, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return false, err
	}
	for _, s := range segs {
		locked, err := segmentLocked(s.Path)
		if err != nil {
			return false, err
		}
		if locked {
			return true, nil
		}
	}
	return false, nil
}

func segmentLocked(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("walkit: %w", err)
	}
	defer f.Close()
	locked, err := lockHeld(f)
	if err != nil {
		return false, fmt.Errorf("walkit: probe lock of %s: %w", path, err)
	}
	return locked, nil
}
