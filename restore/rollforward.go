package restore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/lifeboat-dev/lifeboat/internal/freeport"
	"github.com/lifeboat-dev/lifeboat/server"
	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/snapkit/snap"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// Errors of RollForward: the WAL cannot roll the base forward. Test them
// with errors.Is.
var (
	// ErrWALGap means the WAL does not hold the committed entries right
	// after the base's consistent index, or commits nothing past it.
	ErrWALGap = errors.New("restore: the WAL cannot roll the db forward")
	// ErrDiverged means the WAL's entry at the base's consistent index has
	// another term than the base: the histories diverged.
	ErrDiverged = errors.New("restore: the WAL and the db have diverged")
	// ErrOtherCluster means the WAL's member is not a member of the base's
	// cluster: it is another cluster's, or the base's cluster removed it.
	ErrOtherCluster = errors.New("restore: the WAL's member is not a member of the db's cluster")
)

// DefaultReplayTimeout bounds the replay of a roll-forward.
const DefaultReplayTimeout = 5 * time.Minute

// RollForwardOptions say what to roll forward with which WAL, and where
// to write the result.
type RollForwardOptions struct {
	// Base is the db to start from: a snapshot file (its SHA-256 trailer
	// is checked), a db file, or a data dir whose member is stopped (its
	// structure is checked).
	Base string
	// DataDir (and WALDir, its --wal-dir) is the survivor whose WAL holds
	// the committed entries past the base; only its WAL is read.
	DataDir, WALDir string
	// OutputDir (and OutputWALDir) is where the new data dir goes; it must
	// be absent or empty.
	OutputDir, OutputWALDir string
	// Name is the survivor's member name when its membership has none.
	Name string
	// Timeout bounds the replay; 0 means DefaultReplayTimeout.
	Timeout  time.Duration
	Progress Progress
}

// RollForwardResult says what was replayed and written.
type RollForwardResult struct {
	DataDir   string `json:"dataDir"`
	WALDir    string `json:"walDir"`
	MemberID  string `json:"memberID"`
	Name      string `json:"name"`
	ClusterID string `json:"clusterID"`
	// BaseIndex, BaseTerm and BaseRevision are the base db's.
	BaseIndex    uint64 `json:"baseIndex"`
	BaseTerm     uint64 `json:"baseTerm"`
	BaseRevision int64  `json:"baseRevision"`
	SHA256       string `json:"sha256,omitempty"`
	HashChecked  bool   `json:"hashChecked"`
	// From..To are the WAL's committed entries replayed over the base.
	From    uint64 `json:"from"`
	To      uint64 `json:"to"`
	Entries int    `json:"entries"`
	// Removed are the other members, removed as force-new-cluster does.
	Removed []string `json:"removed"`
	// Applied and Revision are the new db's once replayed; Commit the new
	// WAL's.
	Applied  uint64 `json:"applied"`
	Commit   uint64 `json:"commit"`
	Revision int64  `json:"revision"`
	// Repair is the damage the WAL was read up to (nil: it ends cleanly or
	// with a torn tail, which ends the read as on a restart).
	Repair *walkit.RepairPlan `json:"repair,omitempty"`
	Took   time.Duration      `json:"tookNanos"`
}

// RollForward restores a base db (a snapshot file or a survivor's db) and
// replays over it the committed entries of a surviving WAL of the same
// cluster past the base's consistent index, through lifeboat's own apply
// code: it builds a data dir of the base db, a .snap at its consistent
// index and a WAL of the entries, then starts a lifeboat member on it
// with --force-new-cluster, in this process on 127.0.0.1, waits until it
// has applied everything and stops it. The result is what
// ForceNewCluster makes of a survivor: the old cluster, same cluster ID
// and the survivor's member ID, alone, holding every committed entry. The
// inputs are never changed.
func RollForward(ctx context.Context, lg *slog.Logger, o RollForwardOptions) (*RollForwardResult, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	if o.Base == "" || o.DataDir == "" || o.OutputDir == "" {
		return nil, usageErr("roll-forward needs a base, the survivor's data dir and an output dir")
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultReplayTimeout
	}
	from, err := datadir.Locate(o.DataDir)
	if err != nil {
		return nil, err
	}
	from.DedicatedWALDir = o.WALDir
	if busy, err := walkit.InUse(from.WALDir()); err != nil {
		return nil, err
	} else if busy {
		return nil, fmt.Errorf("%w: %s", ErrInUse, from.WALDir())
	}
	src, err := snapkit.Resolve(o.Base)
	if err != nil {
		return nil, err
	}
	st, err := newStage(datadir.New(o.OutputDir, o.OutputWALDir))
	if err != nil {
		return nil, err
	}
	res, err := rollForward(ctx, lg, o, src, from, st)
	if err != nil {
		st.abort()
		return nil, err
	}
	res.Took = time.Since(start)
	lg.Info("rolled forward", "base", o.Base, "wal", from.WALDir(), "to", res.DataDir, "from-index", res.From,
		"to-index", res.To, "member-id", res.MemberID, "cluster-id", res.ClusterID, "took", res.Took)
	return res, nil
}

func rollForward(ctx context.Context, lg *slog.Logger, o RollForwardOptions, src snapkit.Source, from datadir.Layout, st *stage) (*RollForwardResult, error) {
	res := &RollForwardResult{DataDir: st.final.DataDir, WALDir: st.final.WALDir(), HashChecked: src.HasTrailer}
	sum, _, err := copyCheckedDB(ctx, lg, src, st.tmp.DBPath(), src.HasTrailer, false, nil, o.Progress)
	if err != nil {
		return nil, err
	}
	res.SHA256 = hex.EncodeToString(sum)
	base, err := readBase(st.tmp.DBPath())
	if err != nil {
		return nil, err
	}
	// A WAL damaged other than by a torn tail is copied into the stage and
	// cut there; the entries are read, the copy is not needed after.
	scratch := filepath.Join(st.tmp.DataDir, "wal-cut")
	rp, err := readReplay(lg, from.WALDir(), scratch, base)
	if rerr := os.RemoveAll(scratch); err == nil && rerr != nil {
		err = fmt.Errorf("restore: %w", rerr)
	}
	if err != nil {
		return nil, err
	}
	self, err := rp.member(base, o.Name)
	if err != nil {
		return nil, err
	}
	res.MemberID, res.Name, res.ClusterID = schema.FormatID(self.ID), self.Name, schema.FormatID(rp.meta.ClusterID)
	res.BaseIndex, res.BaseTerm, res.BaseRevision = base.index, rp.term, base.revision
	res.From, res.To, res.Entries, res.Repair = base.index+1, rp.to, len(rp.ents), rp.repair
	// What the member's force-new-cluster appends after the entries: the
	// replay is done once they are applied.
	ids, err := membersAt(base.confState, rp.ents)
	if err != nil {
		return nil, err
	}
	force, err := forceEntries(self.ID, ids, rp.hs.Term, rp.to, ForceNewClusterOptions{Name: self.Name, PeerURLs: self.PeerURLs})
	if err != nil {
		return nil, err
	}
	res.Removed = otherMembers(ids, self.ID)
	if err := writeReplayDir(lg, st.tmp, base, rp); err != nil {
		return nil, err
	}
	target := rp.to + uint64(len(force))
	if err := replay(ctx, lg, st.tmp, self, target, o.Timeout); err != nil {
		return nil, err
	}
	// What the member left: every entry applied and the commit on disk.
	after, err := readBase(st.tmp.DBPath())
	if err != nil {
		return nil, err
	}
	w, err := readWALState(st.tmp.WALDir())
	if err != nil {
		return nil, err
	}
	res.Applied, res.Revision, res.Commit = after.index, after.revision, w.HardState.Commit
	if res.Applied < target || res.Commit < target {
		return nil, fmt.Errorf("restore: the replay stopped at applied index %d, commit %d; want %d", res.Applied, res.Commit, target)
	}
	return res, st.commit()
}

// baseDB is what a roll-forward needs of its base db.
type baseDB struct {
	index, term    uint64
	revision       int64
	confState      raftpb.ConfState
	members        []schema.Member
	removed        []uint64
	clusterVersion string
}

// readBase reads a base db's raft position, membership and revision.
func readBase(path string) (*baseDB, error) {
	db, err := schema.Open(path, schema.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer db.Close()
	var b *baseDB
	err = db.View(func(tx *bolt.Tx) error {
		b, err = baseFromTx(tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("restore: base %s: %w", path, err)
	}
	return b, nil
}

func baseFromTx(tx *bolt.Tx) (*baseDB, error) {
	b := &baseDB{}
	var err error
	if b.index, err = schema.ConsistentIndex(tx); err != nil {
		return nil, err
	}
	if b.term, err = schema.Term(tx); err != nil {
		return nil, err
	}
	if b.members, err = schema.Members(tx); err != nil {
		return nil, err
	}
	if b.removed, err = schema.RemovedMembers(tx); err != nil {
		return nil, err
	}
	if b.clusterVersion, err = schema.ClusterVersion(tx); err != nil {
		return nil, err
	}
	if b.revision, _, err = storeRevision(tx); err != nil {
		return nil, err
	}
	cs, err := schema.ConfState(tx)
	if err != nil {
		return nil, err
	}
	if cs != nil {
		b.confState = *cs
		return b, nil
	}
	// A db that never stored its ConfState: its members make it.
	for _, m := range b.members {
		if m.IsLearner {
			b.confState.Learners = append(b.confState.Learners, m.ID)
		} else {
			b.confState.Voters = append(b.confState.Voters, m.ID)
		}
	}
	return b, nil
}

// replayLog is what a surviving WAL replays over a base: its committed
// entries (base index, to], read up to its first damage.
type replayLog struct {
	meta walkit.Metadata
	hs   raftpb.HardState
	ents []raftpb.Entry
	to   uint64
	// term is the term at the base's index (the base's, checked against
	// the WAL's where both are known).
	term   uint64
	repair *walkit.RepairPlan
}

// readReplay reads the WAL in dir without changing it and takes the
// committed entries that roll base forward: they must start right after
// the base's index, and the WAL's term there must be the base's. A WAL
// damaged other than by a torn tail is copied into scratch (which must not
// exist) and cut at the damage there, as walkit repair would.
func readReplay(lg *slog.Logger, dir, scratch string, base *baseDB) (*replayLog, error) {
	rl := &replayLog{}
	rep, err := walkit.Verify(dir, walkit.VerifyOptions{})
	if err != nil {
		return nil, err
	}
	if !rep.OK() && rep.Findings[0].Kind != walkit.TornTail {
		if err := copySegments(dir, scratch); err != nil {
			return nil, err
		}
		if rl.repair, err = repairCopy(lg, scratch, true); err != nil {
			return nil, err
		}
		dir = scratch
	}
	walSnaps, err := walkit.ValidSnapshotEntries(lg, dir)
	if err != nil {
		return nil, err
	}
	var at walkit.Snapshot
	for _, s := range walSnaps {
		if s.Index <= base.index && s.Index >= at.Index {
			at = s
		}
	}
	w, err := walkit.OpenForRead(lg, dir, at)
	if err != nil {
		return nil, gapError(dir, base.index, err)
	}
	md, hs, ents, err := w.ReadAll()
	w.Close()
	if err != nil {
		return nil, gapError(dir, base.index, err)
	}
	if rl.meta, err = walkit.ParseMetadata(md); err != nil {
		return nil, err
	}
	rl.hs = hs
	last := at.Index
	if n := len(ents); n > 0 {
		last = ents[n-1].Index
	}
	rl.to = min(hs.Commit, last)
	if rl.to <= base.index {
		return nil, fmt.Errorf("%w: %s commits nothing past the db's consistent index %d (commit %d, last entry %d)", ErrWALGap, dir, base.index, hs.Commit, last)
	}
	// ReadAll's entries follow the snapshot at or below the base's index
	// without a gap, so the base's index is the snapshot's or an entry's.
	walTerm := at.Term
	if base.index > at.Index {
		walTerm = ents[base.index-at.Index-1].Term
	}
	rl.term = base.term
	switch {
	case base.term == 0:
		rl.term = walTerm
	case walTerm != base.term:
		return nil, fmt.Errorf("%w: at index %d the db has term %d and %s has term %d", ErrDiverged, base.index, base.term, dir, walTerm)
	}
	rl.ents = ents[base.index-at.Index : rl.to-at.Index]
	return rl, nil
}

// gapError says that the WAL does not reach back to the base's index.
func gapError(dir string, index uint64, err error) error {
	if errors.Is(err, walkit.ErrFileNotFound) || errors.Is(err, walkit.ErrSnapshotNotFound) || errors.Is(err, walkit.ErrSliceOutOfRange) {
		return fmt.Errorf("%w: %s does not hold the entries from %d on (older segments purged?): %v", ErrWALGap, dir, index+1, err)
	}
	return fmt.Errorf("restore: read %s: %w", dir, err)
}

// member is the WAL's member in the base's membership; a WAL whose member
// the base does not know, or removed, is of another cluster or cannot carry
// it forward.
func (rl *replayLog) member(base *baseDB, name string) (schema.Member, error) {
	id := rl.meta.NodeID
	if slices.Contains(base.removed, id) {
		return schema.Member{}, fmt.Errorf("%w: the WAL's member %s was removed from it by index %d, so its log cannot carry the cluster past that", ErrOtherCluster, schema.FormatID(id), base.index)
	}
	for _, m := range base.members {
		if m.ID != id {
			continue
		}
		// A learner at the base, or made one by the entries, cannot be
		// kept alone.
		ids, err := membersAt(confStateOf(base.members), rl.ents)
		if err != nil {
			return schema.Member{}, err
		}
		if err := refuseLearner(ids, id); err != nil {
			return schema.Member{}, err
		}
		if m.Name == "" {
			if name == "" {
				return m, usageErr("member %s has no name in the db's membership (it never started): give its name", schema.FormatID(id))
			}
			m.Name = name
		}
		return m, nil
	}
	ids := make([]string, len(base.members))
	for i, m := range base.members {
		ids[i] = schema.FormatID(m.ID)
	}
	return schema.Member{}, fmt.Errorf("%w: the WAL's member %s (cluster %s) is not among the db's members %v: is the WAL another cluster's?", ErrOtherCluster,
		schema.FormatID(id), schema.FormatID(rl.meta.ClusterID), ids)
}

// copySegments copies a WAL's segments into a new dir.
func copySegments(from, to string) error {
	segs, err := walkit.ListSegments(from)
	if err != nil {
		return err
	}
	if err := os.Mkdir(to, 0o700); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	for _, s := range segs {
		if err := copyWhole(s.Path, filepath.Join(to, s.Name)); err != nil {
			return err
		}
	}
	return nil
}

// writeReplayDir writes, beside the base db in layout, a .snap at the base's
// index holding its membership and a WAL of the survivor's identity: that
// snapshot, then the entries to replay with the HardState that commits them.
func writeReplayDir(lg *slog.Logger, layout datadir.Layout, base *baseDB, rl *replayLog) error {
	cs := base.confState
	if base.index > 0 {
		v2, err := snap.EncodeMembership(snap.Membership{Members: base.members, Removed: base.removed, ClusterVersion: base.clusterVersion})
		if err != nil {
			return err
		}
		rs := raftpb.Snapshot{Data: v2, Metadata: raftpb.SnapshotMetadata{Index: base.index, Term: rl.term, ConfState: cs}}
		if err := snap.New(lg, layout.SnapDir()).SaveSnap(rs); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	w, err := walkit.Create(lg, layout.WALDir(), rl.meta.Marshal())
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	// Create synced the WAL's header; Close syncs the rest once.
	w.SetUnsafeNoFsync()
	if base.index > 0 {
		err = w.SaveSnapshot(walkit.Snapshot{Index: base.index, Term: rl.term, ConfState: &cs})
	}
	if err == nil {
		err = w.Save(raftpb.HardState{Term: rl.hs.Term, Vote: rl.hs.Vote, Commit: rl.to}, rl.ents)
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("restore: write WAL %s: %w", layout.WALDir(), err)
	}
	return syncFile(layout.DBPath())
}

// replay starts a lifeboat member on layout with --force-new-cluster, on
// 127.0.0.1 ports of its own, waits until it leads and has applied past
// target (the entries replayed and the removals it appends, then the
// entry of its own term, whose commit is on disk once it is applied), and
// stops it. It advertises the member's own URLs, so that what it
// publishes is what the membership says already.
func replay(ctx context.Context, lg *slog.Logger, layout datadir.Layout, self schema.Member, target uint64, timeout time.Duration) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	cfg := server.NewConfig()
	cfg.Name, cfg.DataDir, cfg.WALDir = self.Name, layout.DataDir, layout.DedicatedWALDir
	cfg.ForceNewCluster, cfg.StrictReconfigCheck = true, false
	cfg.ListenClientURLs, cfg.AdvertiseClientURLs = []string{clientURL}, self.ClientURLs
	cfg.ListenPeerURLs = []string{"http://127.0.0.1:" + strconv.Itoa(ports[1])}
	cfg.AdvertisePeerURLs = self.PeerURLs
	cfg.InitialCluster = map[string][]string{self.Name: self.PeerURLs}
	cfg.HeartbeatMs, cfg.ElectionMs = 50, 500
	// The replay must not raise a NOSPACE alarm of its own into the db.
	cfg.QuotaBackendBytes = server.MaxQuotaBackendBytes
	cfg.Logger = lg.With("component", "replay")
	s, err := server.New(cfg)
	if err != nil {
		return fmt.Errorf("restore: start the replay member: %w", err)
	}
	werr := waitApplied(ctx, clientURL, s.ID(), target, timeout)
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Stop(sctx); err != nil {
		return errors.Join(werr, fmt.Errorf("restore: stop the replay member: %w", err))
	}
	return werr
}

// waitApplied polls the member's status until it leads and has applied
// an index past target, or the timeout ends.
func waitApplied(ctx context.Context, clientURL string, id, target uint64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{clientURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("restore: client of the replay member: %w", err)
	}
	defer cli.Close()
	var last string
	for {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := cli.Status(rctx, clientURL)
		rcancel()
		if err == nil {
			if st.Leader == id && st.RaftAppliedIndex > target {
				return nil
			}
			last = fmt.Sprintf("leader %x, applied %d", st.Leader, st.RaftAppliedIndex)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("restore: the replay member did not apply past index %d within %v (last: %s): %w", target, timeout, last, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freePorts returns n distinct TCP ports free on 127.0.0.1 now.
func freePorts(n int) ([]int, error) {
	ports, err := freeport.Pick(n)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	return ports, nil
}
