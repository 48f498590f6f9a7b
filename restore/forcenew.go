package restore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/snapkit/snap"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// Errors of ForceNewCluster.
var (
	// ErrInUse means a running member holds the data dir's locks.
	ErrInUse = errors.New("restore: the data dir is in use by a running member; stop it first")
	// ErrWALDamaged means the WAL is damaged other than by a torn tail,
	// and RepairWAL was not given.
	ErrWALDamaged = errors.New("restore: the WAL is damaged")
	// ErrDBAheadOfWAL means the db applied entries that the WAL no longer
	// holds, so no raft log can continue from it.
	ErrDBAheadOfWAL = errors.New("restore: the db is ahead of the WAL")
	// ErrLearner means the member is a learner: etcd cannot force a new
	// cluster from one (removing every other member leaves no voter), and
	// a roll-forward keeps its member as force-new-cluster does.
	ErrLearner = errors.New("restore: the member is a learner; etcd cannot force a new cluster from a learner (it would remove every voter)")
)

// ForceNewClusterOptions say which member to turn into a one-member
// cluster, and where to write the result.
type ForceNewClusterOptions struct {
	// DataDir (and WALDir, its --wal-dir) is the member's; it is only read.
	DataDir, WALDir string
	// OutputDir (and OutputWALDir) is where the new data dir goes; it must
	// be absent or empty.
	OutputDir, OutputWALDir string
	// RepairWAL cuts a damaged WAL at its first bad record (walkit.PlanRepair)
	// in the copy; a torn tail is always cut, as etcd does on start.
	RepairWAL bool
	// KeepPastCommit keeps the WAL's entries past its recorded commit and
	// commits them, as raft would if this member were elected leader with
	// this log, where etcd's --force-new-cluster drops them: a write that
	// was acknowledged before the member recorded its commit (etcd records
	// it only with its next synced write) is then kept. A write that was
	// never acknowledged may be kept too, as raft allows.
	KeepPastCommit bool
	// Name and PeerURLs describe this member if the membership lacks it
	// (etcd adds it then); otherwise they are not needed.
	Name     string
	PeerURLs []string
	Progress Progress
}

// ForceNewClusterResult says what was written.
type ForceNewClusterResult struct {
	DataDir   string `json:"dataDir"`
	WALDir    string `json:"walDir"`
	MemberID  string `json:"memberID"`
	ClusterID string `json:"clusterID"`
	// Commit is the index the membership change starts after: the
	// larger of the WAL's commit and the db's applied index.
	Commit uint64 `json:"commit"`
	// Dropped counts the uncommitted entries that the new ones replace.
	Dropped int `json:"dropped"`
	// KeptPastCommit counts the entries past the recorded commit that
	// KeepPastCommit kept.
	KeptPastCommit int `json:"keptPastCommit,omitempty"`
	// Removed are the other members' IDs, removed by the appended entries
	// (indexes Commit+1 on, at Term); AddedSelf says this member was missing.
	Removed   []string `json:"removed"`
	AddedSelf bool     `json:"addedSelf"`
	Term      uint64   `json:"term"`
	LastIndex uint64   `json:"lastIndex"`
	// Repair is what was cut from the WAL's copy, if anything.
	Repair *walkit.RepairPlan `json:"repair,omitempty"`
	Took   time.Duration      `json:"tookNanos"`
}

// ForceNewCluster writes, into a new data dir, what etcd's
// --force-new-cluster makes of a member on start (FORMATS.md §10): the same
// db, .snap files and WAL, with the entries above the commit index dropped
// and ConfChanges appended that remove every other member (and add this
// one if it is missing). Unlike etcd it also writes the HardState that
// commits them, so that the result starts as a one-member cluster with
// the old cluster ID on a plain start of etcd or lifeboat, which apply the
// removals with their own code. The input is never changed.
func ForceNewCluster(ctx context.Context, lg *slog.Logger, o ForceNewClusterOptions) (*ForceNewClusterResult, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	from, err := datadir.Locate(o.DataDir)
	if err != nil {
		return nil, err
	}
	from.DedicatedWALDir = o.WALDir
	if o.OutputDir == "" {
		return nil, usageErr("no output dir given")
	}
	if busy, err := walkit.InUse(from.WALDir()); err != nil {
		return nil, err
	} else if busy {
		return nil, fmt.Errorf("%w: %s", ErrInUse, from.WALDir())
	}
	st, err := newStage(datadir.New(o.OutputDir, o.OutputWALDir))
	if err != nil {
		return nil, err
	}
	res, err := forceNewCluster(ctx, lg, o, from, st)
	if err != nil {
		st.abort()
		return nil, err
	}
	res.Took = time.Since(start)
	lg.Info("forced a new cluster", "from", o.DataDir, "to", res.DataDir, "member-id", res.MemberID,
		"cluster-id", res.ClusterID, "removed", len(res.Removed), "took", res.Took)
	return res, nil
}

func forceNewCluster(ctx context.Context, lg *slog.Logger, o ForceNewClusterOptions, from datadir.Layout, st *stage) (*ForceNewClusterResult, error) {
	if err := copyMember(ctx, from, st.tmp, o.Progress); err != nil {
		return nil, err
	}
	res := &ForceNewClusterResult{DataDir: st.final.DataDir, WALDir: st.final.WALDir()}
	var err error
	if res.Repair, err = repairCopy(lg, st.tmp.WALDir(), o.RepairWAL); err != nil {
		return nil, err
	}
	walDir := st.tmp.WALDir()
	walSnaps, err := walkit.ValidSnapshotEntries(lg, walDir)
	if err != nil {
		return nil, err
	}
	var sn raftpb.Snapshot
	if _, s, _, err := snap.New(lg, st.tmp.SnapDir()).NewestAvailable(walSnaps); err == nil {
		sn = *s
	} else if !errors.Is(err, snap.ErrNoSnapshot) {
		return nil, err
	}
	w, err := walkit.Open(lg, walDir, walkit.Snapshot{Index: sn.Metadata.Index, Term: sn.Metadata.Term})
	if err != nil {
		return nil, err
	}
	defer w.Close()
	md, hs, ents, err := w.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("restore: read the WAL's copy: %w", err)
	}
	meta, err := walkit.ParseMetadata(md)
	if err != nil {
		return nil, err
	}
	res.MemberID, res.ClusterID = schema.FormatID(meta.NodeID), schema.FormatID(meta.ClusterID)
	applied, err := appliedIndex(st.tmp.DBPath())
	if err != nil {
		return nil, err
	}
	last := sn.Metadata.Index
	if len(ents) > 0 {
		last = ents[len(ents)-1].Index
	}
	commit := max(hs.Commit, applied)
	if commit > last {
		return nil, fmt.Errorf("%w: it applied index %d, the WAL (commit %d) holds entries only to %d", ErrDBAheadOfWAL, applied, hs.Commit, last)
	}
	if o.KeepPastCommit {
		res.KeptPastCommit = int(last - commit)
		commit = last
	}
	for i, e := range ents {
		if e.Index > commit {
			res.Dropped = len(ents) - i
			ents = ents[:i]
			break
		}
	}
	ids, err := membersAt(sn.Metadata.ConfState, ents)
	if err != nil {
		return nil, err
	}
	if err := refuseLearner(ids, meta.NodeID); err != nil {
		return nil, err
	}
	add, err := forceEntries(meta.NodeID, ids, hs.Term, commit, o)
	if err != nil {
		return nil, err
	}
	_, in := ids[meta.NodeID]
	res.AddedSelf = !in
	res.Removed = otherMembers(ids, meta.NodeID)
	res.Commit, res.Term = commit, hs.Term
	res.LastIndex = commit
	if len(add) > 0 {
		res.LastIndex = add[len(add)-1].Index
	}
	// The entries replace those above commit (a WAL entry overrides the
	// ones at and after its index); the HardState commits them.
	if err := w.Save(raftpb.HardState{Term: hs.Term, Vote: hs.Vote, Commit: res.LastIndex}, add); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := syncFile(st.tmp.DBPath()); err != nil {
		return nil, err
	}
	if err := syncDir(st.tmp.SnapDir()); err != nil {
		return nil, err
	}
	if err := syncDir(walDir); err != nil {
		return nil, err
	}
	return res, st.commit()
}

// repairCopy cuts the WAL copy's torn tail, as etcd does on start, and any
// other damage only when allowed.
func repairCopy(lg *slog.Logger, dir string, repair bool) (*walkit.RepairPlan, error) {
	rep, err := walkit.Verify(dir, walkit.VerifyOptions{})
	if err != nil {
		return nil, err
	}
	if rep.OK() {
		return nil, nil
	}
	f := rep.Findings[0]
	if f.Kind != walkit.TornTail && !repair {
		return nil, fmt.Errorf("%w: %s in %s at offset %d: %s (repair the copy with --repair-wal, losing what follows, or run walkit repair)",
			ErrWALDamaged, f.Kind, f.Segment, f.Offset, f.Message)
	}
	plan, err := walkit.PlanRepair(dir)
	if err != nil {
		return nil, err
	}
	if err := plan.Apply(lg); err != nil {
		return nil, err
	}
	return plan, nil
}

// appliedIndex reads meta/consistent_index.
func appliedIndex(dbPath string) (uint64, error) {
	db, err := schema.Open(dbPath, schema.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var ci uint64
	err = db.View(func(tx *bolt.Tx) error {
		ci, err = schema.ConsistentIndex(tx)
		return err
	})
	return ci, err
}

// membersAt replays the ConfChanges of ents over a ConfState: every
// member's ID, and whether it is a learner.
func membersAt(cs raftpb.ConfState, ents []raftpb.Entry) (map[uint64]bool, error) {
	ids := map[uint64]bool{}
	for _, id := range cs.Voters {
		ids[id] = false
	}
	for _, id := range cs.Learners {
		ids[id] = true
	}
	for _, e := range ents {
		switch e.Type {
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := cc.Unmarshal(e.Data); err != nil {
				return nil, fmt.Errorf("restore: ConfChange at index %d: %w", e.Index, err)
			}
			switch cc.Type {
			case raftpb.ConfChangeAddNode:
				ids[cc.NodeID] = false
			case raftpb.ConfChangeAddLearnerNode:
				ids[cc.NodeID] = true
			case raftpb.ConfChangeRemoveNode:
				delete(ids, cc.NodeID)
			}
		case raftpb.EntryConfChangeV2:
			return nil, fmt.Errorf("restore: entry %d is a ConfChangeV2, which etcd does not write", e.Index)
		}
	}
	return ids, nil
}

// confStateOf is the ConfState of a db's membership.
func confStateOf(members []schema.Member) raftpb.ConfState {
	var cs raftpb.ConfState
	for _, m := range members {
		if m.IsLearner {
			cs.Learners = append(cs.Learners, m.ID)
		} else {
			cs.Voters = append(cs.Voters, m.ID)
		}
	}
	return cs
}

// refuseLearner is ErrLearner if self is a learner among ids.
func refuseLearner(ids map[uint64]bool, self uint64) error {
	if ids[self] {
		return fmt.Errorf("%w: member %s", ErrLearner, schema.FormatID(self))
	}
	return nil
}

// otherMembers are the IDs in ids but self, hex, ascending: those that
// force-new-cluster removes.
func otherMembers(ids map[uint64]bool, self uint64) []string {
	var out []string
	for id := range ids {
		if id != self {
			out = append(out, schema.FormatID(id))
		}
	}
	slices.Sort(out)
	return out
}

// forceEntries are the ConfChanges etcd appends: this member added if it is
// missing, then every other member removed, in ID order.
func forceEntries(self uint64, ids map[uint64]bool, term, commit uint64, o ForceNewClusterOptions) ([]raftpb.Entry, error) {
	var ccs []raftpb.ConfChange
	if _, in := ids[self]; !in {
		if o.Name == "" || len(o.PeerURLs) == 0 {
			return nil, usageErr("member %s is not in its own membership: give its --name and --initial-advertise-peer-urls to add it", schema.FormatID(self))
		}
		ctx, err := json.Marshal(schema.Member{ID: self, Name: o.Name, PeerURLs: o.PeerURLs})
		if err != nil {
			return nil, err
		}
		ccs = append(ccs, raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: self, Context: ctx})
	}
	others := make([]uint64, 0, len(ids))
	for id := range ids {
		if id != self {
			others = append(others, id)
		}
	}
	slices.Sort(others)
	for _, id := range others {
		ccs = append(ccs, raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: id})
	}
	ents := make([]raftpb.Entry, len(ccs))
	for i, cc := range ccs {
		data, err := cc.Marshal()
		if err != nil {
			return nil, fmt.Errorf("restore: encode ConfChange: %w", err)
		}
		ents[i] = raftpb.Entry{Type: raftpb.EntryConfChange, Term: term, Index: commit + 1 + uint64(i), Data: data}
	}
	return ents, nil
}
