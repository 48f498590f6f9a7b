package restore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lifeboat-dev/lifeboat/internal/fsync"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
)

// stageDirName is the temporary data dir, inside the destination data dir,
// in which a new member dir is built before it is renamed into place. A
// leftover of an interrupted run is removed by the next one.
const stageDirName = ".lifeboat-restore.tmp"

// stage is a member dir under construction.
type stage struct {
	final datadir.Layout // where it goes
	tmp   datadir.Layout // where it is built; the WAL dir is final's when dedicated
	made  []string       // directories created for it, to remove on failure
}

// newStage checks that final may be written (its data dir absent or empty
// but for a leftover stage, a dedicated WAL dir absent) and creates the
// stage's snap dir.
func newStage(final datadir.Layout) (*stage, error) {
	if final.DataDir == "" {
		return nil, usageErr("no data dir given")
	}
	st := &stage{final: final}
	tmpDir := filepath.Join(final.DataDir, stageDirName)
	ents, err := os.ReadDir(final.DataDir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		st.made = append(st.made, final.DataDir)
	case err != nil:
		return nil, fmt.Errorf("restore: %w", err)
	}
	for _, e := range ents {
		if e.Name() != stageDirName {
			return nil, usageErr("data dir %s is not empty (it holds %s)", final.DataDir, e.Name())
		}
	}
	if final.DedicatedWALDir != "" {
		if _, err := os.Lstat(final.DedicatedWALDir); err == nil {
			return nil, usageErr("WAL dir %s exists", final.DedicatedWALDir)
		}
	}
	if err := os.RemoveAll(tmpDir); err != nil {
		return nil, fmt.Errorf("restore: remove leftover %s: %w", tmpDir, err)
	}
	st.tmp = datadir.New(tmpDir, final.DedicatedWALDir)
	for _, d := range st.tmp.Dirs() {
		if err := os.MkdirAll(d, 0o700); err != nil {
			st.abort()
			return nil, fmt.Errorf("restore: %w", err)
		}
	}
	return st, nil
}

// commit syncs the stage's member dir, renames it to the final member dir
// and syncs the data dir. The files inside must already be synced.
func (st *stage) commit() error {
	if err := syncDir(st.tmp.MemberDir()); err != nil {
		return err
	}
	if err := os.Rename(st.tmp.MemberDir(), st.final.MemberDir()); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := os.Remove(st.tmp.DataDir); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := syncDir(st.final.DataDir); err != nil {
		return err
	}
	if len(st.made) > 0 {
		return syncDir(filepath.Dir(filepath.Clean(st.final.DataDir)))
	}
	return nil
}

// abort removes what the stage created: its temporary dir, a dedicated WAL
// dir made for it, and the data dir if it made it.
func (st *stage) abort() {
	if st.tmp.DataDir != "" {
		os.RemoveAll(st.tmp.DataDir)
	}
	if st.final.DedicatedWALDir != "" {
		os.RemoveAll(st.final.DedicatedWALDir)
		os.RemoveAll(filepath.Clean(st.final.DedicatedWALDir) + ".tmp")
	}
	for _, d := range st.made {
		os.Remove(d)
	}
}

// removeStage removes what an interrupted commit may leave in a data dir
// whose member dir is in place: the emptied stage dir.
func removeStage(dataDir string) error {
	if err := os.RemoveAll(filepath.Join(dataDir, stageDirName)); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

// syncDir makes the renames and creations in dir durable.
func syncDir(dir string) error {
	if err := fsync.Dir(dir); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

// syncFile flushes a file's data (fdatasync) before it is renamed into place.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	err = fsync.Data(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("restore: fdatasync %s: %w", path, err)
	}
	return nil
}
