package server

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/internal/failpoint"
	"github.com/lifeboat-dev/lifeboat/internal/fsync"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/snapkit/snap"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// snapshot saves a raft snapshot at the applied index: the backend is
// committed first (it must hold every entry the WAL may drop), then the
// .snap file, then the WAL snapshot record, then the WAL locks below it are
// released and raft's log is compacted, keeping SnapshotCatchUpEntries
// entries for slow followers.
func (s *Server) snapshot(as *applyState) error {
	start := time.Now()
	st := s.st.Load()
	if err := st.be.ForceCommit(); err != nil {
		return fmt.Errorf("server: snapshot: commit backend: %w", err)
	}
	data, err := s.snapshotData()
	if err != nil {
		return err
	}
	cs := as.confState
	sn, err := s.raftStorage.CreateSnapshot(as.applied, &cs, data)
	if errors.Is(err, raft.ErrSnapOutOfDate) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("server: snapshot at %d: %w", as.applied, err)
	}
	if err := s.snapshotter.SaveSnap(sn); err != nil {
		return err
	}
	if err := s.wal.SaveSnapshot(walkit.Snapshot{Index: sn.Metadata.Index, Term: sn.Metadata.Term, ConfState: &cs}); err != nil {
		return err
	}
	if err := s.wal.ReleaseLockTo(sn.Metadata.Index); err != nil {
		return err
	}
	as.snapIndex = as.applied
	compactIndex := uint64(1)
	if as.applied > s.cfg.SnapshotCatchUpEntries {
		compactIndex = as.applied - s.cfg.SnapshotCatchUpEntries
	}
	if err := s.raftStorage.Compact(compactIndex); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return fmt.Errorf("server: compact raft log to %d: %w", compactIndex, err)
	}
	s.m.snapshotSave.Observe(time.Since(start).Seconds())
	s.lg.Info("saved snapshot", "index", sn.Metadata.Index, "term", sn.Metadata.Term, "compacted-to", compactIndex)
	return nil
}

// snapshotData is the Data of a raft snapshot: the membership as a v2
// store, as etcd writes it.
func (s *Server) snapshotData() ([]byte, error) {
	data, err := snap.EncodeMembership(snap.Membership{
		Members:        s.cluster.Members(),
		Removed:        s.cluster.RemovedIDs(),
		ClusterVersion: s.cluster.Version(),
	})
	if err != nil {
		return nil, fmt.Errorf("server: snapshot membership: %w", err)
	}
	return data, nil
}

// sendSnapshot sends m, a MsgSnap that raft made from its stored snapshot,
// with a snapshot at the applied index in its place, as etcd does: the
// stored one may predate the member it goes to (raft ignores a snapshot
// whose ConfState lacks it, so a member added since would never catch
// up), and the db sent with it (SnapshotDB) is the backend as it is now,
// at or past the applied index, whatever the snapshot. Entries between the
// two are replayed by the receiver (applyConfChange).
func (s *Server) sendSnapshot(as *applyState, m raftpb.Message) {
	data, err := s.snapshotData()
	if err != nil {
		s.lg.Warn("snapshot for a follower", "to", schema.FormatID(m.To), "error", err)
		s.node.ReportSnapshot(m.To, raft.SnapshotFailure)
		return
	}
	m.Snapshot = &raftpb.Snapshot{
		Data:     data,
		Metadata: raftpb.SnapshotMetadata{Index: as.applied, Term: as.appliedTerm, ConfState: as.confState},
	}
	s.lg.Info("sending snapshot", "to", schema.FormatID(m.To), "index", as.applied, "term", as.appliedTerm)
	s.tr.Send([]raftpb.Message{m})
}

// applySnapshot replaces the stores with the db that came with a snapshot
// from the leader, and reloads membership and alarms from it.
func (s *Server) applySnapshot(as *applyState, sn raftpb.Snapshot) error {
	idx := sn.Metadata.Index
	if idx <= as.applied {
		return nil
	}
	recv := s.cfg.Layout().ReceivedDBPath(idx)
	if _, err := os.Stat(recv); err != nil {
		return fmt.Errorf("server: snapshot %d has no received db: %w", idx, err)
	}
	s.lg.Info("applying snapshot from the leader", "index", idx, "term", sn.Metadata.Term)
	old := s.st.Load()
	// The open watch streams survive the swap, as in etcd: the new store
	// adopts them, and each watcher catches up from the new db. If the
	// swap fails, Close ends the streams that were not adopted.
	defer old.kv.Close()
	if err := old.closeForSnapshot(); err != nil {
		return fmt.Errorf("server: close stores for snapshot %d: %w", idx, err)
	}
	// The leader's db may be ahead of idx (it sends its backend as it is):
	// until this member's WAL passes the db, the marker tells its next
	// start that the db came from the snapshot, not from a WAL cut short.
	if err := fsync.File(s.cfg.Layout().InstalledPath(idx), nil); err != nil {
		return fmt.Errorf("server: mark snapshot %d installed: %w", idx, err)
	}
	if err := os.Rename(recv, s.cfg.Layout().DBPath()); err != nil {
		return fmt.Errorf("server: put snapshot db in place: %w", err)
	}
	failpoint.ApplyBeforeOpenSnapshot.Hit()
	st, err := s.newStores()
	if err != nil {
		return fmt.Errorf("server: open snapshot db: %w", err)
	}
	st.kv.AdoptWatchers(old.kv)
	s.st.Store(st)
	cl, err := st.loadCluster(s.cluster.ID())
	if err != nil {
		return err
	}
	s.cluster.replace(cl)
	if err := s.alarms.reload(st.be); err != nil {
		return err
	}
	known := make(map[uint64]bool)
	for _, m := range s.cluster.Members() {
		known[m.ID] = true
		s.tr.AddPeer(m.ID, m.PeerURLs)
	}
	for _, id := range s.cluster.RemovedIDs() {
		if !known[id] {
			s.tr.RemovePeer(id)
		}
	}
	as.applied, as.appliedTerm, as.snapIndex = idx, sn.Metadata.Term, idx
	as.confState = sn.Metadata.ConfState
	if as.replay, err = s.replayCluster(sn); err != nil {
		return err
	}
	s.applied.Store(idx)
	s.applyWait.setApplied(idx)
	s.lg.Info("applied snapshot", "index", idx)
	return nil
}

// membershipFromSnapshot fills an empty members bucket from the v2 store of
// a .snap file (data dirs written by etcd 3.5).
func (s *Server) membershipFromSnapshot(sn raftpb.Snapshot) error {
	ms, err := snap.DecodeMembership(sn.Data)
	if err != nil {
		return fmt.Errorf("server: membership of snapshot %d: %w", sn.Metadata.Index, err)
	}
	return s.withTx(s.st.Load(), func(tx *bolt.Tx) error { return s.cluster.restore(tx, ms) })
}

// SnapshotDB streams the backend for a MsgSnap (transport.Raft).
func (h *raftHandler) SnapshotDB(raftpb.Message) (io.ReadCloser, int64, error) {
	be := (*Server)(h).st.Load().be
	if err := be.ForceCommit(); err != nil {
		return nil, 0, err
	}
	pr, pw := io.Pipe()
	sizec := make(chan int64, 1)
	errc := make(chan error, 1)
	go func() {
		err := be.View(func(tx *bolt.Tx) error {
			sizec <- tx.Size()
			_, err := tx.WriteTo(pw)
			return err
		})
		pw.CloseWithError(err)
		errc <- err
	}()
	select {
	case n := <-sizec:
		return pr, n, nil
	case err := <-errc:
		return nil, 0, fmt.Errorf("server: snapshot db: %w", err)
	}
}

// purgeInterval is how often old WAL segments, .snap files and received
// db files are purged.
const purgeInterval = 30 * time.Second

// purgeFiles keeps the newest MaxWALs WAL segments (fewer if the WAL
// still holds older ones locked), and the newest MaxSnapshots .snap files
// and received dbs.
func (s *Server) purgeFiles() {
	if s.cfg.MaxWALs > 0 {
		if _, err := walkit.Purge(s.lg, s.cfg.Layout().WALDir(), int(s.cfg.MaxWALs)); err != nil {
			s.lg.Warn("purge: WAL segments", "error", err)
		}
	}
	if s.cfg.MaxSnapshots == 0 {
		return
	}
	for _, suffix := range []string{snap.Ext, datadir.ReceivedDBSuffix, datadir.InstalledSuffix} {
		ents, err := os.ReadDir(s.cfg.Layout().SnapDir())
		if err != nil {
			s.lg.Warn("purge: list snap dir", "error", err)
			return
		}
		var names []string
		for _, e := range ents {
			n := e.Name()
			if strings.HasSuffix(n, suffix) {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		for len(names) > int(s.cfg.MaxSnapshots) {
			p := filepath.Join(s.cfg.Layout().SnapDir(), names[0])
			if err := os.Remove(p); err != nil {
				s.lg.Warn("purge: remove", "file", p, "error", err)
			} else {
				s.lg.Info("purged file", "file", p)
			}
			names = names[1:]
		}
	}
}
