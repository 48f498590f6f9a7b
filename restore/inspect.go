package restore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"go.etcd.io/raft/v3/raftpb"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/snapkit/snap"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// MemberReport is what one member's data dir holds, as `restore inspect`
// shows it. A part that cannot be read has its error in Errors and the
// rest is still reported.
type MemberReport struct {
	DataDir string `json:"dataDir"`
	WALDir  string `json:"walDir"`
	// InUse says a running member holds the WAL's or the db's lock.
	InUse   bool   `json:"inUse"`
	InUseBy string `json:"inUseBy,omitempty"` // "wal", "db" or "wal+db"

	WAL  *WALState  `json:"wal,omitempty"`
	Snap *SnapState `json:"snap,omitempty"`
	DB   *DBState   `json:"db,omitempty"`

	// Checks compare the parts (applied <= commit <= last index, ...).
	Checks []Check `json:"checks"`
	// Findings are the problems found: damage, disagreement.
	Findings []string `json:"findings"`
	// Errors are the parts that could not be read at all.
	Errors []string `json:"errors,omitempty"`

	// dbReport is snapkit.Inspect's report of the db, which describing
	// the db as a backup reuses.
	dbReport *snapkit.Report
}

// OK reports whether nothing was found wrong and everything was read.
func (r *MemberReport) OK() bool { return len(r.Findings) == 0 && len(r.Errors) == 0 }

// WALState is what the WAL says, read up to its first damage (where a
// repair would cut it).
type WALState struct {
	NodeID    string           `json:"nodeID"` // hex
	ClusterID string           `json:"clusterID"`
	HardState raftpb.HardState `json:"hardState"`
	// FirstIndex and LastIndex are the first and last entries that the WAL
	// still holds; LastTerm is the last one's term. ReadAll's rule applies:
	// an entry overrides the ones at and after its index.
	FirstIndex uint64 `json:"firstIndex"`
	LastIndex  uint64 `json:"lastIndex"`
	LastTerm   uint64 `json:"lastTerm"`
	Entries    int    `json:"entries"`
	// Snapshots are the WAL's snapshot records (index, term).
	Snapshots []walkit.Snapshot `json:"snapshots"`
	Segments  int               `json:"segments"`
	Bytes     int64             `json:"bytes"`
	// Damage is walkit.Verify's findings; Repair what walkit.PlanRepair
	// would cut (nil when there is nothing to cut or it cannot).
	Damage      []walkit.Finding   `json:"damage"`
	Repair      *walkit.RepairPlan `json:"repair,omitempty"`
	RepairError string             `json:"repairError,omitempty"`
}

// SnapState is the newest .snap file that a restart would load.
type SnapState struct {
	File      string           `json:"file"`
	Index     uint64           `json:"index"`
	Term      uint64           `json:"term"`
	ConfState raftpb.ConfState `json:"confState"`
	// Broken are newer files that do not decode.
	Broken []string `json:"broken,omitempty"`
}

// DBState is what member/snap/db says.
type DBState struct {
	Path            string          `json:"path"`
	Size            int64           `json:"size"`
	ConsistentIndex uint64          `json:"consistentIndex"`
	Term            uint64          `json:"term"`
	Revision        int64           `json:"revision"`
	CompactRevision int64           `json:"compactRevision"`
	Members         []schema.Member `json:"members"`
	Removed         []string        `json:"removedMembers,omitempty"`
	StorageVersion  string          `json:"storageVersion,omitempty"`
	// HashKV is etcd's HashKV at Revision, which a live member answers too.
	HashKV snapkit.HashKVResult `json:"hashKV"`
}

// Check is one comparison between the parts of a data dir.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"` // "ok", "warn" or "bad"
	Detail string `json:"detail"`
}

// InspectOptions tune Inspect.
type InspectOptions struct {
	// WALDir is the member's --wal-dir; "" means <data-dir>/member/wal.
	WALDir string
	// SkipHashKV does not compute HashKV: the db is read in one streaming
	// walk (snapkit.Inspect: its structure, meta, members and latest
	// revision), not two; either way its memory is bounded whatever its
	// size, unless the walk finds something (then HashKV goes through the
	// key index).
	SkipHashKV bool
}

// Inspect reads one member's data dir without changing it: the WAL up to
// its first damage (with walkit.Verify and walkit.PlanRepair), the newest
// usable .snap, and the db (through snapkit.Inspect). An error means the
// path is not a data dir at all.
func Inspect(ctx context.Context, lg *slog.Logger, dataDir string, o InspectOptions) (*MemberReport, error) {
	return inspectDir(ctx, lg, dataDir, o, nil)
}

// knownDB is a db file that Inspect has read, with the same options: its
// state and the SHA-256 of its bytes.
type knownDB struct {
	state  *DBState
	report *snapkit.Report
	sum    []byte
}

// inspectDir is Inspect; a db whose bytes have known's SHA-256 is known's db,
// and its state is known's instead of read again. Any other db is read.
func inspectDir(ctx context.Context, lg *slog.Logger, dataDir string, o InspectOptions, known *knownDB) (*MemberReport, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	layout, err := datadir.Locate(dataDir)
	if err != nil {
		return nil, err
	}
	layout.DedicatedWALDir = o.WALDir
	r := &MemberReport{DataDir: layout.DataDir, WALDir: layout.WALDir()}
	r.inUse(layout)
	if w, err := readWALState(layout.WALDir()); err != nil {
		r.Errors = append(r.Errors, fmt.Sprintf("wal: %v", err))
	} else {
		r.WAL = w
		for _, d := range w.Damage {
			r.Findings = append(r.Findings, fmt.Sprintf("WAL damage: %s in %s at offset %d: %s", d.Kind, d.Segment, d.Offset, d.Message))
		}
	}
	if r.WAL != nil {
		s, err := readSnapState(lg, layout.SnapDir(), r.WAL.Snapshots)
		switch {
		case errors.Is(err, snap.ErrNoSnapshot):
		case err != nil:
			r.Errors = append(r.Errors, fmt.Sprintf("snap: %v", err))
		}
		r.Snap = s
		if s != nil && len(s.Broken) > 0 {
			r.Findings = append(r.Findings, fmt.Sprintf(".snap files that do not decode: %v", s.Broken))
		}
	}
	if same, err := known.same(layout.DBPath()); err != nil {
		r.Errors = append(r.Errors, fmt.Sprintf("db: %v", err))
	} else if same {
		d := *known.state
		d.Path = layout.DBPath()
		r.DB, r.dbReport = &d, known.report
	} else if d, rep, err := readDBState(ctx, lg, layout, o); err != nil {
		r.Errors = append(r.Errors, fmt.Sprintf("db: %v", err))
	} else {
		r.DB, r.dbReport = d, rep
	}
	r.check()
	return r, nil
}

// same reports whether the file at path has k's bytes; false if k is nil.
func (k *knownDB) same(path string) (bool, error) {
	if k == nil {
		return false, nil
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return false, err
	}
	return bytes.Equal(sum, k.sum), nil
}

// fileSHA256 is the SHA-256 of the file at path.
func fileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return h.Sum(nil), nil
}

// inUse probes the WAL's locks and the db's flock without taking them.
func (r *MemberReport) inUse(l datadir.Layout) {
	var by []string
	if busy, err := walkit.InUse(l.WALDir()); err == nil && busy {
		by = append(by, "wal")
	}
	if busy, err := flockHeld(l.DBPath()); err == nil && busy {
		by = append(by, "db")
	}
	if len(by) > 0 {
		r.InUse = true
		r.InUseBy = by[0]
		if len(by) == 2 {
			r.InUseBy = "wal+db"
		}
	}
}

// flockHeld reports whether another process holds an exclusive flock on
// path, as bbolt takes on a db it has open for writing.
func flockHeld(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return false, unix.Flock(int(f.Fd()), unix.LOCK_UN)
}

// readWALState streams the WAL's records up to the first damage.
func readWALState(dir string) (*WALState, error) {
	rep, err := walkit.Verify(dir, walkit.VerifyOptions{ContinueOnError: true})
	if err != nil {
		return nil, err
	}
	w := &WALState{Segments: len(rep.Segments), Bytes: rep.Bytes, Damage: rep.Findings}
	if !rep.OK() {
		if plan, err := walkit.PlanRepair(dir); err != nil {
			w.RepairError = err.Error()
		} else {
			w.Repair = plan
		}
	}
	rd, err := walkit.NewReader(dir)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	haveMeta := false
	for {
		rec, pos, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var de *walkit.DamageError
		if errors.As(err, &de) {
			break // a repair cuts here; nothing after it counts
		}
		if err != nil {
			return nil, err
		}
		switch rec.Type {
		case walkit.MetadataType:
			if haveMeta {
				continue
			}
			md, err := walkit.ParseMetadata(rec.Data)
			if err != nil {
				return nil, fmt.Errorf("%s offset %d: %w", pos.Segment, pos.Offset, err)
			}
			w.NodeID, w.ClusterID, haveMeta = schema.FormatID(md.NodeID), schema.FormatID(md.ClusterID), true
		case walkit.StateType:
			if err := w.HardState.Unmarshal(rec.Data); err != nil {
				return nil, fmt.Errorf("%s offset %d: HardState: %w", pos.Segment, pos.Offset, err)
			}
		case walkit.EntryType:
			var e raftpb.Entry
			if err := e.Unmarshal(rec.Data); err != nil {
				return nil, fmt.Errorf("%s offset %d: Entry: %w", pos.Segment, pos.Offset, err)
			}
			if w.Entries == 0 || e.Index < w.FirstIndex {
				w.FirstIndex = e.Index
			}
			w.Entries++
			w.LastIndex, w.LastTerm = e.Index, e.Term
		case walkit.SnapshotType:
			s, err := walkit.DecodeSnapshot(rec.Data)
			if err != nil {
				return nil, fmt.Errorf("%s offset %d: %w", pos.Segment, pos.Offset, err)
			}
			w.Snapshots = append(w.Snapshots, s)
		}
	}
	if !haveMeta {
		return nil, fmt.Errorf("%s: no metadata record before the first damage", dir)
	}
	return w, nil
}

// readSnapState finds the newest .snap that matches a WAL snapshot record.
func readSnapState(lg *slog.Logger, dir string, walSnaps []walkit.Snapshot) (*SnapState, error) {
	name, s, broken, err := snap.New(lg, dir).NewestAvailable(walSnaps)
	if err != nil {
		if len(broken) > 0 {
			return &SnapState{Broken: broken}, err
		}
		return nil, err
	}
	return &SnapState{File: name, Index: s.Metadata.Index, Term: s.Metadata.Term, ConfState: s.Metadata.ConfState, Broken: broken}, nil
}

// readDBState reads the db read-only in snapkit.Inspect's bounded walk
// (whose report it returns too) and, unless SkipHashKV, its HashKV in a
// second walk of the same kind. A db with findings gets no HashKV from the
// walk: it is then computed through bbolt and the key index (OpenDB).
func readDBState(ctx context.Context, lg *slog.Logger, l datadir.Layout, o InspectOptions) (*DBState, *snapkit.Report, error) {
	src, err := snapkit.Resolve(l.DBPath())
	if err != nil {
		return nil, nil, err
	}
	rep, err := snapkit.Inspect(ctx, src.DBPath, snapkit.Options{Logger: lg, HashKV: !o.SkipHashKV})
	if err != nil {
		return nil, nil, err
	}
	d, err := dbStateOf(src, rep)
	if err != nil || o.SkipHashKV {
		return d, rep, err
	}
	if rep.HashKV != nil {
		d.HashKV = *rep.HashKV
		return d, rep, nil
	}
	if d.HashKV, err = snapkit.HashKVFile(ctx, src.DBPath, 0, lg); err != nil {
		return nil, nil, err
	}
	return d, rep, nil
}

// dbStateOf is the DBState that snapkit.Inspect's report gives, without
// HashKV: the revision and compaction as OpenDB reckons them (a scheduled
// compaction above the finished one is in effect). Structural damage is
// an error wrapping snapkit.ErrDamaged, as OpenDB's.
func dbStateOf(src snapkit.Source, rep *snapkit.Report) (*DBState, error) {
	if rep.Partial {
		first := "structural damage"
		if len(rep.Findings) > 0 {
			first = rep.Findings[0].String()
		}
		return nil, fmt.Errorf("%w: %s: %s; run snapkit verify", snapkit.ErrDamaged, src.DBPath, first)
	}
	m := rep.Meta
	compact := max(m.CompactRevision, m.ScheduledCompactRevision)
	d := &DBState{Path: src.DBPath, Size: src.DBSize, ConsistentIndex: m.ConsistentIndex, Term: m.Term,
		Revision: max(rep.Revision, compact), CompactRevision: compact, Removed: rep.Removed, StorageVersion: m.StorageVersion}
	var err error
	d.Members, err = membersOf(rep)
	return d, err
}

// membersOf are the members snapkit's report lists, sorted.
func membersOf(rep *snapkit.Report) ([]schema.Member, error) {
	var out []schema.Member
	for _, m := range rep.Members {
		id, err := schema.ParseID(m.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, schema.Member{ID: id, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner})
	}
	schema.SortMembers(out)
	return out, nil
}

// check compares the WAL, the .snap and the db.
func (r *MemberReport) check() {
	add := func(name, status, format string, a ...any) {
		r.Checks = append(r.Checks, Check{Name: name, Status: status, Detail: fmt.Sprintf(format, a...)})
		if status == "bad" {
			r.Findings = append(r.Findings, name+": "+fmt.Sprintf(format, a...))
		}
	}
	w, d := r.WAL, r.DB
	if w == nil || d == nil {
		return
	}
	applied, commit, last := d.ConsistentIndex, w.HardState.Commit, w.LastIndex
	if r.Snap != nil && r.Snap.File != "" {
		last = max(last, r.Snap.Index)
	}
	switch {
	case applied <= commit:
		add("applied <= commit", "ok", "db applied %d, WAL commit %d", applied, commit)
	default:
		add("applied <= commit", "warn", "db applied %d is past the WAL's commit %d: the commit record was lost after the db was written (a restart or --force-new-cluster takes %d)", applied, commit, applied)
	}
	switch {
	case commit <= last:
		add("commit <= last index", "ok", "WAL commit %d, last index %d", commit, last)
	default:
		add("commit <= last index", "bad", "the WAL commits %d but holds entries only to %d: entries %d-%d are gone", commit, last, last+1, commit)
	}
	if applied > last {
		add("applied <= last index", "bad", "the db applied %d but the WAL ends at %d: the WAL lost committed entries the db has", applied, last)
	}
	if w.Entries > 0 && w.FirstIndex > applied+1 && (r.Snap == nil || r.Snap.Index < w.FirstIndex-1) {
		add("WAL covers the db", "bad", "the WAL starts at %d, past the db's applied index %d: entries %d-%d are gone", w.FirstIndex, applied, applied+1, w.FirstIndex-1)
	}
	if r.Snap != nil && r.Snap.File != "" && r.Snap.Index > applied {
		add(".snap <= applied", "warn", "the newest .snap is at %d, past the db's applied index %d", r.Snap.Index, applied)
	}
	if w.Repair != nil && w.Repair.Damage != nil {
		// The damage itself is a finding already.
		lost := len(w.Repair.LostEntries)
		add("repair", "warn", "a repair cuts %s at offset %d and loses %d entries", w.Repair.Damage.Segment, w.Repair.Damage.Offset, lost)
	}
}
