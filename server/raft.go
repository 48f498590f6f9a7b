package server

import (
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lifeboat-dev/lifeboat/internal/failpoint"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
	"github.com/lifeboat-dev/lifeboat/walkit"
)

// toApply is one Ready's worth of work for the apply loop.
type toApply struct {
	snapshot raftpb.Snapshot
	entries  []raftpb.Entry
	// persisted is closed once the Ready's entries, hard state and
	// snapshot are durable and in raft's storage.
	persisted chan struct{}
	// applied is closed once the apply loop is done with this batch.
	applied chan struct{}
	// advanced is closed once raft has been told the batch applied
	// (Advance). Raft drops a ConfChange proposed before then, while the
	// last one is pending.
	advanced chan struct{}
}

// runRaft drives the raft node: it ticks, persists each Ready (WAL, .snap,
// memory storage), sends its messages and hands committed entries to the
// apply loop. The leader sends before it persists, which raft allows; a
// follower sends after.
func (s *Server) runRaft(boot raftpb.Snapshot) {
	defer s.wg.Done()
	ticker := time.NewTicker(s.cfg.tickInterval())
	defer ticker.Stop()
	isLeader := false
	for {
		select {
		case <-s.stopping:
			return
		case <-ticker.C:
			s.node.Tick()
		case rd := <-s.node.Ready():
			if rd.SoftState != nil {
				isLeader = rd.SoftState.RaftState == raft.StateLeader
				s.setLeader(rd.SoftState.Lead, isLeader)
			}
			if !raft.IsEmptyHardState(rd.HardState) {
				s.term.Store(rd.HardState.Term)
				s.committed.Store(rd.HardState.Commit)
			}
			if n := len(rd.ReadStates); n > 0 {
				s.deliverReadState(rd.ReadStates[n-1])
			}
			ap := &toApply{
				snapshot:  rd.Snapshot,
				entries:   rd.CommittedEntries,
				persisted: make(chan struct{}),
				applied:   make(chan struct{}),
				advanced:  make(chan struct{}),
			}
			select {
			case s.applyc <- ap:
			case <-s.stopping:
				return
			}
			if isLeader {
				s.sendMessages(rd.Messages)
			}
			if err := s.persist(rd); err != nil {
				s.fail(err)
				return
			}
			close(ap.persisted)
			if !isLeader {
				s.sendMessages(rd.Messages)
			}
			if hasConfChange(rd.CommittedEntries) || !raft.IsEmptySnap(rd.Snapshot) {
				// Apply membership before raft goes on, so that the
				// transport and raft agree on the peers.
				select {
				case <-ap.applied:
				case <-s.stopping:
					return
				}
			}
			s.node.Advance()
			close(ap.advanced)
		}
	}
}

// persist writes a Ready to disk, then to raft's memory storage. A
// snapshot goes first, as etcd: the .snap file, then its WAL record, then
// the hard state and entries; the WAL below it is released last.
func (s *Server) persist(rd raft.Ready) error {
	snapshot := !raft.IsEmptySnap(rd.Snapshot)
	if snapshot {
		md := rd.Snapshot.Metadata
		cs := md.ConfState
		failpoint.RaftBeforeSaveSnap.Hit()
		if err := s.snapshotter.SaveSnap(rd.Snapshot); err != nil {
			return err
		}
		if err := s.wal.SaveSnapshot(walkit.Snapshot{Index: md.Index, Term: md.Term, ConfState: &cs}); err != nil {
			return err
		}
		failpoint.RaftAfterSaveSnap.Hit()
	}
	start := time.Now()
	failpoint.RaftBeforeSave.Hit()
	if err := s.wal.Save(rd.HardState, rd.Entries); err != nil {
		return err
	}
	failpoint.RaftAfterSave.Hit()
	if raft.MustSync(rd.HardState, s.savedHardState, len(rd.Entries)) {
		s.m.walFsync.Observe(time.Since(start).Seconds())
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		s.savedHardState = rd.HardState
	}
	if snapshot {
		if err := s.raftStorage.ApplySnapshot(rd.Snapshot); err != nil {
			return err
		}
		if err := s.wal.ReleaseLockTo(rd.Snapshot.Metadata.Index); err != nil {
			return err
		}
	}
	return s.raftStorage.Append(rd.Entries)
}

func hasConfChange(ents []raftpb.Entry) bool {
	for i := range ents {
		if ents[i].Type == raftpb.EntryConfChange || ents[i].Type == raftpb.EntryConfChangeV2 {
			return true
		}
	}
	return false
}

// maxInFlightMsgSnap bounds the MsgSnaps waiting for the apply loop, as
// etcd's.
const maxInFlightMsgSnap = 16

// sendMessages sends raft's messages, but for those to removed members, and
// hands each MsgSnap to the apply loop, which sends a snapshot of its own
// in its place (sendSnapshot). It copies ms only when it leaves one out.
func (s *Server) sendMessages(ms []raftpb.Message) {
	var out []raftpb.Message
	for i := range ms {
		m := ms[i]
		snap := m.Type == raftpb.MsgSnap
		if snap {
			select {
			case s.msgSnapc <- m:
			default:
				// Too many in flight: raft sends it again later.
				s.node.ReportSnapshot(m.To, raft.SnapshotFailure)
			}
		}
		if snap || s.cluster.IsRemoved(m.To) {
			if out == nil {
				out = append(make([]raftpb.Message, 0, len(ms)), ms[:i]...)
			}
			continue
		}
		if out != nil {
			out = append(out, m)
		}
	}
	if out == nil {
		out = ms
	}
	s.tr.Send(out)
}

// setLeader records the leader and wakes whoever waits on a change.
func (s *Server) setLeader(lead uint64, isLeader bool) {
	old := s.lead.Swap(lead)
	if old == lead {
		return
	}
	s.leaderMu.Lock()
	close(s.leaderChanged)
	s.leaderChanged = make(chan struct{})
	s.leaderMu.Unlock()
	if lead != 0 {
		s.m.leaderChanges.Inc()
	}
	hasLeader := 0.0
	if lead != 0 {
		hasLeader = 1
	}
	s.m.hasLeader.Set(hasLeader)
	isLead := 0.0
	if isLeader {
		isLead = 1
	}
	s.m.isLeader.Set(isLead)
	st := s.st.Load()
	if isLeader {
		st.lessor.Promote(s.cfg.tickInterval() * time.Duration(s.cfg.electionTicks()))
	} else if old == s.id {
		st.lessor.Demote()
	}
	s.lg.Info("leader changed", "leader", schema.FormatID(lead), "previous", schema.FormatID(old))
}

// leaderChangedNotify returns a channel closed at the next leader change.
func (s *Server) leaderChangedNotify() <-chan struct{} {
	s.leaderMu.RLock()
	defer s.leaderMu.RUnlock()
	return s.leaderChanged
}
