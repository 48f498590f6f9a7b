package restore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

// Backup is one restorable point held by a Source. List fills what it can
// cheaply (ID, Kind, Location, Time, Size); Describe the rest.
type Backup struct {
	// ID names the backup within its source (a file name, an object key).
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`     // snapkit.KindSnapshot, KindDBFile or KindDataDir
	Location string    `json:"location"` // a path, or a URL
	Time     time.Time `json:"time"`     // when it was taken, as well as the source knows
	Size     int64     `json:"size"`

	// Described is set once Describe has read the backup.
	Described       bool   `json:"described"`
	Revision        int64  `json:"revision,omitempty"`
	CompactRevision int64  `json:"compactRevision,omitempty"`
	ConsistentIndex uint64 `json:"consistentIndex,omitempty"` // the raft index it holds
	Term            uint64 `json:"term,omitempty"`
	// ClusterID is the cluster's ID when the source records it (a data
	// dir's WAL, a backup manifest), hex; a bare snapshot file does not.
	ClusterID string          `json:"clusterID,omitempty"`
	Members   []schema.Member `json:"members,omitempty"`
	// SHA256 is the trailer's (hex) and HashOK whether the db matches it;
	// Hash is etcdutl snapshot status's CRC-32C of the whole db.
	SHA256 string `json:"sha256,omitempty"`
	HashOK bool   `json:"hashOK"`
	Hash   uint32 `json:"hash,omitempty"`
	// CompactedHashKV, if set, is HashKV of the db as compacted above its
	// current revision (the last put of each live key): what a member
	// restored from it with a bump answers at its new revision, before the
	// bump's marker pair. DescribeDB computes it in its walk.
	CompactedHashKV *uint32 `json:"compactedHashKV,omitempty"`
	// keep is the keep set of a compaction above its revision, from the
	// walk that described a snapshot whose trailer it verified.
	keep *snapkit.KeepSet
	// Problems are what makes the backup unusable or doubtful (damage, a
	// hash mismatch, no trailer).
	Problems []string `json:"problems,omitempty"`
}

// Usable reports whether the backup was described and found sound.
func (b *Backup) Usable() bool { return b.Described && len(b.Problems) == 0 }

// Source is where backups come from: snapshot files, a surviving data dir,
// and a backupd bucket (through a BucketOpener).
type Source interface {
	// String says what the source is, for reports.
	String() string
	// List returns the backups, oldest first.
	List(ctx context.Context) ([]Backup, error)
	// Describe reads one backup: its revision, raft index, members, and
	// whether its hash holds. Its Location is a local path (a bucket
	// source fetches the backup first).
	Describe(ctx context.Context, id string) (*Backup, error)
	// Open gives a local path to restore the backup from (a bucket source
	// downloads it first) and a function to call when done with it.
	Open(ctx context.Context, id string) (path string, release func() error, err error)
}

// BucketOptions say how a bucket source reads its backups.
type BucketOptions struct {
	// Prefix is the backups' prefix in the bucket (backupd's --prefix).
	Prefix string
	// IdentityFiles are age identity files, for encrypted backups.
	IdentityFiles []string
	// Dir keeps the fetched snapshot files; "" means a temporary dir that
	// the source removes on Close, and a release of Open removes its file.
	Dir string
}

// BucketOpener makes the Source of a bucket URL (s3://, gs://, file://...).
// restore has none of its own, so that it never imports backupd:
// backupd/restoresource.Open is one, and cmd/restore wires it in.
type BucketOpener func(ctx context.Context, lg *slog.Logger, url string) (Source, error)

// ErrNotYet marks what is planned but not built.
var ErrNotYet = errors.New("restore: not yet supported")

// IsBucketURL reports whether a --from argument is a URL rather than a path.
func IsBucketURL(arg string) bool { return strings.Index(arg, "://") > 0 }

// OpenSource makes the Source for a --from argument: a bucket URL (through
// buckets), a data dir, a snapshot file, or a directory of snapshot files.
func OpenSource(ctx context.Context, lg *slog.Logger, arg string, buckets BucketOpener) (Source, error) {
	if IsBucketURL(arg) {
		if buckets == nil {
			return nil, fmt.Errorf("%w: bucket source %s: this build has no bucket opener; use a local snapshot file or directory", ErrNotYet, arg)
		}
		return buckets(ctx, lg, arg)
	}
	fi, err := os.Stat(arg)
	if err != nil {
		return nil, fmt.Errorf("restore: source %w", err)
	}
	if fi.IsDir() {
		if l, err := datadir.Locate(arg); err == nil {
			return &DataDirSource{Layout: l, lg: lg}, nil
		}
	}
	return &SnapshotFiles{Path: arg, lg: lg}, nil
}

// SnapshotFiles is a snapshot file, or a directory of them (the files
// that hold a SHA-256 trailer by etcd's size rule).
type SnapshotFiles struct {
	Path string
	lg   *slog.Logger
}

func (s *SnapshotFiles) String() string { return "snapshot files " + s.Path }

// List returns the file, or the directory's snapshot files by time.
func (s *SnapshotFiles) List(ctx context.Context) ([]Backup, error) {
	fi, err := os.Stat(s.Path)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if !fi.IsDir() {
		b, err := s.entry(s.Path)
		if err != nil {
			return nil, err
		}
		return []Backup{b}, nil
	}
	ents, err := os.ReadDir(s.Path)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	var out []Backup
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := s.entry(filepath.Join(s.Path, e.Name()))
		if err != nil || b.Kind != string(snapkit.KindSnapshot) {
			continue
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Backup) int { return a.Time.Compare(b.Time) })
	return out, nil
}

func (s *SnapshotFiles) entry(path string) (Backup, error) {
	src, err := snapkit.Resolve(path)
	if err != nil {
		return Backup{}, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return Backup{}, fmt.Errorf("restore: %w", err)
	}
	return Backup{ID: filepath.Base(path), Kind: string(src.Kind), Location: path, Time: fi.ModTime(), Size: src.FileSize}, nil
}

// path resolves an ID from List.
func (s *SnapshotFiles) path(id string) (string, error) {
	fi, err := os.Stat(s.Path)
	if err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	if !fi.IsDir() {
		if id != filepath.Base(s.Path) {
			return "", fmt.Errorf("restore: %s holds no backup %q", s.Path, id)
		}
		return s.Path, nil
	}
	if id != filepath.Base(id) {
		return "", fmt.Errorf("restore: bad backup ID %q", id)
	}
	return filepath.Join(s.Path, id), nil
}

// Describe reads the file once with snapkit.Inspect: the structure, the
// trailer, the revision, meta and members.
func (s *SnapshotFiles) Describe(ctx context.Context, id string) (*Backup, error) {
	path, err := s.path(id)
	if err != nil {
		return nil, err
	}
	b, err := s.entry(path)
	if err != nil {
		return nil, err
	}
	if err := DescribeDB(ctx, s.lg, &b, path); err != nil {
		return nil, err
	}
	return &b, nil
}

// Open returns the file itself: it is local, and restores only read it.
func (s *SnapshotFiles) Open(_ context.Context, id string) (string, func() error, error) {
	path, err := s.path(id)
	if err != nil {
		return "", nil, err
	}
	return path, func() error { return nil }, nil
}

// DescribeDB fills b from snapkit.Inspect of path (a snapshot file, a db
// or a data dir): revision, meta, members, the trailer, any damage, and
// (in the same walk, unless it found damage) CompactedHashKV, which the
// plan of a new cluster expects.
func DescribeDB(ctx context.Context, lg *slog.Logger, b *Backup, path string) error {
	rep, err := snapkit.Inspect(ctx, path, snapkit.Options{Logger: lg, HashKV: true, HashKVCompactAt: math.MaxInt64})
	if err != nil {
		return err
	}
	if err := describeReport(b, rep); err != nil {
		return err
	}
	if rep.HashKV != nil {
		h := rep.HashKV.Hash
		b.CompactedHashKV = &h
	}
	b.keep = rep.KeepSet
	return nil
}

// describeReport fills b from snapkit.Inspect's report.
func describeReport(b *Backup, rep *snapkit.Report) error {
	b.Described = true
	b.Revision, b.Hash = rep.Revision, rep.Hash
	b.CompactRevision = rep.Meta.CompactRevision
	b.ConsistentIndex, b.Term = rep.Meta.ConsistentIndex, rep.Meta.Term
	var err error
	if b.Members, err = membersOf(rep); err != nil {
		return err
	}
	switch {
	case rep.Trailer.Present:
		b.SHA256, b.HashOK = rep.Trailer.Want, rep.Trailer.Valid
	case b.Kind != string(snapkit.KindDataDir):
		b.Problems = append(b.Problems, "no SHA-256 trailer: nothing vouches for the bytes")
	}
	for _, f := range rep.Findings {
		b.Problems = append(b.Problems, f.String())
	}
	return nil
}

// DataDirSource is a surviving member's data dir, as a source for
// planning: its db is a backup, and its WAL and .snap say more (Report).
type DataDirSource struct {
	Layout datadir.Layout
	lg     *slog.Logger
	report *MemberReport
}

// NewDataDirSource is the source for a data dir with an optional
// dedicated WAL dir.
func NewDataDirSource(lg *slog.Logger, dataDir, walDir string) (*DataDirSource, error) {
	l, err := datadir.Locate(dataDir)
	if err != nil {
		return nil, err
	}
	l.DedicatedWALDir = walDir
	return &DataDirSource{Layout: l, lg: lg}, nil
}

func (s *DataDirSource) String() string { return "data dir " + s.Layout.DataDir }

// dbID is the ID of a data dir's one backup, its db.
const dbID = "db"

// List returns the data dir's db.
func (s *DataDirSource) List(context.Context) ([]Backup, error) {
	fi, err := os.Stat(s.Layout.DBPath())
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	return []Backup{{ID: dbID, Kind: string(snapkit.KindDataDir), Location: s.Layout.DataDir, Time: fi.ModTime(), Size: fi.Size()}}, nil
}

// Report inspects the data dir once (Inspect, SkipHashKV: one walk of the
// db, which Describe reuses) and keeps the answer.
func (s *DataDirSource) Report(ctx context.Context) (*MemberReport, error) {
	if s.report == nil {
		r, err := Inspect(ctx, s.lg, s.Layout.DataDir, InspectOptions{WALDir: s.Layout.DedicatedWALDir, SkipHashKV: true})
		if err != nil {
			return nil, err
		}
		s.report = r
	}
	return s.report, nil
}

// Describe describes the db, with the cluster ID from the WAL.
func (s *DataDirSource) Describe(ctx context.Context, id string) (*Backup, error) {
	if id != dbID {
		return nil, fmt.Errorf("restore: %s holds no backup %q", s, id)
	}
	bs, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	b := bs[0]
	r, err := s.Report(ctx)
	if err != nil {
		return nil, err
	}
	if r.InUse {
		b.Problems = append(b.Problems, "a running member holds it ("+r.InUseBy+" lock)")
		return &b, nil
	}
	if r.dbReport != nil {
		err = describeReport(&b, r.dbReport)
	} else {
		err = DescribeDB(ctx, s.lg, &b, s.Layout.DataDir)
	}
	if err != nil {
		return nil, err
	}
	if r.WAL != nil {
		b.ClusterID = r.WAL.ClusterID
	}
	return &b, nil
}

// Open returns the data dir: restores copy its db under a shared lock.
func (s *DataDirSource) Open(_ context.Context, id string) (string, func() error, error) {
	if id != dbID {
		return "", nil, fmt.Errorf("restore: %s holds no backup %q", s, id)
	}
	return s.Layout.DataDir, func() error { return nil }, nil
}
