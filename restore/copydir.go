package restore

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/lifeboat-dev/lifeboat/internal/fsync"
	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/snapkit/snap"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// copyMember copies a member's files into a stage: the db (once, not
// hashed), the .snap files and received dbs of the snap dir, and the WAL
// segments. Partial files (tmp*, spare segments) and .broken files are
// left behind. Nothing is synced; the caller syncs what it keeps.
func copyMember(ctx context.Context, from datadir.Layout, to datadir.Layout, progress Progress) error {
	src, err := snapkit.Resolve(from.DBPath())
	if err != nil {
		return err
	}
	if _, err := copyDB(ctx, src, to.DBPath(), false, nil, progress); err != nil {
		return err
	}
	ents, err := os.ReadDir(from.SnapDir())
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || datadir.IsTemp(n) || !(strings.HasSuffix(n, snap.Ext) || strings.HasSuffix(n, datadir.ReceivedDBSuffix)) {
			continue
		}
		if err := copyWhole(filepath.Join(from.SnapDir(), n), filepath.Join(to.SnapDir(), n)); err != nil {
			return err
		}
	}
	segs, err := walkit.ListSegments(from.WALDir())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(to.WALDir(), 0o700); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	for _, s := range segs {
		if err := copyWhole(s.Path, filepath.Join(to.WALDir(), s.Name)); err != nil {
			return err
		}
	}
	return nil
}

// copyWhole copies a file to a new one, in the kernel where it can
// (copy_file_range), and syncs it.
func copyWhole(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = fsync.Data(out)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("restore: copy %s to %s: %w", src, dst, err)
	}
	return nil
}
