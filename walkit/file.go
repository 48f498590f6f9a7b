package walkit

import (
	"errors"
	"fmt"
	"os"

	"github.com/lifeboat-dev/lifeboat/internal/fsync"
)

// ErrLocked means another process (or another open file) holds a segment's lock.
var ErrLocked = errors.New("walkit: file already locked")

// openLocked opens path and locks it; with wait false a held lock gives ErrLocked.
func openLocked(path string, flag int, wait bool) (*os.File, error) {
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		return nil, fmt.Errorf("walkit: %w", err)
	}
	if err := lockFd(f, wait); err != nil {
		f.Close()
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("%w: %s", err, path)
		}
		return nil, fmt.Errorf("walkit: lock %s: %w", path, err)
	}
	return f, nil
}

// preallocate extends f to size bytes with allocated blocks (fallocate),
// falling back to a sparse extension where the file system cannot.
func preallocate(f *os.File, size int64) error {
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if info.Size() >= size {
		return nil
	}
	if err := allocate(f, size); err != nil {
		return fmt.Errorf("walkit: preallocate %s to %d bytes: %w", f.Name(), size, err)
	}
	return nil
}

// zeroToEnd truncates f at off and preallocates it back to its former size,
// so that everything after off reads as zeros.
func zeroToEnd(f *os.File, off int64) error {
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if err := f.Truncate(off); err != nil {
		return fmt.Errorf("walkit: truncate %s at %d: %w", f.Name(), off, err)
	}
	return preallocate(f, info.Size())
}

// fdatasync flushes f's data to stable storage.
func fdatasync(f *os.File) error {
	if err := datasync(f); err != nil {
		return fmt.Errorf("walkit: fdatasync %s: %w", f.Name(), err)
	}
	return nil
}

// fsyncDir syncs a directory so that renames in it are durable.
func fsyncDir(dir string) error {
	if err := fsync.Dir(dir); err != nil {
		return fmt.Errorf("walkit: %w", err)
	}
	return nil
}
