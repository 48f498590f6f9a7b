package snapkit

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/snapkit/snap"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// TrailerSize is the length of the SHA-256 that `etcdctl snapshot save`
// appends to the db.
const TrailerSize = sha256.Size

// Sentinel errors. Test them with errors.Is.
var (
	// ErrNoDB means a directory holds no member/snap/db.
	ErrNoDB = errors.New("snapkit: no member/snap/db in directory")
	// ErrNotBolt means the file has no valid bbolt meta page.
	ErrNotBolt = errors.New("snapkit: not a bbolt file")
	// ErrLocked means a running process holds the db (an etcd member, most
	// likely): walkit's, the error of a file lock held elsewhere.
	ErrLocked = walkit.ErrLocked
	// ErrSnapshotHash means a snapshot's SHA-256 trailer does not match its
	// db: the file, or the stream it was saved from, is corrupt.
	ErrSnapshotHash = errors.New("snapkit: snapshot hash mismatch")
	// ErrDamaged means the structural walk found damage; the findings say where.
	ErrDamaged = errors.New("snapkit: db is damaged")
)

// Kind says what a path given by the user turned out to be.
type Kind string

// The kinds of input.
const (
	KindSnapshot Kind = "snapshot" // a file with the SHA-256 trailer
	KindDBFile   Kind = "db"       // a bbolt file without a trailer, e.g. a copied member/snap/db
	KindDataDir  Kind = "data-dir" // a data dir (or its member dir); the db is member/snap/db
	KindSnap     Kind = "snap"     // a raft snapshot file, <term>-<index>.snap: no db (InspectSnap)
)

// Source is a resolved input: which bbolt file to read, and how much of it is db.
type Source struct {
	Path       string `json:"path"`   // as given
	DBPath     string `json:"dbPath"` // the file that holds the db
	Kind       Kind   `json:"kind"`
	FileSize   int64  `json:"fileSize"`
	DBSize     int64  `json:"dbSize"` // FileSize without the trailer
	HasTrailer bool   `json:"hasTrailer"`
}

// HasTrailer reports whether a file of this size carries the SHA-256
// trailer, by etcd's rule (size % 512 == 32).
func HasTrailer(size int64) bool { return size%512 == TrailerSize }

// Resolve finds the db behind a snapshot file, a db file, a data dir or a
// member dir, or recognises a raft .snap file (by its extension), which
// holds no db. It reads nothing but directory entries and sizes.
func Resolve(path string) (Source, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Source{}, fmt.Errorf("snapkit: %w", err)
	}
	src := Source{Path: path, DBPath: path}
	if fi.IsDir() {
		src.Kind = KindDataDir
		layout, err := datadir.Locate(path)
		if err != nil {
			return Source{}, fmt.Errorf("%w: %s", ErrNoDB, path)
		}
		src.DBPath = layout.DBPath()
		if fi, err = os.Stat(src.DBPath); err != nil || !fi.Mode().IsRegular() {
			return Source{}, fmt.Errorf("%w: %s", ErrNoDB, path)
		}
	} else if !fi.Mode().IsRegular() {
		return Source{}, fmt.Errorf("snapkit: %s: not a regular file", path)
	}
	src.FileSize = fi.Size()
	src.DBSize = src.FileSize
	if src.Kind == "" && filepath.Ext(path) == snap.Ext {
		src.Kind, src.DBPath, src.DBSize = KindSnap, "", 0
	}
	if src.Kind == "" {
		src.Kind = KindDBFile
		if HasTrailer(src.FileSize) {
			src.Kind = KindSnapshot
		}
	}
	if src.Kind == KindSnapshot {
		src.HasTrailer = true
		src.DBSize -= TrailerSize
	}
	return src, nil
}

// Describe says in a few words what the source is, for tables and errors.
func (s Source) Describe() string {
	switch s.Kind {
	case KindSnapshot:
		return "snapshot file with SHA-256 trailer"
	case KindDataDir:
		return "data dir, " + s.DBPath
	case KindSnap:
		return "raft .snap file (metadata and v2 store; no db)"
	default:
		return "no hash trailer: a copied member/snap/db?"
	}
}
