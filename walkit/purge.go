package walkit

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
)

// Purge removes the oldest segments of dir while more than keep remain,
// as etcd's --max-wals does. A segment that a WAL still holds locked (one
// that may hold entries not yet covered by a snapshot, see
// WAL.ReleaseLockTo) stops the purge: it and every newer segment stay.
// keep 0 removes nothing. It returns the names of the removed segments.
func Purge(lg *slog.Logger, dir string, keep int) ([]string, error) {
	if keep <= 0 {
		return nil, nil
	}
	lg = discardLogger(lg)
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, seg := range segs[:max(0, len(segs)-keep)] {
		f, err := openLocked(seg.Path, os.O_WRONLY, false)
		if errors.Is(err, ErrLocked) {
			break // still in use by the WAL
		}
		if err != nil {
			return removed, fmt.Errorf("walkit: purge %s: %w", seg.Path, err)
		}
		// Remove while holding the lock, so that no WAL opens it meanwhile.
		rmErr := os.Remove(seg.Path)
		if err := f.Close(); err != nil && rmErr == nil {
			rmErr = err
		}
		if rmErr != nil {
			return removed, fmt.Errorf("walkit: purge %s: %w", seg.Path, rmErr)
		}
		lg.Info("purged WAL segment", "segment", seg.Name)
		removed = append(removed, seg.Name)
	}
	if len(removed) > 0 {
		if err := fsyncDir(dir); err != nil {
			return removed, err
		}
	}
	return removed, nil
}
