package snap

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/internal/fsync"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// brokenExt is appended to a .snap file that does not decode.
const brokenExt = ".broken"

// Snapshotter saves and loads the .snap files of one directory
// (member/snap).
type Snapshotter struct {
	lg  *slog.Logger
	dir string
}

// New returns a Snapshotter for dir. lg may be nil.
func New(lg *slog.Logger, dir string) *Snapshotter {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Snapshotter{lg: lg, dir: dir}
}

// Dir returns the directory of the snapshotter.
func (s *Snapshotter) Dir() string { return s.dir }

// SaveSnap writes snapshot as Name(term, index): to a temporary file first,
// fsynced, then renamed into place, then the directory is fsynced. An empty
// snapshot (raft.IsEmptySnap) is not written.
func (s *Snapshotter) SaveSnap(snapshot raftpb.Snapshot) error {
	if raft.IsEmptySnap(snapshot) {
		return nil
	}
	b, err := Encode(&snapshot)
	if err != nil {
		return err
	}
	name := Name(snapshot.Metadata.Term, snapshot.Metadata.Index)
	f, err := os.CreateTemp(s.dir, "tmp-"+name+"-*")
	if err != nil {
		return fmt.Errorf("snap: save %s: %w", name, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("snap: save %s: %w", name, err)
	}
	if err := fsync.Dir(s.dir); err != nil {
		return fmt.Errorf("snap: save %s: %w", name, err)
	}
	s.lg.Info("snap: saved snapshot", "file", name, "term", snapshot.Metadata.Term, "index", snapshot.Metadata.Index)
	return nil
}

// Names returns the .snap file names of the directory, newest first. Files
// with other names are ignored, and a *.snap file that is not named
// %016x-%016x.snap with a warning.
func (s *Snapshotter) Names() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("snap: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), Ext) {
			continue
		}
		if _, _, err := ParseName(e.Name()); err != nil {
			s.lg.Warn("snap: ignoring file", "dir", s.dir, "error", err)
			continue
		}
		names = append(names, e.Name())
	}
	slices.Sort(names)
	slices.Reverse(names)
	return names, nil
}

// Load returns the newest snapshot that decodes. Files that do not are
// renamed to <name>.broken. With none left it returns ErrNoSnapshot.
func (s *Snapshotter) Load() (*raftpb.Snapshot, error) {
	return s.loadMatching(func(*raftpb.Snapshot) bool { return true })
}

// LoadNewestAvailable returns the newest snapshot that decodes and whose
// (term, index) is one of walSnaps, the WAL's snapshot records (as
// walkit.ValidSnapshotEntries lists them). Files that do not decode are
// renamed to <name>.broken, as in Load.
func (s *Snapshotter) LoadNewestAvailable(walSnaps []walkit.Snapshot) (*raftpb.Snapshot, error) {
	return s.loadMatching(inWAL(walSnaps))
}

// NewestAvailable finds what LoadNewestAvailable would load without
// changing anything: the newest file that decodes and matches walSnaps,
// its name, and the names of the files that do not decode (which a load
// renames to .broken). With no match it returns ErrNoSnapshot.
func (s *Snapshotter) NewestAvailable(walSnaps []walkit.Snapshot) (name string, snap *raftpb.Snapshot, broken []string, err error) {
	names, err := s.Names()
	if err != nil {
		return "", nil, nil, err
	}
	ok := inWAL(walSnaps)
	for _, name := range names {
		snap, err := Read(filepath.Join(s.dir, name))
		if err != nil {
			broken = append(broken, name)
			continue
		}
		if ok(snap) {
			return name, snap, broken, nil
		}
	}
	return "", nil, broken, fmt.Errorf("%w in %s", ErrNoSnapshot, s.dir)
}

// inWAL matches a snapshot whose (term, index) is one of walSnaps.
func inWAL(walSnaps []walkit.Snapshot) func(*raftpb.Snapshot) bool {
	return func(snap *raftpb.Snapshot) bool {
		m := snap.Metadata
		return slices.ContainsFunc(walSnaps, func(w walkit.Snapshot) bool {
			return w.Term == m.Term && w.Index == m.Index
		})
	}
}

// loadMatching returns the newest snapshot that decodes and satisfies ok.
func (s *Snapshotter) loadMatching(ok func(*raftpb.Snapshot) bool) (*raftpb.Snapshot, error) {
	names, err := s.Names()
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		path := filepath.Join(s.dir, name)
		snap, err := Read(path)
		if err != nil {
			s.lg.Warn("snap: cannot load snapshot, renaming it", "file", name, "to", name+brokenExt, "error", err)
			if rerr := os.Rename(path, path+brokenExt); rerr != nil {
				s.lg.Warn("snap: rename of broken snapshot failed", "file", name, "error", rerr)
			}
			continue
		}
		if ok(snap) {
			return snap, nil
		}
	}
	return nil, fmt.Errorf("%w in %s", ErrNoSnapshot, s.dir)
}
