package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The names inside a data dir.
const (
	memberDirName = "member"
	walDirName    = "wal"
	snapDirName   = "snap"
	dbName        = "db"

	// TempPrefix starts the name of every partial file in the snap dir.
	// Leftovers with it are removed when a member starts.
	TempPrefix = "tmp"
	// legacyTempPrefix is what etcd's backend defrag leaves behind (db.tmp.*).
	legacyTempPrefix = dbName + "." + TempPrefix

	// ReceivedDBSuffix ends the name of a db received with a snapshot.
	ReceivedDBSuffix = ".snap.db"
	// InstalledSuffix ends the name of the empty file that says the db
	// was put in place from the snapshot at its index (whose db may be
	// ahead of that index: the leader sends its backend as it is).
	InstalledSuffix = ".snap.installed"
)

// ErrNotDataDir means a path holds no member dir.
var ErrNotDataDir = errors.New("datadir: not a data dir (no member/ directory)")

// Layout is the set of paths of one member's data dir.
type Layout struct {
	// DataDir is --data-dir.
	DataDir string
	// DedicatedWALDir is --wal-dir; empty means <data-dir>/member/wal.
	DedicatedWALDir string
}

// New is the layout of dataDir with an optional dedicated WAL dir.
func New(dataDir, walDir string) Layout { return Layout{DataDir: dataDir, DedicatedWALDir: walDir} }

// MemberDir is <data-dir>/member.
func (l Layout) MemberDir() string { return filepath.Join(l.DataDir, memberDirName) }

// SnapDir is <data-dir>/member/snap.
func (l Layout) SnapDir() string { return filepath.Join(l.MemberDir(), snapDirName) }

// WALDir is --wal-dir, or <data-dir>/member/wal.
func (l Layout) WALDir() string {
	if l.DedicatedWALDir != "" {
		return l.DedicatedWALDir
	}
	return filepath.Join(l.MemberDir(), walDirName)
}

// DBPath is <data-dir>/member/snap/db.
func (l Layout) DBPath() string { return filepath.Join(l.SnapDir(), dbName) }

// ReceivedDBPath is where the db of the snapshot at index is received.
func (l Layout) ReceivedDBPath(index uint64) string {
	return filepath.Join(l.SnapDir(), ReceivedDBName(index))
}

// ReceivedDBName is the file name of the db received with the snapshot at index.
func ReceivedDBName(index uint64) string { return fmt.Sprintf("%016x%s", index, ReceivedDBSuffix) }

// InstalledPath is the file that says the db was put in place from the
// snapshot at index.
func (l Layout) InstalledPath(index uint64) string {
	return filepath.Join(l.SnapDir(), fmt.Sprintf("%016x%s", index, InstalledSuffix))
}

// Dirs are the directories a member creates before it starts, parents
// first. The WAL dir itself is not among them: walkit creates it whole,
// by renaming a complete temporary dir.
func (l Layout) Dirs() []string {
	return []string{l.DataDir, l.MemberDir(), l.SnapDir(), filepath.Dir(l.WALDir())}
}

// IsTemp reports whether a name in the snap dir is a partial file that a
// starting member removes.
func IsTemp(name string) bool {
	return strings.HasPrefix(name, TempPrefix) || strings.HasPrefix(name, legacyTempPrefix)
}

// CreateTemp creates a partial file in the snap dir, to be renamed into
// place once it is complete and synced.
func (l Layout) CreateTemp() (*os.File, error) { return os.CreateTemp(l.SnapDir(), TempPrefix) }

// Exists reports whether the data dir has a member dir: etcd takes such a
// dir for an existing member.
func (l Layout) Exists() bool {
	fi, err := os.Stat(l.MemberDir())
	return err == nil && fi.IsDir()
}

// Locate finds the data dir that path names: the data dir itself, or its
// member dir. A path that is neither yields ErrNotDataDir.
func Locate(path string) (Layout, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Layout{}, fmt.Errorf("datadir: %w", err)
	}
	if !fi.IsDir() {
		return Layout{}, fmt.Errorf("datadir: %s: %w", path, ErrNotDataDir)
	}
	if l := New(path, ""); l.Exists() {
		return l, nil
	}
	if filepath.Base(filepath.Clean(path)) == memberDirName {
		if _, err := os.Stat(filepath.Join(path, snapDirName)); err == nil {
			return New(filepath.Dir(filepath.Clean(path)), ""), nil
		}
		if _, err := os.Stat(filepath.Join(path, walDirName)); err == nil {
			return New(filepath.Dir(filepath.Clean(path)), ""), nil
		}
	}
	return Layout{}, fmt.Errorf("datadir: %s: %w", path, ErrNotDataDir)
}
