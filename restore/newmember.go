package restore

import (
	"encoding/json"
	"fmt"
	"log/slog"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/snapkit/snap"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// newMember makes a copied db the first state of one member of a new
// cluster, as `etcdutl snapshot restore` does (FORMATS.md §8), learners
// included.
type newMember struct {
	cluster *Cluster
	self    schema.Member
	// bump is how far to raise the revision (--bump-revision); when > 0 the
	// new revision is also marked compacted (--mark-compacted).
	bump int64
	// compacted says the db holds what the compaction at the bumped
	// revision keeps already (compactCheckedDB): the compaction is then
	// recorded as finished too, and the member does not run it on start.
	compacted bool
	// lastRevision is the main revision of the source's last key bucket
	// pair, which a compacted db may no longer hold (a tombstone, a key
	// deleted since): the store's revision is at least that.
	lastRevision int64
	// oldMarker is the bump marker that a compacted db holds from an
	// earlier restore (snapkit.CompactedResult.Marker): the new marker
	// supersedes it, and the compaction at the new one drops it.
	oldMarker *schema.Revision
}

// dbFacts is what rewriting a db learnt about it.
type dbFacts struct {
	OldMembers []schema.Member
	// Revision is the store's revision before the bump: the last revision of
	// the key bucket, or the compaction if that is higher.
	Revision int64
	// Restored is the revision the new member starts at (Revision + bump).
	Restored int64
	// CompactRevision is the compaction the new member finishes on start
	// (the bumped revision when bumped), or -1.
	CompactRevision int64
}

// confState is the new cluster's raft configuration.
func (nm *newMember) confState() raftpb.ConfState {
	return raftpb.ConfState{Voters: nm.cluster.Voters(), Learners: nm.cluster.Learners()}
}

// index is the raft index of the last bootstrap entry: one per member.
func (nm *newMember) index() uint64 { return uint64(len(nm.cluster.Members)) }

// rewriteDB replaces the membership of the db at path, bumps its revision
// and sets its consistent index, in one bbolt transaction, without
// syncing (the caller syncs the file once). check, if set, sees the old
// members before anything is written and may refuse.
func (nm *newMember) rewriteDB(path string, check func(old []schema.Member) error) (dbFacts, error) {
	var (
		f       dbFacts
		refused error
	)
	db, err := schema.Open(path, schema.Options{NoSync: true})
	if err != nil {
		return f, fmt.Errorf("restore: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := schema.CreateBuckets(tx); err != nil {
			return err
		}
		old, err := schema.Members(tx)
		if err != nil {
			return err
		}
		f.OldMembers = old
		if check != nil {
			if refused = check(old); refused != nil {
				return refused
			}
		}
		if f.Revision, f.CompactRevision, err = storeRevision(tx); err != nil {
			return err
		}
		f.Revision = max(f.Revision, nm.lastRevision)
		f.Restored = f.Revision
		if nm.bump > 0 {
			f.Restored += nm.bump
			// etcdutl's marker: an empty value at (revision+bump, 0), so that
			// the store restarts at that revision, and a compaction scheduled
			// there, which the server finishes on start.
			if err := schema.PutKeyValue(tx, schema.Revision{Main: f.Restored}, &mvccpb.KeyValue{}); err != nil {
				return err
			}
			if err := schema.SetScheduledCompactRev(tx, f.Restored); err != nil {
				return err
			}
			if nm.compacted {
				if err := schema.SetFinishedCompactRev(tx, f.Restored); err != nil {
					return err
				}
				if nm.oldMarker != nil {
					if err := schema.Key(tx).Delete(schema.AppendRevision(nil, *nm.oldMarker, false)); err != nil {
						return fmt.Errorf("delete the bump marker at %s: %w", nm.oldMarker, err)
					}
				}
			}
			f.CompactRevision = f.Restored
		}
		if err := schema.ClearMembers(tx); err != nil {
			return err
		}
		for _, m := range nm.cluster.Members {
			if err := schema.PutMember(tx, m); err != nil {
				return err
			}
		}
		if err := schema.SetConsistentIndex(tx, nm.index()); err != nil {
			return err
		}
		if err := schema.SetTerm(tx, 1); err != nil {
			return err
		}
		return schema.SetConfState(tx, nm.confState())
	})
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("restore: close %s: %w", path, cerr)
	}
	if err != nil && err != refused {
		err = fmt.Errorf("restore: %s: %w", path, err)
	}
	return f, err
}

// storeRevision is the revision etcd restores a store at (the last key
// bucket revision, or the compaction if higher) and the compaction in
// effect (-1 if none).
func storeRevision(tx *bolt.Tx) (rev, compact int64, err error) {
	latest, _, err := schema.LatestRevision(tx)
	if err != nil {
		return 0, 0, err
	}
	compact = -1
	if c, ok, err := schema.FinishedCompactRev(tx); err != nil {
		return 0, 0, err
	} else if ok {
		compact = c
	}
	if c, ok, err := schema.ScheduledCompactRev(tx); err != nil {
		return 0, 0, err
	} else if ok {
		compact = max(compact, c)
	}
	return max(latest.Main, compact), compact, nil
}

// writeRaft writes the member's .snap and WAL into layout: the bootstrap
// ConfChanges, one per member in ID order, committed at term 1, and a
// snapshot at the last of them holding the membership.
func (nm *newMember) writeRaft(lg *slog.Logger, layout datadir.Layout) error {
	cs := nm.confState()
	n := nm.index()
	ents := make([]raftpb.Entry, 0, n)
	for i, m := range nm.cluster.Members {
		ctx, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("restore: encode member %s: %w", m.Name, err)
		}
		cc := raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: m.ID, Context: ctx}
		if m.IsLearner {
			cc.Type = raftpb.ConfChangeAddLearnerNode
		}
		data, err := cc.Marshal()
		if err != nil {
			return fmt.Errorf("restore: encode ConfChange: %w", err)
		}
		ents = append(ents, raftpb.Entry{Type: raftpb.EntryConfChange, Term: 1, Index: uint64(i + 1), Data: data})
	}
	// As etcd stores a member it has not heard from yet: peer URLs only;
	// the name and client URLs come when the member publishes them.
	v2Members := make([]schema.Member, len(nm.cluster.Members))
	for i, m := range nm.cluster.Members {
		v2Members[i] = schema.Member{ID: m.ID, PeerURLs: m.PeerURLs, IsLearner: m.IsLearner}
	}
	v2, err := snap.EncodeMembership(snap.Membership{Members: v2Members})
	if err != nil {
		return err
	}
	rs := raftpb.Snapshot{Data: v2, Metadata: raftpb.SnapshotMetadata{Index: n, Term: 1, ConfState: cs}}
	if err := snap.New(lg, layout.SnapDir()).SaveSnap(rs); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	md := walkit.Metadata{NodeID: nm.self.ID, ClusterID: nm.cluster.ID}
	w, err := walkit.Create(lg, layout.WALDir(), md.Marshal())
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	// Create synced the WAL's header; Close syncs the rest once.
	w.SetUnsafeNoFsync()
	err = w.Save(raftpb.HardState{Term: 1, Vote: nm.cluster.Voters()[0], Commit: n}, ents)
	if err == nil {
		err = w.SaveSnapshot(walkit.Snapshot{Index: n, Term: 1, ConfState: &cs})
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("restore: write WAL %s: %w", layout.WALDir(), err)
	}
	return nil
}
